import Canon
import Foundation
import PostgresNIO
import Synchronization

/// How one PostgreSQL projection store exposes its keys and digests to a drift check.
///
/// Stored digests are summed and split in SQL; the digests of stored content are computed in
/// Swift, by the same `DriftDigest` code that made them when the rows were applied (SQLite runs
/// that code inside the engine as `canon_digest(...)`; PostgreSQL would need a C extension).
struct PostgresDriftQueries: Sendable {
    /// `key, digest` rows (each key once; `digest` the signed 64-bit digest kept when applying,
    /// the wrapping sum of a key's rows) for keys matching a WHERE fragment on `key`.
    var stored: @Sendable (_ whereSQL: String) -> String
    /// Every key once.
    var keys: String
    /// The digests of `keys` computed from their stored content (absent keys left out).
    var content: @Sendable (_ keys: [String], _ transaction: PostgresTransaction) async throws -> [String: UInt64]
    /// Keys with a row whose content no longer hashes to the digest kept for it, read a page at a
    /// time in `transaction` (which reads the snapshot's state).
    var tampered: @Sendable (_ transaction: PostgresTransaction) async throws -> [String]

    /// The wrapping 64-bit sum of `digest` per key, as a signed BIGINT, from rows of `table`
    /// (several rows per key): PostgreSQL sums BIGINT into NUMERIC, reduced here modulo 2⁶⁴.
    static func summed(_ table: String) -> @Sendable (String) -> String {
        { condition in
            """
            SELECT key, (CASE WHEN s >= 9223372036854775808 THEN s - 18446744073709551616 ELSE s END)::bigint AS digest
            FROM (SELECT key, mod(mod(sum(digest::numeric), 18446744073709551616) + 18446744073709551616, 18446744073709551616) AS s
                  FROM \(table) WHERE \(condition) GROUP BY key) k
            """
        }
    }
}

/// One REPEATABLE READ, read-only transaction of a projection schema, held from `open` until
/// `close()`: every range checksum and scan of a drift check reads the state of one moment, as
/// SQLite's snapshot does, while the agent goes on applying.
///
/// Statements run one at a time on its connection, in the order they were asked for. If the
/// transaction ends (the connection lost, the server's idle limit passed), every call waiting and
/// every later one gets a storage error instead of waiting.
final class PostgresDriftSnapshot: DriftSnapshot {
    let checkpoint: OutboxPosition
    private let session: Session
    private let queries: PostgresDriftQueries
    private let database: PostgresProjectionDatabase
    /// The held transaction's snapshot, exported (`pg_export_snapshot()`), so the content scan
    /// reads the same state on a connection of its own, beside the range checks.
    private let exported: String

    /// The idle limit inside the snapshot: the check computes the canonical side between its
    /// reads (about 50 s for a million cases, cold), longer than the connections' usual 30 s.
    static let idleLimit = "15min"

    private init(checkpoint: OutboxPosition, session: Session, queries: PostgresDriftQueries, database: PostgresProjectionDatabase, exported: String) {
        self.checkpoint = checkpoint
        self.session = session
        self.queries = queries
        self.database = database
        self.exported = exported
    }

    static func open(_ database: PostgresProjectionDatabase, queries: PostgresDriftQueries) async throws -> PostgresDriftSnapshot {
        let session = Session(database)
        do {
            let (position, exported) = try await session.run { transaction in
                let position = try await transaction.rows("SELECT position FROM canon_checkpoint WHERE id = 1").first?.decode(Int64.self) ?? 0
                let exported = try await transaction.rows("SELECT pg_export_snapshot()").first?.decode(String.self) ?? ""
                return (position, exported)
            }
            return PostgresDriftSnapshot(checkpoint: OutboxPosition(position), session: session, queries: queries, database: database, exported: exported)
        } catch {
            session.close()
            throw error
        }
    }

    /// Runs `body` in the snapshot's transaction.
    func run<T: Sendable>(_ body: @escaping @Sendable (PostgresTransaction) async throws -> T) async throws -> T {
        try await session.run(body)
    }

    private static func bounds(_ range: KeyRange) -> (String, [CanonValue]) {
        var conditions: [String] = []
        var binds: [CanonValue] = []
        if let lower = range.lower {
            binds.append(.text(lower))
            conditions.append("key >= $\(binds.count)")
        }
        if let upper = range.upper {
            binds.append(.text(upper))
            conditions.append("key < $\(binds.count)")
        }
        return (conditions.isEmpty ? "TRUE" : conditions.joined(separator: " AND "), binds)
    }

    func checksum(_ range: KeyRange) async throws -> RangeChecksum {
        let (condition, binds) = Self.bounds(range)
        let sql = """
            SELECT count(*), coalesce(sum(digest & 4294967295), 0)::bigint, coalesce(sum((digest >> 32) & 4294967295), 0)::bigint
            FROM (\(queries.stored(condition))) s
            """
        return try await run { transaction in
            guard let row = try await transaction.rows(sql, binds).first else { return RangeChecksum() }
            let (count, low, high) = try row.decode((Int64, Int64, Int64).self)
            return RangeChecksum(count: Int(count), low: low, high: high)
        }
    }

    func digests(_ range: KeyRange) async throws -> [KeyDigest] {
        let (condition, binds) = Self.bounds(range)
        let sql = "SELECT key, digest FROM (\(queries.stored(condition))) s ORDER BY key"
        return try await run { transaction in
            try await transaction.rows(sql, binds).map { row in
                let (key, digest) = try row.decode((String, Int64).self)
                return KeyDigest(key: key, digest: UInt64(bitPattern: digest))
            }
        }
    }

    func splitPoints(_ range: KeyRange, parts: Int) async throws -> [String] {
        let (condition, binds) = Self.bounds(range)
        let stored = queries.stored(condition)
        return try await run { transaction in
            let count = try await transaction.rows("SELECT count(*) FROM (\(stored)) s", binds).first?.decode(Int64.self) ?? 0
            guard parts > 1, count > 1 else { return [] }
            let step = max(1, Int(count) / parts)
            let sql = """
                SELECT key FROM (SELECT key, row_number() OVER (ORDER BY key) - 1 AS n FROM (\(stored)) s) r
                WHERE n > 0 AND n % $\(binds.count + 1) = 0 ORDER BY key LIMIT $\(binds.count + 2)
                """
            return try await transaction.rows(sql, binds + [.integer(Int64(step)), .integer(Int64(parts - 1))]).map { try $0.decode(String.self) }
        }
    }

    /// Scanned in a transaction of its own that imports the snapshot: the range checks go on
    /// meanwhile on the held one (two connections, two cores).
    func tampered() async throws -> [String] {
        let tampered = queries.tampered
        let exported = self.exported
        let keys = try await database.mapped {
            try await database.database.transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", deadline: PostgresDatabase.longOperation) {
                transaction in
                try await transaction.execute("SET TRANSACTION SNAPSHOT '\(exported.replacingOccurrences(of: "'", with: "''"))'")
                return try await tampered(transaction)
            }
        }
        return Array(Set(keys)).sorted()
    }

    func contentDigests(_ keys: [String]) async throws -> [String: UInt64] {
        var digests: [String: UInt64] = [:]
        let content = queries.content
        for start in stride(from: 0, to: keys.count, by: 1_000) {
            let batch = Array(keys[start..<min(start + 1_000, keys.count)])
            digests.merge(try await run { try await content(batch, $0) }) { $1 }
        }
        return digests
    }

    func sampleKeys(_ count: Int) async throws -> [String] {
        let sql = "SELECT key FROM (\(queries.keys)) k ORDER BY random() LIMIT $1"
        return try await run { transaction in try await transaction.rows(sql, [.integer(Int64(max(0, count)))]).map { try $0.decode(String.self) } }
    }

    func close() { session.close() }

    /// The held transaction: a task that opens it, then runs the statements it is handed until
    /// `close()`, then commits.
    final class Session: Sendable {
        private struct Job: Sendable {
            let run: @Sendable (PostgresTransaction) async -> Void
        }

        private struct State {
            var next = 0
            var waiting: [Int: @Sendable (ProjectionError) -> Void] = [:]
            var ended: ProjectionError?
        }

        private let jobs: AsyncStream<Job>.Continuation
        private let state = Mutex(State())
        private let name: String

        init(_ database: PostgresProjectionDatabase) {
            let (stream, jobs) = AsyncStream<Job>.makeStream()
            self.jobs = jobs
            self.name = database.identity.description
            let name = self.name
            Task {
                let ending: ProjectionError
                do {
                    try await database.mapped {
                        try await database.database.transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", deadline: PostgresDatabase.longOperation) {
                            transaction in
                            try await transaction.execute("SET LOCAL idle_in_transaction_session_timeout = '\(PostgresDriftSnapshot.idleLimit)'")
                            for await job in stream { await job.run(transaction) }
                        }
                    }
                    ending = .storage("\(name): the drift snapshot is closed")
                } catch let error as ProjectionError {
                    ending = error
                } catch {
                    ending = .storage("\(name): the drift snapshot ended: \(error)")
                }
                self.end(ending)
            }
        }

        /// Fails every call waiting, and every later one, with `ending`.
        private func end(_ ending: ProjectionError) {
            let waiting = state.withLock { state in
                state.ended = ending
                defer { state.waiting = [:] }
                return Array(state.waiting.values)
            }
            for fail in waiting { fail(ending) }
        }

        func run<T: Sendable>(_ body: @escaping @Sendable (PostgresTransaction) async throws -> T) async throws -> T {
            let name = self.name
            return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let once = Mutex<CheckedContinuation<T, any Error>?>(continuation)
                let resume: @Sendable (Result<T, any Error>) -> Void = { result in once.withLock { $0.take() }?.resume(with: result) }
                let registered: Int? = state.withLock { state in
                    guard state.ended == nil else { return nil }
                    state.next += 1
                    state.waiting[state.next] = { resume(.failure($0)) }
                    return state.next
                }
                guard let id = registered else {
                    resume(.failure(state.withLock { $0.ended } ?? .storage("\(name): the drift snapshot is closed")))
                    return
                }
                let job = Job { [self] transaction in
                    do {
                        resume(.success(try await body(transaction)))
                    } catch let error as PSQLError {
                        let mapped = PostgresDatabase.canonError(error)
                        resume(.failure(ProjectionError.storage("\(name): \((mapped as? CanonicalStoreError)?.message ?? "\(mapped)")")))
                    } catch {
                        resume(.failure(error))
                    }
                    self.state.withLock { _ = $0.waiting.removeValue(forKey: id) }
                }
                if case .terminated = jobs.yield(job) {
                    state.withLock { _ = $0.waiting.removeValue(forKey: id) }
                    resume(.failure(ProjectionError.storage("\(name): the drift snapshot is closed")))
                }
            }
        }

        /// Lets the statements already asked for run, then commits.
        func close() { jobs.finish() }
    }
}

extension PostgresProjectionDatabase {
    /// The drift snapshot of this schema.
    func driftSnapshot(_ queries: PostgresDriftQueries) async throws -> PostgresDriftSnapshot {
        try await PostgresDriftSnapshot.open(self, queries: queries)
    }

    /// Keeps the summary of the last check of `summary.mode` (`canon_drift`).
    func recordDrift(_ summary: DriftSummary) async throws {
        let json = try summary.storedJSON()
        try await write { transaction in
            try await transaction.execute(
                "INSERT INTO canon_drift (mode, summary) VALUES ($1, $2) ON CONFLICT (mode) DO UPDATE SET summary = excluded.summary",
                [.text(summary.mode.rawValue), .text(json)])
        }
    }

    func driftSummaries() async throws -> [DriftSummary] {
        let rows = try await mapped { try await database.rows("SELECT summary FROM canon_drift").map { try $0.decode(String.self) } }
        return try DriftSummary.stored(rows, of: identity)
    }
}
