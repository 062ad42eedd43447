import Canon
import CanonSQLite
import Foundation

extension CanonicalStoreConformance.Engine {
    /// SQLite on a real file in the check's scratch directory, in WAL mode with full fsync.
    public static let sqlite = Self(
        name: "sqlite",
        make: { faults, scratch in
            try SQLiteCanonicalStore(
                path: scratch.file("canonical.sqlite"), migrations: ConformanceSchema.migrations,
                configuration: .init(faults: faults))
        },
        reopen: { scratch in
            try SQLiteCanonicalStore(path: scratch.file("canonical.sqlite"), migrations: ConformanceSchema.migrations)
        })
}
