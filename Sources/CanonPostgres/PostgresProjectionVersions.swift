import Canon
import Foundation
import Logging
import PostgresNIO

/// Which version of each projection is live on a PostgreSQL installation: the scaled-out
/// counterpart of the data directory's `projections.json`, shared by every process.
///
/// `canon_projection_versions` (in the canonical database) holds a row per rebuilt projection;
/// a projection without one is live at version 1. A blue-green rebuild records the version it
/// builds (`building`), so an interrupted rebuild resumes into the same schema, and then
/// switches `live` in one transaction that also tells every process on `canon_control`
/// (`switch:name:version`). Each process moves its readers and its agent to the new version
/// when told, and reads the table on a timer as the fallback (`PostgresPlatform.VersionFollower`).
public struct PostgresProjectionVersions: Sendable {
    public struct Entry: Hashable, Sendable {
        public var live: Int
        /// The version a rollback switches back to; nil once pruned.
        public var previous: Int?
        /// The version a rebuild is building (resumed by the next rebuild).
        public var building: Int?
        public var lastRebuildSeconds: Double?

        public init(live: Int, previous: Int? = nil, building: Int? = nil, lastRebuildSeconds: Double? = nil) {
            self.live = live
            self.previous = previous
            self.building = building
            self.lastRebuildSeconds = lastRebuildSeconds
        }
    }

    /// A switch found another version live than the one it replaces: another process switched
    /// meanwhile.
    public struct Conflict: Error, CustomStringConvertible, Sendable {
        public let name: String
        public let expected: Int
        public let live: Int
        public var description: String {
            "\(name)@\(live) was made live by another process meanwhile (this one expected \(name)@\(expected) live); nothing was switched"
        }
    }

    /// Another process runs a rebuild, rollback or prune of the projection.
    public struct Busy: Error, CustomStringConvertible, Sendable {
        public let name: String
        /// The server process of the session that holds the lock, when it could be read.
        public var holder: Int?
        public var description: String {
            let stop = holder.map { " (or stop it: it holds the lock in server process \($0); `SELECT pg_terminate_backend(\($0))` ends that session)" } ?? " (or stop it)"
            return "another rebuild, rollback or prune of \(name) is running on this database; wait for it to end\(stop) and run this again"
        }
    }

    /// The `canon_control` payload prefix of a switch.
    public static let switchPrefix = "switch:"

    let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    /// Every projection that has a row, by name.
    public func all() async throws -> [String: Entry] {
        var entries: [String: Entry] = [:]
        for row in try await database.rows("SELECT name, live, previous, building, last_rebuild_seconds FROM canon_projection_versions") {
            let (name, live, previous, building, seconds) = try row.decode((String, Int64, Int64?, Int64?, Double?).self)
            entries[name] = Entry(live: Int(live), previous: previous.map(Int.init), building: building.map(Int.init), lastRebuildSeconds: seconds)
        }
        return entries
    }

    public func entry(_ name: String) async throws -> Entry? { try await all()[name] }

    /// The live version of `name` (1 when it was never rebuilt).
    public func liveVersion(_ name: String) async throws -> Int { try await entry(name)?.live ?? 1 }

    /// Records that a rebuild of `name` builds a version, and returns it: the one a rebuild
    /// already began, else one above every version kept (so a version left behind by a rollback
    /// is not built into again).
    public func beginBuilding(_ name: String, live: Int) async throws -> Int {
        // Nor into a schema left behind (by a rebuild whose row was forgotten by a prune that
        // stopped before dropping it).
        let highest = max(live, try await schemas(of: name).keys.max() ?? 0)
        let rows = try await database.rows(
            """
            INSERT INTO canon_projection_versions AS v (name, live, building) VALUES ($1, $2, $3 + 1)
            ON CONFLICT (name) DO UPDATE SET building = COALESCE(v.building, GREATEST(v.live, COALESCE(v.previous, 0), $3) + 1)
            RETURNING building
            """, [.text(name), .integer(Int64(live)), .integer(Int64(highest))])
        guard let building = try rows.first?.decode(Int64.self) else {
            throw CanonicalStoreError.storage("canon_projection_versions returned no row for \(name)")
        }
        return Int(building)
    }

    /// Makes `version` of `name` live, keeping `previous` for a rollback, and tells every process
    /// in the same transaction: a process learns of the switch only once it is committed.
    /// `seconds` is how long the rebuild that made `version` took (nil for a rollback).
    ///
    /// The switch is conditional: `previous` must still be live (a projection without a row is
    /// live at version 1). Otherwise nothing changes and it throws `Conflict`.
    public func switchLive(_ name: String, to version: Int, previous: Int, seconds: Double? = nil) async throws {
        let secondsValue: CanonValue = seconds.map { .real($0) } ?? .null
        try await database.transaction { transaction in
            let binds: [CanonValue] = [.text(name), .integer(Int64(version)), .integer(Int64(previous)), secondsValue]
            var switched = try await transaction.rows(
                """
                UPDATE canon_projection_versions SET live = $2, previous = $3, building = NULL, last_rebuild_seconds = $4, switched_at = now()
                WHERE name = $1 AND live = $3 RETURNING live
                """, binds)
            if switched.isEmpty, previous == 1 {
                switched = try await transaction.rows(
                    """
                    INSERT INTO canon_projection_versions (name, live, previous, building, last_rebuild_seconds, switched_at)
                    VALUES ($1, $2, $3, NULL, $4, now()) ON CONFLICT (name) DO NOTHING RETURNING live
                    """, binds)
            }
            guard !switched.isEmpty else {
                let live = try await transaction.rows("SELECT live FROM canon_projection_versions WHERE name = $1", [.text(name)])
                throw Conflict(name: name, expected: previous, live: try live.first.map { Int(try $0.decode(Int64.self)) } ?? 1)
            }
            try await transaction.execute(
                "SELECT pg_notify($1, $2)", [.text(PostgresControl.channel), .text("\(Self.switchPrefix)\(name):\(version)")])
        }
    }

    /// Runs `body` while this process alone may change the versions of `name`: rebuild,
    /// rollback and prune each hold a session advisory lock on a connection of their own for
    /// their whole run, so none drops or switches what another is building or switching.
    ///
    /// - Throws: `Busy` at once when another process holds it.
    public func exclusively<T: Sendable>(_ name: String, logger: Logger = Logger(label: "canon.versions"), _ body: () async throws -> T) async throws -> T {
        // The lock lives as long as this session: when the process holding it vanishes without
        // closing it (its machine lost), the server's keepalive probes end the session, and the
        // lock, within about a minute instead of TCP's default two hours.
        let connection = try await database.url.connectAlone(
            logger: logger, settings: [("tcp_keepalives_idle", "30"), ("tcp_keepalives_interval", "10"), ("tcp_keepalives_count", "3")])
        do {
            let key = PostgresLeases.advisoryKey("canon.versions:\(name)")
            let rows = try await connection.query(PostgresQuery(unsafeSQL: "SELECT pg_try_advisory_lock(\(key))"), logger: logger).collect()
            guard try rows.first?.decode(Bool.self) == true else {
                // pg_locks shows a bigint key as its high and low halves.
                let bits = UInt64(bitPattern: key)
                let holder = try? await connection.query(
                    PostgresQuery(unsafeSQL: """
                        SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
                            AND classid::bigint = \(bits >> 32) AND objid::bigint = \(bits & 0xffff_ffff)
                            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                        """), logger: logger
                ).collect().first?.decode(Int32.self)
                throw Busy(name: name, holder: holder.map(Int.init))
            }
            let result = try await body()
            // Closing the connection lets the lock go.
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw (error as? PSQLError).map(PostgresDatabase.canonError) ?? error
        }
    }

    /// Forgets the previous and any half-built version of `name` (before their schemas go).
    public func forgetOthers(_ name: String) async throws {
        try await database.rows("UPDATE canon_projection_versions SET previous = NULL, building = NULL WHERE name = $1", [.text(name)])
    }

    /// The schema of `version` of `name` (as `PostgresProjectionDatabase` names it).
    public static func schema(of name: String, version: Int) -> String {
        PostgresProjectionDatabase.schemaName(for: ProjectionIdentity(name: name, version: version))
    }

    /// The versions of `name` that have a schema in the database, with their schemas.
    public func schemas(of name: String) async throws -> [Int: String] {
        let prefix = Self.schema(of: name, version: 0).dropLast()
        var found: [Int: String] = [:]
        for row in try await database.rows("SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname::text, $1)", [.text(String(prefix))]) {
            let schema = try row.decode(String.self)
            if let version = Int(schema.dropFirst(prefix.count)), Self.schema(of: name, version: version) == schema { found[version] = schema }
        }
        return found
    }

    /// Drops the schema of `version` of `name`, with everything in it, and the expected digests
    /// drift checks kept for it.
    public func dropSchema(of name: String, version: Int) async throws {
        let schema = Self.schema(of: name, version: version)
        try await database.execute("DROP SCHEMA IF EXISTS \(quoted(schema)) CASCADE")
        try await database.execute("DROP TABLE IF EXISTS \(quoted(PostgresDigestCache.schema)).\(quoted(schema))")
    }
}
