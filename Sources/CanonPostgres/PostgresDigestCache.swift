import Canon
import Foundation
import PostgresNIO
import Synchronization

/// Expected digests kept between drift checks in PostgreSQL: schema `canon_drift_cache`, one
/// table per projection version (`canon_drift_cache.case_search_v1`), owned by the connecting
/// user. The projection's own role has no grant on it, so a damaged store cannot damage what it
/// is compared with (the embedded engine keeps the same apart, in a file of its own). Dropping a
/// table only makes the next check compute every expected digest again.
public final class PostgresDigestCache: DriftDigestCache {
    public static let schema = "canon_drift_cache"
    private let database: PostgresDatabase
    /// `canon_drift_cache.<store>`.
    public let table: String

    public init(url: PostgresURL, identity: ProjectionIdentity) {
        database = PostgresDatabase(url: url, maximumConnections: 1)
        table = "\(Self.schema).\(PostgresProjectionDatabase.schemaName(for: identity))"
    }

    deinit { database.close() }

    /// Creates the schema and the table when missing: on every call (one short transaction per
    /// check), so a table dropped meanwhile only makes the next check cold.
    private func prepare() async throws {
        let table = self.table
        try await mapped {
            try await database.transaction(deadline: PostgresDatabase.longOperation) { transaction in
                try await transaction.execute("SELECT pg_advisory_xact_lock(\(PostgresCanonicalStore.LockKey.migrations))")
                try await transaction.execute("CREATE SCHEMA IF NOT EXISTS \(Self.schema)")
                try await transaction.execute(
                    "CREATE TABLE IF NOT EXISTS \(table) (key TEXT COLLATE \"C\" PRIMARY KEY, version BIGINT NOT NULL, digest BIGINT NOT NULL)")
            }
        }
    }

    public func entries() async throws -> [CachedDigest] {
        try await prepare()
        let table = self.table
        return try await mapped {
            try await database.transaction(deadline: PostgresDatabase.longOperation) { transaction in
                try await transaction.rows("SELECT key, version, digest FROM \(table) ORDER BY key").map { row in
                    let (key, version, digest) = try row.decode((String, Int64, Int64).self)
                    return CachedDigest(key: key, version: version, digest: UInt64(bitPattern: digest))
                }
            }
        }
    }

    public func update(upserting: [CachedDigest], deleting: [String]) async throws {
        guard !upserting.isEmpty || !deleting.isEmpty else { return }
        try await prepare()
        let table = self.table
        try await mapped {
            try await database.transaction(deadline: PostgresDatabase.longOperation) { transaction in
                for start in stride(from: 0, to: deleting.count, by: 50_000) {
                    var binds = PostgresBindings()
                    binds.append(Array(deleting[start..<min(start + 50_000, deleting.count)]))
                    _ = try await transaction.connection.query(
                        PostgresQuery(unsafeSQL: "DELETE FROM \(table) WHERE key = ANY($1)", binds: binds), logger: transaction.logger
                    ).collect()
                }
                for start in stride(from: 0, to: upserting.count, by: 50_000) {
                    let batch = upserting[start..<min(start + 50_000, upserting.count)]
                    var binds = PostgresBindings()
                    binds.append(batch.map(\.key))
                    binds.append(batch.map(\.version))
                    binds.append(batch.map { Int64(bitPattern: $0.digest) })
                    _ = try await transaction.connection.query(
                        PostgresQuery(unsafeSQL: """
                            INSERT INTO \(table) (key, version, digest) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
                            ON CONFLICT (key) DO UPDATE SET version = excluded.version, digest = excluded.digest
                            """, binds: binds), logger: transaction.logger
                    ).collect()
                }
            }
        }
    }

    private func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as CanonicalStoreError {
            throw ProjectionError.storage("the drift cache \(table): \(error.message)", from: error)
        }
    }
}

/// One `PostgresDigestCache` per projection version, made on first use: what a process that
/// checks drift repeatedly (the server's sampler and routes) keeps.
public final class PostgresDigestCaches: Sendable {
    private let url: PostgresURL
    private let caches = Mutex<[ProjectionIdentity: PostgresDigestCache]>([:])

    public init(url: PostgresURL) { self.url = url }

    public func cache(for identity: ProjectionIdentity) -> PostgresDigestCache {
        caches.withLock { caches in
            if let cache = caches[identity] { return cache }
            let cache = PostgresDigestCache(url: url, identity: identity)
            caches[identity] = cache
            return cache
        }
    }
}
