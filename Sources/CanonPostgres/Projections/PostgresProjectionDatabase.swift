import Canon
import Foundation
import PostgresNIO

/// The schema of one projection version in PostgreSQL, with the bookkeeping every projection
/// store keeps beside its data: checkpoint, dead letters, heartbeat and the last drift checks.
///
/// Each projection version lives in its own schema (`case_search_v1`), owned by its own role
/// (`canon_case_search_v1`). The store's connections run as that role, with that schema first on
/// their search path: the role has no grant on the canonical tables, so a projection cannot read
/// or join them even by mistake; it learns only from the outbox events it is given.
final class PostgresProjectionDatabase: ProjectionBookkeeping {
    let identity: ProjectionIdentity
    let schema: String
    let database: PostgresDatabase
    private let faults: FaultInjector?

    /// The channel every checkpoint move notifies, with `name:version:position`: other processes
    /// serving reads of this projection learn at once that a position was applied.
    static let appliedChannel = "canon_applied"

    private init(identity: ProjectionIdentity, schema: String, database: PostgresDatabase, faults: FaultInjector?) {
        self.identity = identity
        self.schema = schema
        self.database = database
        self.faults = faults
    }

    /// `case_search_v1` for version 1 of `case-search`: the store name with every character that
    /// is not a letter or a digit made an underscore.
    static func schemaName(for identity: ProjectionIdentity) -> String {
        String(identity.storeName.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    /// Creates (when missing) the projection's role and schema, then its tables.
    ///
    /// - Parameters:
    ///   - extensions: extensions the store needs, created by the connecting user in `public`.
    ///   - settings: server settings of the store's connections.
    ///   - migrations: the store's own tables, by identifier, in order; each runs once.
    static func open(
        url: PostgresURL, identity: ProjectionIdentity, faults: FaultInjector?, extensions: [String] = [],
        settings: [(String, String)] = [], migrations: [(String, [String])]
    ) async throws -> PostgresProjectionDatabase {
        let schema = schemaName(for: identity)
        let role = "canon_" + schema
        do {
            let admin = PostgresDatabase(url: url, maximumConnections: 1)
            defer { admin.close() }
            try await admin.transaction(deadline: PostgresDatabase.longOperation) { transaction in
                try await transaction.execute("SELECT pg_advisory_xact_lock(\(PostgresCanonicalStore.LockKey.migrations))")
                // Roles belong to the whole server: another database may create it at the same moment.
                try await transaction.execute("""
                    DO $$ BEGIN
                        CREATE ROLE \(quoted(role)) NOLOGIN;
                    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                    END $$
                    """)
                try await transaction.execute("GRANT \(quoted(role)) TO CURRENT_USER")
                try await transaction.execute("CREATE SCHEMA IF NOT EXISTS \(quoted(schema)) AUTHORIZATION \(quoted(role))")
                for name in extensions { try await transaction.execute("CREATE EXTENSION IF NOT EXISTS \(name) SCHEMA public") }
            }
            let database = PostgresDatabase(url: url, maximumConnections: 4, settings: [("role", role), ("search_path", "\(schema),public")] + settings)
            let store = PostgresProjectionDatabase(identity: identity, schema: schema, database: database, faults: faults)
            try await store.migrate(migrations)
            return store
        } catch let error as CanonicalStoreError {
            throw ProjectionError.storage("cannot open projection store \(identity) at \(url) schema \(schema): \(error.message)")
        }
    }

    private func migrate(_ migrations: [(String, [String])]) async throws {
        let identity = self.identity
        try await database.transaction(deadline: PostgresDatabase.longOperation) { transaction in
            try await transaction.execute("SELECT pg_advisory_xact_lock(\(PostgresCanonicalStore.LockKey.migrations))")
            try await transaction.execute("CREATE TABLE IF NOT EXISTS canon_migrations (identifier TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            var applied: Set<String> = []
            for row in try await transaction.rows("SELECT identifier FROM canon_migrations") { applied.insert(try row.decode(String.self)) }
            let base: [String] = [
                "CREATE TABLE canon_checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), position BIGINT NOT NULL, committed_at BIGINT)",
                "INSERT INTO canon_checkpoint VALUES (1, 0, NULL)",
                """
                CREATE TABLE canon_dead_letters (
                    position BIGINT PRIMARY KEY, stream_id TEXT NOT NULL, type TEXT NOT NULL, error TEXT NOT NULL,
                    attempts BIGINT NOT NULL, first_failed_at BIGINT NOT NULL, last_failed_at BIGINT NOT NULL, state TEXT NOT NULL)
                """,
                "CREATE TABLE canon_heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at BIGINT NOT NULL, state TEXT NOT NULL, last_error TEXT, owner TEXT NOT NULL)",
                "CREATE TABLE canon_identity (name TEXT NOT NULL, version BIGINT NOT NULL)",
                "INSERT INTO canon_identity VALUES ('\(identity.name.replacingOccurrences(of: "'", with: "''"))', \(identity.version))",
            ]
            // The summary of the last drift check of each mode (`PostgresDriftSnapshot`).
            let drift = ["CREATE TABLE canon_drift (mode TEXT PRIMARY KEY, summary TEXT NOT NULL)"]
            let all = [("canon.projection.v1", base), ("canon.projection.v2-drift", drift)] + migrations
            // As for SQLite projection files: a schema written by a newer Canon is not folded into
            // with the older schema's guesses.
            let unknown = applied.subtracting(all.map(\.0))
            guard unknown.isEmpty else {
                throw CanonicalStoreError.storage(
                    "it was written by a newer version of Canon (migrations this one does not know: \(unknown.sorted().joined(separator: ", "))); open it with that version, or rebuild it")
            }
            for (identifier, statements) in all where !applied.contains(identifier) {
                for statement in statements { try await transaction.execute(statement) }
                try await transaction.execute("INSERT INTO canon_migrations (identifier) VALUES ($1)", [.text(identifier)])
            }
        }
    }

    func checkpoint() async throws -> Checkpoint {
        try await mapped { try await Self.checkpoint(try await database.rows("SELECT position, committed_at FROM canon_checkpoint WHERE id = 1", prepared: true)) }
    }

    private static func checkpoint(_ rows: [PostgresRow]) throws -> Checkpoint {
        guard let row = rows.first else { return .start }
        let (position, committed) = try row.decode((Int64, Int64?).self)
        return Checkpoint(position: OutboxPosition(position), committedAt: committed.map { Timestamp.date(microseconds: $0) })
    }

    /// Moves the checkpoint from `from` to `to` by compare-and-set and runs `body`, in one
    /// transaction; the move is notified on `appliedChannel` when it commits.
    func advance(from: OutboxPosition, to: Checkpoint, body: @escaping @Sendable (PostgresTransaction) async throws -> Void) async throws {
        let identity = self.identity
        let faults = self.faults
        try await mapped {
            try await database.transaction { transaction in
                // The compare-and-set comes first: its row lock keeps any other writer out until we commit.
                let moved = try await transaction.rows(
                    """
                    WITH moved AS (UPDATE canon_checkpoint SET position = $1, committed_at = $2 WHERE id = 1 AND position = $3 RETURNING position)
                    SELECT pg_notify('\(Self.appliedChannel)', $4) FROM moved
                    """,
                    [.integer(to.position.rawValue), to.committedAt.map { .timestamp($0) } ?? .null, .integer(from.rawValue),
                     .text("\(identity.name):\(identity.version):\(to.position.rawValue)")],
                    prepared: true)
                if moved.isEmpty {
                    let actual = try Self.checkpoint(try await transaction.rows("SELECT position, committed_at FROM canon_checkpoint WHERE id = 1"))
                    throw ProjectionError.checkpointConflict(identity, expected: from, actual: actual.position)
                }
                try await body(transaction)
                try faults?(.beforeCommit)
            }
        }
    }

    /// Runs `body` only while the checkpoint is still `position`, in one transaction.
    func write(at position: OutboxPosition, _ body: @escaping @Sendable (PostgresTransaction) async throws -> Void) async throws {
        let identity = self.identity
        try await write { transaction in
            let current = try Self.checkpoint(try await transaction.rows("SELECT position, committed_at FROM canon_checkpoint WHERE id = 1 FOR UPDATE"))
            guard current.position == position else { throw ProjectionError.checkpointConflict(identity, expected: position, actual: current.position) }
            try await body(transaction)
        }
    }

    func write(_ body: @escaping @Sendable (PostgresTransaction) async throws -> Void) async throws {
        try await mapped { try await database.transaction { try await body($0) } }
    }

    func park(_ letter: DeadLetter, from: OutboxPosition, to: Checkpoint) async throws {
        try await advance(from: from, to: to) { transaction in
            try await transaction.execute(
                """
                INSERT INTO canon_dead_letters VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (position) DO UPDATE SET error = excluded.error, attempts = excluded.attempts,
                    last_failed_at = excluded.last_failed_at, state = excluded.state
                """,
                [.integer(letter.position.rawValue), .text(letter.streamID.rawValue), .text(letter.type), .text(letter.error),
                 .integer(Int64(letter.attempts)), .timestamp(letter.firstFailedAt), .timestamp(letter.lastFailedAt), .text(letter.state.rawValue)])
        }
    }

    func deadLetters() async throws -> [DeadLetter] {
        let identity = self.identity
        return try await mapped {
            try await database.rows(
                "SELECT position, stream_id, type, error, attempts, first_failed_at, last_failed_at, state FROM canon_dead_letters ORDER BY position"
            ).map { row in
                let (position, stream, type, error, attempts, first, last, state) =
                    try row.decode((Int64, String, String, String, Int64, Int64, Int64, String).self)
                return DeadLetter(
                    projection: identity, position: OutboxPosition(position), streamID: StreamID(stream), type: type, error: error,
                    attempts: Int(attempts), firstFailedAt: Timestamp.date(microseconds: first), lastFailedAt: Timestamp.date(microseconds: last),
                    state: DeadLetter.State(rawValue: state) ?? .parked)
            }
        }
    }

    func setDeadLetterState(position: OutboxPosition, to state: DeadLetter.State) async throws {
        let identity = self.identity
        try await write { transaction in
            let changed = try await transaction.rows(
                "UPDATE canon_dead_letters SET state = $1 WHERE position = $2 RETURNING 1", [.text(state.rawValue), .integer(position.rawValue)])
            if changed.isEmpty { throw ProjectionError.unknownDeadLetter(identity, position: position) }
        }
    }

    func rewind(to position: OutboxPosition) async throws {
        let identity = self.identity
        try await write { transaction in
            let current = try Self.checkpoint(try await transaction.rows("SELECT position, committed_at FROM canon_checkpoint WHERE id = 1 FOR UPDATE"))
            guard position <= current.position, position >= .start else {
                throw ProjectionError.invalidRewind(identity, to: position, checkpoint: current.position)
            }
            try await transaction.execute("UPDATE canon_checkpoint SET position = $1, committed_at = NULL WHERE id = 1", [.integer(position.rawValue)])
        }
    }

    func recordHeartbeat(_ heartbeat: AgentHeartbeat) async throws {
        try await mapped {
            try await database.rows(
                """
                INSERT INTO canon_heartbeat VALUES (1, $1, $2, $3, $4)
                ON CONFLICT (id) DO UPDATE SET at = excluded.at, state = excluded.state, last_error = excluded.last_error, owner = excluded.owner
                WHERE excluded.state <> 'stopped' OR canon_heartbeat.owner = excluded.owner
                """,
                [.timestamp(heartbeat.at), .text(heartbeat.state.rawValue), .optionalText(heartbeat.lastError), .text(heartbeat.owner)], prepared: true)
        }
    }

    func heartbeat() async throws -> AgentHeartbeat? {
        try await mapped {
            try await database.rows("SELECT at, state, last_error, owner FROM canon_heartbeat WHERE id = 1", prepared: true).first.map { row in
                let (at, state, lastError, owner) = try row.decode((Int64, String, String?, String).self)
                return AgentHeartbeat(at: Timestamp.date(microseconds: at), state: AgentState(rawValue: state) ?? .stopped, lastError: lastError, owner: owner)
            }
        }
    }

    /// Checkpoint, row count and checksum of `sql`'s rows (one text column, in a stable order),
    /// in one snapshot.
    func contentSummary(rowsSQL sql: String) async throws -> ContentSummary {
        try await mapped {
            try await database.transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", deadline: PostgresDatabase.longOperation) { transaction in
                let checkpoint = try Self.checkpoint(try await transaction.rows("SELECT position, committed_at FROM canon_checkpoint WHERE id = 1"))
                var hasher = ContentHasher()
                var rows = 0
                for row in try await transaction.rows(sql) {
                    hasher.add(try row.decode(String.self))
                    rows += 1
                }
                return ContentSummary(checkpoint: checkpoint.position, rows: rows, checksum: hasher.hexDigest)
            }
        }
    }

    func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as CanonicalStoreError where error.code != .injectedFault {
            throw ProjectionError.storage("\(identity): \(error.message)", from: error)
        }
    }
}
