import Canon
import CanonPostgres

extension CanonicalStoreConformance.Engine {
    /// A real PostgreSQL 15 server (`PostgresTestServer`), one new database per check; reopening
    /// connects to the same database again. The database's address is kept in the scratch directory.
    public static let postgres = Self(
        name: "postgres",
        make: { faults, scratch in
            let url = try await PostgresTestServer.createDatabase()
            try AtomicFile.write(url.description, toFile: scratch.file("postgres-url"))
            return try await PostgresCanonicalStore(url: url, migrations: ConformanceSchema.migrations, configuration: .init(faults: faults))
        },
        reopen: { scratch in
            let url = try PostgresURL(try String(contentsOfFile: scratch.file("postgres-url"), encoding: .utf8))
            return try await PostgresCanonicalStore(url: url, migrations: ConformanceSchema.migrations)
        })
}
