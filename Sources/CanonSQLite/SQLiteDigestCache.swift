import Canon
import Foundation
import GRDB

/// Expected digests kept between drift checks in their own SQLite file beside the stores
/// (`DATA/<store>.drift-cache.sqlite`): never inside the derived store it checks. Deleting the
/// file only makes the next check compute every expected digest again.
public final class SQLiteDigestCache: DriftDigestCache {
    private let queue: DatabaseQueue
    public let path: String

    public init(path: String) throws {
        self.path = path
        var configuration = GRDB.Configuration()
        configuration.journalMode = .wal
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = OFF") }
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try queue.write { db in
                try db.execute(sql: "CREATE TABLE IF NOT EXISTS expected (key TEXT PRIMARY KEY, version INTEGER NOT NULL, digest INTEGER NOT NULL) WITHOUT ROWID")
            }
        } catch let error as DatabaseError {
            throw ProjectionError.storage("cannot open the drift cache at \(path): \(error.message ?? error.description)")
        }
    }

    public func entries() async throws -> [CachedDigest] {
        try await queue.read { db in
            var entries: [CachedDigest] = []
            let cursor = try GRDB.Row.fetchCursor(db, sql: "SELECT key, version, digest FROM expected ORDER BY key")
            while let row = try cursor.next() {
                entries.append(CachedDigest(key: row[0], version: row[1], digest: UInt64(bitPattern: row[2])))
            }
            return entries
        }
    }

    public func update(upserting: [CachedDigest], deleting: [String]) async throws {
        guard !upserting.isEmpty || !deleting.isEmpty else { return }
        try await queue.write { db in
            let upsert = try db.makeStatement(sql: "INSERT OR REPLACE INTO expected VALUES (?, ?, ?)")
            for entry in upserting { try upsert.execute(arguments: [entry.key, entry.version, Int64(bitPattern: entry.digest)]) }
            let delete = try db.makeStatement(sql: "DELETE FROM expected WHERE key = ?")
            for key in deleting { try delete.execute(arguments: [key]) }
        }
    }
}
