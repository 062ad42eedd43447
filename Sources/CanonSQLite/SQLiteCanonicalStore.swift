import Canon
import Foundation
import GRDB

/// The embedded canonical store: one SQLite file in WAL mode, with its transactional outbox.
///
/// - Every unit of work runs in one `BEGIN IMMEDIATE` transaction: domain rows and outbox rows
///   commit together or not at all.
/// - SQLite has one writer at a time (across processes too), and positions are assigned inside
///   the write transaction as "last position + 1", so they are gap-free and in commit order.
/// - `(stream_id, stream_version)` is a unique index; the stream's current version is read from
///   that index, so there is no second copy of it to drift.
/// - Append-only tables (and the outbox itself) carry triggers that abort any UPDATE or DELETE.
///
/// ```swift
/// let store = try SQLiteCanonicalStore(path: dataDirectory.databaseFile(for: "canonical").path,
///                                      migrations: CasePlatformSchema.migrations)
/// let result = try await store.commit(work)
/// ```
public final class SQLiteCanonicalStore: CanonicalStore {
    public struct Configuration: Sendable {
        /// `FULL` (the default) fsyncs the WAL on every commit: a canonical fact, once
        /// acknowledged, survives power loss. `NORMAL` is faster and still never corrupts.
        public var synchronous: Synchronous
        /// How long a writer waits for another process's write lock before failing.
        public var busyTimeout: TimeInterval
        /// Test hook: fails a commit at a chosen point.
        public var faults: FaultInjector?
        public var readonly: Bool
        /// WAL pages written before SQLite copies them back into the database file. A unit of
        /// work touches several tables and indexes, so the default 1,000 pages would checkpoint
        /// every ~150 commits inside a writer's commit.
        public var walAutocheckpointPages: Int

        public init(
            synchronous: Synchronous = .full, busyTimeout: TimeInterval = 5, faults: FaultInjector? = nil, readonly: Bool = false,
            walAutocheckpointPages: Int = 1000
        ) {
            self.walAutocheckpointPages = walAutocheckpointPages
            self.synchronous = synchronous
            self.busyTimeout = busyTimeout
            self.faults = faults
            self.readonly = readonly
        }

        public enum Synchronous: String, Sendable { case full = "FULL", normal = "NORMAL" }
    }

    public let path: String
    let pool: DatabasePool
    let tables: [String: TableSchema]
    private let configuration: Configuration
    private let sqlCache = SQLTextCache()

    /// Opens (creating if needed) the store at `path` and applies every migration not yet applied.
    ///
    /// - Throws: `CanonicalStoreError.storage` when the file cannot be opened as a database
    ///   (missing directory, not a SQLite file, corrupt), was written by a newer Canon (it has
    ///   migrations not in `migrations`), or a migration fails.
    public init(path: String, migrations: [SchemaMigration], configuration: Configuration = Configuration()) throws {
        self.path = path
        self.configuration = configuration
        var config = GRDB.Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(configuration.busyTimeout)
        config.readonly = configuration.readonly
        let synchronous = configuration.synchronous.rawValue
        let autocheckpoint = configuration.walAutocheckpointPages
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(autocheckpoint)")
            // Reads (outbox ranges, a rebuild's scan of the state) map the file instead of
            // copying every page through read(2); SQLite caps it at its compile-time limit.
            try db.execute(sql: "PRAGMA mmap_size = 4294967296")
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("canon.outbox.v1") { db in
                try db.execute(sql: SQLiteSchemaSQL.outboxDDL)
            }
            for migration in migrations {
                migrator.registerMigration(migration.identifier) { db in
                    for step in migration.steps {
                        for statement in SQLiteSchemaSQL.ddl(for: step) { try db.execute(sql: statement) }
                    }
                }
            }
            // A file written by a newer Canon has migrations this one does not know: its tables
            // may have columns or meanings this process would write without.
            if try pool.read({ db in try migrator.hasBeenSuperseded(db) }) {
                throw CanonicalStoreError.storage(
                    "\(path) was written by a newer version of Canon (it has migrations this one does not know); open it with that version")
            }
            if !configuration.readonly {
                try migrator.migrate(pool)
            }
        } catch let error as DatabaseError {
            throw CanonicalStoreError.storage("cannot open canonical store at \(path): \(error.message ?? error.description)")
        }
        self.tables = SchemaMigration.tables(after: migrations)
    }

    public func commit(_ work: UnitOfWork) async throws -> CommitResult {
        try await commit(batch: [work])[0]
    }

    public func commit(batch: [UnitOfWork]) async throws -> [CommitResult] {
        let faults = configuration.faults
        let tables = self.tables
        let sqlCache = self.sqlCache
        return try await mapErrors {
            try await pool.writeWithoutTransaction { db in
                var results: [CommitResult] = []
                try db.inTransaction(.immediate) {
                    var transaction = SQLiteOutboxTransaction(db: db, tables: tables, sqlCache: sqlCache)
                    results = try OutboxWriter.write(batch, in: &transaction, now: Date(), faults: faults)
                    return .commit
                }
                return results
            }
        }
    }

    public func fetchOne(_ query: RowQuery) async throws -> Canon.Row? {
        var limited = query
        limited.limit = 1
        return try await fetchAll(limited).first
    }

    public func fetchAll(_ query: RowQuery) async throws -> [Canon.Row] {
        let (sql, arguments) = try SQLiteSchemaSQL.select(query, tables: tables)
        return try await mapErrors {
            try await pool.read { db in
                try Canon.Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments)
            }
        }
    }

    public func fetchValues(_ query: RowQuery) async throws -> [[CanonValue]] {
        let (sql, arguments) = try SQLiteSchemaSQL.select(query, tables: tables)
        return try await mapErrors {
            try await pool.read { db in
                var values: [[CanonValue]] = []
                let cursor = try GRDB.Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
                while let row = try cursor.next() {
                    values.append((0..<row.count).map { CanonValue(row[$0] as DatabaseValue) })
                }
                return values
            }
        }
    }

    public func count(_ table: String, filter: Canon.Row) async throws -> Int {
        let (sql, arguments) = try SQLiteSchemaSQL.count(table: table, filter: filter, tables: tables)
        return try await mapErrors {
            try await pool.read { db in try Int.fetchOne(db.cachedStatement(sql: sql), arguments: arguments) ?? 0 }
        }
    }

    public func streamVersion(_ stream: StreamID) async throws -> Int64? {
        try await mapErrors {
            try await pool.read { db in try SQLiteOutboxTransaction.streamVersion(db, stream) }
        }
    }

    public func events(after position: OutboxPosition, limit: Int) async throws -> [EventEnvelope] {
        try await events(after: position, limit: limit, selecting: .all).events
    }

    public func events(after position: OutboxPosition, limit: Int, selecting selection: EventSelection) async throws -> OutboxRange {
        try await mapErrors {
            try await pool.read { db in
                // Positions here are dense (one writer numbers them), so the head bounds the count:
                // a large read's array is allocated once instead of doubling up to a catch-up's
                // 100,000 events (each doubling faulted in fresh pages the kernel had to zero).
                let limit = max(limit, 0)
                let expected = limit < Self.sizedReads ? 0
                    : min(limit, Self.largestSizedRead, Int(max(try Self.head(db).rawValue - max(position.rawValue, 0), 0)))
                return try EventEnvelope.fetchRange(
                    db.cachedStatement(sql: "SELECT \(EventEnvelope.outboxColumns) FROM canon_outbox WHERE position > ? ORDER BY position LIMIT ?"),
                    arguments: [position.rawValue, limit], expected: expected, selecting: selection)
            }
        }
    }

    public func events(in stream: StreamID, through position: OutboxPosition) async throws -> [EventEnvelope] {
        try await mapErrors {
            try await pool.read { db in
                try EventEnvelope.fetchAll(
                    db.cachedStatement(sql: "SELECT \(EventEnvelope.outboxColumns) FROM canon_outbox WHERE stream_id = ? AND position <= ? ORDER BY stream_version"),
                    arguments: [stream.rawValue, position.rawValue])
            }
        }
    }

    public func headPosition() async throws -> OutboxPosition {
        try await mapErrors {
            try await pool.read { db in try Self.head(db) }
        }
    }

    public func checkHealth() async throws {
        try await mapErrors {
            try await pool.read { db in _ = try Int.fetchOne(db, sql: "SELECT 1") }
        }
    }

    /// Runs raw SQL against the file, bypassing the store's rules: for tests that prove the
    /// database itself enforces them.
    public func executeRawSQL(_ sql: String) async throws {
        try await mapErrors {
            try await pool.write { db in try db.execute(sql: sql) }
        }
    }

    private func mapErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DatabaseError {
            throw CanonicalStoreError(sqlite: error)
        }
    }
}

extension CanonicalStoreError {
    init(sqlite error: DatabaseError) {
        let message = error.message ?? error.description
        switch error.extendedResultCode {
        case .SQLITE_CONSTRAINT_PRIMARYKEY, .SQLITE_CONSTRAINT_UNIQUE:
            let table = message.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            self = .uniqueViolation(table: table.split(separator: ".").first.map(String.init) ?? table, detail: message)
        case .SQLITE_CONSTRAINT_TRIGGER where message.contains("append-only"):
            let table = message.components(separatedBy: " ").last ?? "table"
            self = .appendOnlyViolation(table: table)
        default:
            if error.resultCode == .SQLITE_CONSTRAINT {
                self = .constraintViolation(message)
            } else if [.SQLITE_BUSY, .SQLITE_LOCKED].contains(error.resultCode) {
                // Another connection held the lock past the busy timeout.
                self = .contended("SQLite error \(error.resultCode.rawValue): \(message)")
            } else if error.resultCode == .SQLITE_FULL {
                self = .unavailable("SQLite error \(error.resultCode.rawValue): \(message)")
            } else {
                self = .storage("SQLite error \(error.resultCode.rawValue): \(message)")
            }
        }
    }
}

extension SQLiteCanonicalStore: SnapshotReadable {
    /// Reads of at least this many events are sized from the head first (small ones, a live
    /// agent's, skip the extra query); no read reserves more than `largestSizedRead` up front.
    static let sizedReads = 1_000
    static let largestSizedRead = 1 << 18

    /// The outbox's last position as `db` sees it.
    static func head(_ db: Database) throws -> OutboxPosition {
        OutboxPosition(try Int64.fetchOne(db, sql: "SELECT MAX(position) FROM canon_outbox") ?? 0)
    }

    /// A WAL snapshot: it stays readable however long the rebuild reading it takes, while writers
    /// go on (the WAL cannot be checkpointed past it meanwhile).
    public func snapshot() async throws -> any CanonicalSnapshot {
        let pool = self.pool, tables = self.tables
        return try await mapErrors {
            let snapshot = try pool.makeSnapshot()
            let head = try await snapshot.read { db in try Self.head(db) }
            return SQLiteCanonicalSnapshot(snapshot: snapshot, head: head, tables: tables)
        }
    }
}

final class SQLiteCanonicalSnapshot: CanonicalSnapshot, @unchecked Sendable {
    private let snapshot: DatabaseSnapshot
    let head: OutboxPosition
    private let tables: [String: TableSchema]

    init(snapshot: DatabaseSnapshot, head: OutboxPosition, tables: [String: TableSchema]) {
        self.snapshot = snapshot
        self.head = head
        self.tables = tables
    }

    func fetchAll(_ query: RowQuery) async throws -> [Canon.Row] {
        let (sql, arguments) = try SQLiteSchemaSQL.select(query, tables: tables)
        do {
            return try await snapshot.read { db in
                try Canon.Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments)
            }
        } catch let error as DatabaseError {
            throw CanonicalStoreError(sqlite: error)
        }
    }
}
