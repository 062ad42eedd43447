import Canon
import Foundation
import GRDB
import Synchronization

/// The file of one projection version, with the bookkeeping every projection store keeps beside
/// its data: checkpoint, dead letters and heartbeat.
///
/// Derived stores are rebuildable, so they run with `synchronous = NORMAL`: a power loss may
/// lose the last transactions, which the agent then applies again from the outbox.
final class SQLiteProjectionDatabase: ProjectionBookkeeping {
    let pool: DatabasePool
    let identity: ProjectionIdentity
    /// Each connection's page cache: 64 MiB (KiB, negative as SQLite takes it).
    static let cacheSize = -65_536
    /// The writer's page cache during bulk work (a catch-up, a build from state): 256 MiB. Its
    /// transactions write index pages all over (the keys are random); a larger cache keeps them
    /// until the commit instead of spilling them to the WAL mid-transaction and writing them
    /// again at the commit (a catch-up of 1,000,000 events wrote its documents about 7% faster).
    static let bulkCacheSize = -262_144
    /// WAL pages after which a commit checkpoints: SQLite's 1,000 (4 MiB) for a live store, whose
    /// commits then never stall long (commit-to-searchable p99 went from 8 ms to 34 ms with
    /// 10,000), and 10,000 while a store catches up or is built: those transactions rewrite the
    /// same index pages each time, and every checkpoint copies them again.
    static let walCheckpointPages = 1_000
    static let bulkWalCheckpointPages = 10_000

    /// Whether the writer checkpoints as for bulk work and has the bulk page cache, how many
    /// writes asked for the live settings since the last that asked for bulk, how often the page
    /// cache was resized (tests), and how many heartbeats in a row found the agent idle with no
    /// bulk write since. The writer runs one transaction at a time.
    private let settings = Mutex((bulkCheckpoints: false, bulkCache: false, liveWrites: 0, cacheChanges: 0, idleBeats: 0))

    /// Writes that ask for the live settings, after bulk ones, before the page cache shrinks back:
    /// a store whose batches fall on either side of the fold-ahead threshold in turn would
    /// otherwise free most of its cache and grow it again every batch. (The checkpoint interval
    /// follows at once: it costs nothing to change, and a live store needs short checkpoints.)
    static let liveWritesBeforeCacheShrinks = 16

    /// Heartbeats in a row that find the agent idle, with no bulk write between them, before the
    /// page cache shrinks back even without live writes: 30 s at the default 1 s interval.
    static let idleBeatsBeforeCacheShrinks = 30

    /// How often the writer's page cache was resized.
    var cacheChanges: Int { settings.withLock { $0.cacheChanges } }

    /// Sets how often the writer's commits checkpoint the WAL and its page cache, for bulk work
    /// or live work, when that changes (settings of the connection: they hold for the
    /// transactions after this one too). The bulk settings apply at once; the live page cache
    /// after `liveWritesBeforeCacheShrinks` writes in a row ask for it, or at once with `now`.
    /// Call it inside a write.
    func useSettings(bulk: Bool, now: Bool = false, _ db: Database) throws {
        let (checkpoints, cache) = settings.withLock { state -> (Bool, Bool) in
            state.liveWrites = bulk ? 0 : min(state.liveWrites + 1, Self.liveWritesBeforeCacheShrinks)
            if bulk { state.idleBeats = 0 }
            let cache = bulk ? !state.bulkCache : state.bulkCache && (now || state.liveWrites >= Self.liveWritesBeforeCacheShrinks)
            return (state.bulkCheckpoints != bulk, cache)
        }
        if checkpoints {
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(bulk ? Self.bulkWalCheckpointPages : Self.walCheckpointPages)")
            settings.withLock { $0.bulkCheckpoints = bulk }
        }
        if cache {
            try db.execute(sql: "PRAGMA cache_size = \(bulk ? Self.bulkCacheSize : Self.cacheSize)")
            // Only once it holds: a failed setting is tried again by the next write.
            settings.withLock {
                $0.bulkCache = bulk
                $0.cacheChanges += 1
            }
        }
    }

    /// Gives the bulk page cache back once `idleBeatsBeforeCacheShrinks` heartbeats in a row
    /// found the agent idle with no bulk write between them: a store that goes quiet after a
    /// catch-up may not see the `liveWritesBeforeCacheShrinks` live writes for hours, and would
    /// keep the bulk cache until then. A store whose bursts come more often than that keeps it
    /// (the thrash the hysteresis is there to stop). Call it inside a write, with each heartbeat.
    func settleCache(idle: Bool, _ db: Database) throws {
        let shrink = settings.withLock { state in
            state.idleBeats = idle ? state.idleBeats + 1 : 0
            return state.bulkCache && state.idleBeats >= Self.idleBeatsBeforeCacheShrinks
        }
        if shrink { try useSettings(bulk: false, now: true, db) }
    }

    let path: String
    private let faults: FaultInjector?

    /// - Parameter upgrades: later migrations of the store's own tables, by identifier, in order;
    ///   a new file runs them right after `schema`.
    init(
        path: String, identity: ProjectionIdentity, faults: FaultInjector?,
        upgrades: [(String, @Sendable (Database) throws -> Void)] = [], schema: @escaping @Sendable (Database) throws -> Void
    ) throws {
        self.path = path
        self.identity = identity
        self.faults = faults
        var config = GRDB.Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Reads (searches, drift scans) map the file instead of copying pages through read(2).
            try db.execute(sql: "PRAGMA mmap_size = 1073741824")
            // Pages written since the last checkpoint live in the WAL, which is not mapped: a
            // larger cache keeps a catch-up's index pages in memory instead of re-reading them.
            try db.execute(sql: "PRAGMA cache_size = \(Self.cacheSize)")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.walCheckpointPages)")
            SQLiteDrift.register(db)
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("canon.projection.v1") { db in
                try db.execute(sql: """
                    CREATE TABLE canon_checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL, committed_at INTEGER) STRICT;
                    INSERT INTO canon_checkpoint VALUES (1, 0, NULL);
                    CREATE TABLE canon_dead_letters (
                        position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, type TEXT NOT NULL, error TEXT NOT NULL,
                        attempts INTEGER NOT NULL, first_failed_at INTEGER NOT NULL, last_failed_at INTEGER NOT NULL, state TEXT NOT NULL
                    ) STRICT;
                    CREATE TABLE canon_heartbeat (
                        id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL, state TEXT NOT NULL, last_error TEXT, owner TEXT NOT NULL
                    ) STRICT;
                    CREATE TABLE canon_identity (name TEXT NOT NULL, version INTEGER NOT NULL) STRICT;
                    """)
                try db.execute(sql: "INSERT INTO canon_identity VALUES (?, ?)", arguments: [identity.name, identity.version])
                try schema(db)
            }
            for (identifier, upgrade) in upgrades {
                migrator.registerMigration(identifier) { db in try upgrade(db) }
            }
            migrator.registerMigration("canon.projection.v2-drift") { db in
                // The summary of the last drift check of each mode.
                try db.execute(sql: "CREATE TABLE canon_drift (mode TEXT PRIMARY KEY, summary TEXT NOT NULL) STRICT")
            }
            // A file of another projection or version (copied or renamed by hand) must not be
            // folded into as this one.
            let stored = try pool.read { db in
                try db.tableExists("canon_identity") ? GRDB.Row.fetchOne(db, sql: "SELECT name, version FROM canon_identity") : nil
            }
            if let stored {
                let name: String = stored["name"], version: Int = stored["version"]
                guard name == identity.name, version == identity.version else {
                    throw ProjectionError.storage("\(path) holds projection \(name)@\(version), not \(identity); move it back, or rebuild \(identity.name)")
                }
            }
            // A file written by a newer Canon has migrations this one does not know: reading or
            // folding into it with the older schema would be guesswork.
            if try pool.read({ db in try migrator.hasBeenSuperseded(db) }) {
                throw ProjectionError.storage("\(path) was written by a newer version of Canon (it has migrations this one does not know); open it with that version, or rebuild it")
            }
            try migrator.migrate(pool)
        } catch let error as DatabaseError {
            throw ProjectionError.storage("cannot open projection store \(identity) at \(path): \(error.message ?? error.description)")
        }
    }

    func checkpoint() async throws -> Checkpoint {
        try await mapped {
            try await pool.read { db in try Self.checkpoint(db) }
        }
    }

    static func checkpoint(_ db: Database) throws -> Checkpoint {
        let row = try GRDB.Row.fetchOne(db, sql: "SELECT position, committed_at FROM canon_checkpoint WHERE id = 1")
        let position: Int64 = row?["position"] ?? 0
        let committed: Int64? = row?["committed_at"]
        return Checkpoint(position: OutboxPosition(position), committedAt: committed.map { Timestamp.date(microseconds: $0) })
    }

    /// Runs `body` and moves the checkpoint from `from` to `to` by compare-and-set, in one transaction.
    func advance(from: OutboxPosition, to: Checkpoint, body: @escaping @Sendable (Database) throws -> Void) async throws {
        let identity = self.identity
        let faults = self.faults
        try await mapped {
            try await pool.write { db in
                let current = try Self.checkpoint(db).position
                guard current == from else { throw ProjectionError.checkpointConflict(identity, expected: from, actual: current) }
                try body(db)
                try db.execute(
                    sql: "UPDATE canon_checkpoint SET position = ?, committed_at = ? WHERE id = 1",
                    arguments: [to.position.rawValue, to.committedAt.map(Timestamp.microseconds)])
                try faults?(.beforeCommit)
            }
        }
    }

    /// Runs `body` only while the checkpoint is still `position`, in one transaction.
    func write(at position: OutboxPosition, _ body: @escaping @Sendable (Database) throws -> Void) async throws {
        let identity = self.identity
        try await write { db in
            let current = try Self.checkpoint(db).position
            guard current == position else { throw ProjectionError.checkpointConflict(identity, expected: position, actual: current) }
            try body(db)
        }
    }

    func write(_ body: @escaping @Sendable (Database) throws -> Void) async throws {
        try await mapped { try await pool.write { db in try body(db) } }
    }

    func park(_ letter: DeadLetter, from: OutboxPosition, to: Checkpoint) async throws {
        try await advance(from: from, to: to) { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO canon_dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    letter.position.rawValue, letter.streamID.rawValue, letter.type, letter.error, letter.attempts,
                    Timestamp.microseconds(letter.firstFailedAt), Timestamp.microseconds(letter.lastFailedAt), letter.state.rawValue,
                ])
        }
    }

    func deadLetters() async throws -> [DeadLetter] {
        let identity = self.identity
        return try await mapped {
            try await pool.read { db in
                try GRDB.Row.fetchAll(db, sql: "SELECT * FROM canon_dead_letters ORDER BY position").map { row in
                    DeadLetter(
                        projection: identity, position: OutboxPosition(row["position"]), streamID: StreamID(row["stream_id"] as String),
                        type: row["type"], error: row["error"], attempts: row["attempts"],
                        firstFailedAt: Timestamp.date(microseconds: row["first_failed_at"]),
                        lastFailedAt: Timestamp.date(microseconds: row["last_failed_at"]),
                        state: DeadLetter.State(rawValue: row["state"]) ?? .parked)
                }
            }
        }
    }

    func setDeadLetterState(position: OutboxPosition, to state: DeadLetter.State) async throws {
        let identity = self.identity
        try await write { db in
            try db.execute(sql: "UPDATE canon_dead_letters SET state = ? WHERE position = ?", arguments: [state.rawValue, position.rawValue])
            if db.changesCount == 0 { throw ProjectionError.unknownDeadLetter(identity, position: position) }
        }
    }

    func rewind(to position: OutboxPosition) async throws {
        let identity = self.identity
        try await write { db in
            let current = try Self.checkpoint(db).position
            guard position <= current, position >= .start else {
                throw ProjectionError.invalidRewind(identity, to: position, checkpoint: current)
            }
            try db.execute(sql: "UPDATE canon_checkpoint SET position = ?, committed_at = NULL WHERE id = 1", arguments: [position.rawValue])
        }
    }

    func recordHeartbeat(_ heartbeat: AgentHeartbeat) async throws {
        try await write { db in
            try self.settleCache(idle: heartbeat.state == .idle, db)
            try db.execute(
                sql: """
                    INSERT INTO canon_heartbeat VALUES (1, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET at = excluded.at, state = excluded.state, last_error = excluded.last_error, owner = excluded.owner
                    WHERE excluded.state <> 'stopped' OR canon_heartbeat.owner = excluded.owner
                    """,
                arguments: [Timestamp.microseconds(heartbeat.at), heartbeat.state.rawValue, heartbeat.lastError, heartbeat.owner])
        }
    }

    func heartbeat() async throws -> AgentHeartbeat? {
        try await mapped {
            try await pool.read { db in
                try GRDB.Row.fetchOne(db, sql: "SELECT * FROM canon_heartbeat WHERE id = 1").map { row in
                    AgentHeartbeat(
                        at: Timestamp.date(microseconds: row["at"]), state: AgentState(rawValue: row["state"]) ?? .stopped,
                        lastError: row["last_error"], owner: row["owner"])
                }
            }
        }
    }

    /// Checkpoint, row count and checksum of `sql`'s rows (in any order; each column a field of
    /// the row), in one read transaction.
    func contentSummary(rowsSQL sql: String) async throws -> ContentSummary {
        try await mapped {
            try await pool.read { db in
                let checkpoint = try Self.checkpoint(db).position
                var hasher = ContentHasher()
                var rows = 0
                // Each row's text is hashed where SQLite holds it, not copied into a String.
                let statement = try RawStatement(db, sql)
                while try statement.step() {
                    hasher.add(fields: statement.columnCount, statement.text)
                    rows += 1
                }
                return ContentSummary(checkpoint: checkpoint, rows: rows, checksum: hasher.hexDigest)
            }
        }
    }

    func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DatabaseError {
            throw ProjectionError.storage("\(identity): \(error.message ?? error.description)", from: CanonicalStoreError(sqlite: error))
        }
    }
}
