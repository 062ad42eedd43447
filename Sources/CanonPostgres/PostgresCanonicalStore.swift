import Canon
import Foundation
import Logging
import PostgresNIO

/// The scale-out canonical store: domain tables and the transactional outbox in one PostgreSQL
/// database, shared by any number of `canon` processes.
///
/// ## Why positions never skip
/// The bug this engine must not have: a reader sees position 11 committed while position 10,
/// taken earlier by a slower transaction, is still in flight; the reader moves its checkpoint to
/// 11 and event 10 is skipped forever. Identity columns and sequences have exactly that race.
///
/// Two cures are known. One orders readers by transaction id and holds them below
/// `pg_snapshot_xmin(pg_current_snapshot())`, the oldest transaction still running; it keeps
/// writers fully parallel but leaves positions with gaps and out of commit order, so "applied
/// up to P" stops meaning "has seen every write up to P". Canon's contract (gap-free positions in
/// commit order, on which read-your-writes, lag in events and checkpoint comparisons rest)
/// keeps the other: **positions are assigned under a lock, as late as possible.** A commit reads
/// its streams' versions (numbering its events and checking its expectations), writes its domain
/// rows, in parallel with every other writer, then runs the serialized tail as one statement:
/// `UPDATE canon_outbox_head … RETURNING` takes the head row's lock (waiting for the previous
/// committer) and reads the head it left, and the same statement appends the events at the
/// positions after it and notifies; then it commits. The row lock is released only after the
/// commit is visible, so position P+1 cannot be visible before P, and a reader that sees P+1 has
/// every position below; a transaction that rolls back rolls its increment back too, so there
/// are no gaps. The lock is held for two round trips: that statement and the commit.
///
/// The versions were read before the lock: when another writer appended to one of the same
/// streams in between, the insert collides on `(stream_id, stream_version)`. If an expectation
/// of ours names that stream, that is a version conflict; if not, the commit runs again, taking
/// the lock first this time, so a hot stream cannot starve it.
///
/// The outbox also records each event's `txid` (`xid8`) for diagnosis.
///
/// ## Other rules
/// - A writer that failed on a row (it lost a race on a row it also writes, or a stale read let it
///   write a row that exists) reports the version conflict, the real cause, rather than the row's
///   error.
/// - Append-only tables and the outbox refuse UPDATE, DELETE and TRUNCATE in a trigger.
/// - Every commit notifies channel `canon_outbox` with its last position; processes LISTEN to
///   wake their agents at once (polling stays as the fallback).
/// - Migrations run under a database-wide advisory lock, so processes starting together apply
///   each migration once.
public final class PostgresCanonicalStore: CanonicalStore {
    public struct Configuration: Sendable {
        public var maximumConnections: Int
        /// Test hook: fails a commit at a chosen point.
        public var faults: FaultInjector?
        /// Test hook: runs inside every write transaction after its domain writes, before the
        /// outbox lock (to hold transactions open and commit them out of order).
        public var holdOpen: (@Sendable () async -> Void)?

        /// Gathers the commits that arrive together into one transaction (`GroupCommitter`);
        /// nil commits each unit of work in a transaction of its own.
        public var groupCommit: GroupCommitter.Configuration?
        /// How long one statement or transaction may take before its caller gets a transient
        /// error (`PostgresDatabase.operationTimeout`).
        public var operationTimeout: Duration
        /// At most one commit notification per this long from this process; the commits in
        /// between are announced by the next one, at most this much later (`CommitAnnouncements`).
        /// Zero announces every commit.
        public var announceInterval: Duration
        /// How long the server lets a session sit idle inside a transaction before it ends it
        /// (`PostgresDatabase.idleInTransactionTimeout`).
        public var idleInTransactionTimeout: Duration

        public init(
            maximumConnections: Int = 16, faults: FaultInjector? = nil, holdOpen: (@Sendable () async -> Void)? = nil,
            groupCommit: GroupCommitter.Configuration? = GroupCommitter.Configuration(), operationTimeout: Duration = .seconds(60),
            announceInterval: Duration = .milliseconds(10), idleInTransactionTimeout: Duration = .seconds(30)
        ) {
            self.maximumConnections = maximumConnections
            self.faults = faults
            self.holdOpen = holdOpen
            self.groupCommit = groupCommit
            self.operationTimeout = operationTimeout
            self.announceInterval = announceInterval
            self.idleInTransactionTimeout = idleInTransactionTimeout
        }
    }

    /// The advisory-lock keys of this engine (one namespace: the high 32 bits spell "CANO").
    enum LockKey {
        static let migrations: Int64 = 0x4341_4E4F_0000_0002
    }

    /// The channel every commit notifies with its last position.
    public static let notificationChannel = "canon_outbox"
    /// Also notified, with the same position, by a commit that appended a priority event.
    public static let priorityChannel = "canon_priority"

    public let database: PostgresDatabase
    let tables: [String: TableSchema]
    private let configuration: Configuration
    /// Set when commits are gathered (`Configuration.groupCommit`).
    public let groupCommitter: GroupCommitter?
    private let announcements: CommitAnnouncements

    /// Connects to `url` and applies every migration not yet applied.
    ///
    /// - Throws: `CanonicalStoreError.storage` when the server cannot be reached or a migration fails.
    public init(url: PostgresURL, migrations: [SchemaMigration], configuration: Configuration = Configuration()) async throws {
        self.configuration = configuration
        groupCommitter = configuration.groupCommit.map { GroupCommitter(configuration: $0) }
        announcements = CommitAnnouncements(interval: configuration.announceInterval)
        database = PostgresDatabase(
            url: url, maximumConnections: configuration.maximumConnections, operationTimeout: configuration.operationTimeout,
            idleInTransactionTimeout: configuration.idleInTransactionTimeout)
        tables = SchemaMigration.tables(after: migrations)
        do {
            try await Self.migrate(database, migrations)
        } catch let error as CanonicalStoreError {
            throw CanonicalStoreError.storage("cannot open canonical store at \(url): \(error.message)")
        } catch {
            throw CanonicalStoreError.storage("cannot open canonical store at \(url): \(error)")
        }
    }

    private static func migrate(_ database: PostgresDatabase, _ migrations: [SchemaMigration]) async throws {
        try await database.transaction(deadline: PostgresDatabase.longOperation) { transaction in
            try await transaction.execute("SELECT pg_advisory_xact_lock(\(LockKey.migrations))")
            try await transaction.execute("CREATE TABLE IF NOT EXISTS canon_migrations (identifier TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            var applied: Set<String> = []
            for row in try await transaction.rows("SELECT identifier FROM canon_migrations") {
                applied.insert(try row.decode(String.self))
            }
            let all = [
                SchemaMigration.Applied(identifier: "canon.outbox.v1", statements: PostgresSchemaSQL.outboxDDL),
                SchemaMigration.Applied(
                    identifier: "canon.outbox.v2-priority",
                    statements: ["CREATE INDEX canon_outbox_priority ON canon_outbox (position) WHERE priority = 1"]),
                SchemaMigration.Applied(identifier: "canon.outbox.v3-require", statements: [PostgresSchemaSQL.requireFunction]),
                // Which version of each projection is live (`PostgresProjectionVersions`).
                SchemaMigration.Applied(identifier: "canon.outbox.v4-projection-versions", statements: [
                    """
                    CREATE TABLE canon_projection_versions (
                        name TEXT PRIMARY KEY, live INTEGER NOT NULL CHECK (live >= 1), previous INTEGER, building INTEGER,
                        last_rebuild_seconds DOUBLE PRECISION, switched_at TIMESTAMPTZ)
                    """,
                ]),
            ]
                + migrations.map { migration in
                    SchemaMigration.Applied(identifier: migration.identifier, statements: migration.steps.flatMap(PostgresSchemaSQL.ddl(for:)))
                }
            // A database written by a newer Canon has migrations this one does not know: its tables
            // may have columns or meanings this process would write without.
            let unknown = applied.subtracting(all.map(\.identifier))
            guard unknown.isEmpty else {
                throw CanonicalStoreError.storage(
                    "it was written by a newer version of Canon (migrations this one does not know: \(unknown.sorted().joined(separator: ", "))); open it with that version")
            }
            for migration in all where !applied.contains(migration.identifier) {
                for statement in migration.statements { try await transaction.execute(statement) }
                try await transaction.execute("INSERT INTO canon_migrations (identifier) VALUES ($1)", [.text(migration.identifier)])
            }
        }
    }

    /// Commits one unit of work: gathered with the others that arrive meanwhile into one
    /// transaction when group commit is on (see `GroupCommitter`), else alone.
    public func commit(_ work: UnitOfWork) async throws -> CommitResult {
        guard let groupCommitter else { return try await commit(batch: [work])[0] }
        return try await groupCommitter.commit(work) { batch in try await self.commit(batch: batch) }
    }

    public func commit(batch: [UnitOfWork]) async throws -> [CommitResult] {
        let expected = Set(batch.flatMap { $0.expectations.map(\.streamID) })
        var attempt = 0
        while true {
            attempt += 1
            do {
                // The first attempt is optimistic; a retry reads the versions under the head's
                // lock, so they are exact and it cannot collide again (a hot stream cannot starve it).
                return try await announcingCommit(batch, versionsUnderLock: attempt > 1)
            } catch let error as CanonicalStoreError where [.uniqueViolation, .constraintViolation, .rowNotFound].contains(error.code) {
                // A writer that waited on a row another writer changed fails on that row; when the
                // other writer also moved one of our streams, the version conflict is the cause.
                // (Only for errors of the rows: after a storage error, say a connection lost during
                // COMMIT, the outcome is unknown and must be reported as such, not as a conflict.)
                if !expected.isEmpty {
                    let versions = try await database.withConnection { try await Self.versions(of: Array(expected), in: $0) }
                    _ = try OutboxWriter.number(batch, versions: versions, last: nil, now: Date())
                }
                // Another writer appended to one of our streams between our reading its version and
                // numbering, and no expectation of ours says that matters: again, with fresh versions.
                if error.code == .uniqueViolation, error.message.contains("canon_outbox"), attempt < 3 { continue }
                throw error
            }
        }
    }

    /// One attempt (`commitOnce`), announced on `notificationChannel` by its own statement or,
    /// when `announcements` keep it quiet, by the next announcement after it.
    private func announcingCommit(_ batch: [UnitOfWork], versionsUnderLock: Bool) async throws -> [CommitResult] {
        guard batch.contains(where: { !$0.events.isEmpty }) else {
            return try await commitOnce(batch, versionsUnderLock: versionsUnderLock, announce: false)
        }
        let announce = announcements.claim(at: .now)
        let results: [CommitResult]
        do {
            results = try await commitOnce(batch, versionsUnderLock: versionsUnderLock, announce: announce)
        } catch {
            // A quiet commit whose outcome is unknown (a connection lost during COMMIT) may have
            // committed: the trailing announcement covers it too (it announces the head).
            if !announce, (error as? CanonicalStoreError)?.outcomeUnknown ?? true { scheduleTrailing(after: Int64.max) }
            throw error
        }
        guard let last = results.map(\.position.rawValue).max() else { return results }
        if announce {
            announcements.announced(last)
        } else {
            scheduleTrailing(after: last)
        }
        return results
    }

    /// Records a quiet commit through `position` and, unless one is already due, schedules the
    /// trailing announcement: the head as it is then, which covers every quiet commit before it.
    private func scheduleTrailing(after position: Int64) {
        guard let due = announcements.unannounced(position, at: .now) else { return }
        let announcements = self.announcements
        let database = self.database
        Task {
            try? await Task.sleep(until: due)
            guard announcements.takeTrailing(at: .now) != nil else { return }
            // Should it fail, the agents still poll (`ProjectionAgent.Configuration.idleWait`).
            _ = try? await database.rows(
                "SELECT pg_notify($1, position::text) FROM canon_outbox_head WHERE id = 1", [.text(Self.notificationChannel)], prepared: true)
        }
    }

    /// One attempt: versions read, domain rows written, then the serialized tail (see the type's
    /// notes) in one statement, and the commit.
    ///
    /// Every path takes its locks in one order: the domain rows, then the head. (A retry that
    /// took the head first deadlocked with a writer that held a row it needed and waited for the
    /// head: PostgreSQL broke it after `deadlock_timeout`, every commit stalled meanwhile, and
    /// one of the two failed.)
    ///
    /// - Parameter versionsUnderLock: write the domain rows, then take the head's lock and read
    ///   the versions under it, exact (a retry after a collision).
    /// - Parameter announce: the tail notifies `notificationChannel` of the new head.
    private func commitOnce(_ batch: [UnitOfWork], versionsUnderLock: Bool, announce: Bool) async throws -> [CommitResult] {
        let tables = self.tables
        let configuration = self.configuration
        let streams = OutboxWriter.streams(of: batch)
        // The streams' versions, known or read before the lock: they number the events and
        // check the expectations (fail fast). A concurrent append to one of these streams
        // before we number makes our insert collide on (stream_id, stream_version), caught in
        // `commit`.
        // `.noStream` on a stream, before anything else appends to it in the batch, already
        // says its version: such streams are not read. A wrong one collides on inserting
        // version 1 and is reported as the conflict it is. (`.exactly(v)` is read: a v above
        // the stream's version would not collide, it would leave a gap.)
        // An expectation on a stream the batch does not append to guards a read: it is read, and
        // read again under the head's lock (`recheck`), since no insert of ours would collide.
        var known: Set<StreamID> = []
        var touched: Set<StreamID> = []
        var guarded: Set<StreamID> = []
        for work in batch {
            let appends = Set(work.events.map(\.streamID))
            for expectation in work.expectations where !touched.contains(expectation.streamID) && !known.contains(expectation.streamID) {
                if case .noStream = expectation.expected, appends.contains(expectation.streamID) { known.insert(expectation.streamID) }
            }
            touched.formUnion(appends)
        }
        for work in batch {
            for expectation in work.expectations where !touched.contains(expectation.streamID) { guarded.insert(expectation.streamID) }
        }
        let guardedStreams = guarded.sorted { $0.rawValue < $1.rawValue }
        // (The guarded streams are among `streams`: every expectation's stream is.)
        let unread = streams.filter { !known.contains($0) }
        if !versionsUnderLock, unread.isEmpty, configuration.faults == nil, configuration.holdOpen == nil,
           let results = try await commitInOneStatement(batch, announce: announce) {
            return results
        }
        return try await database.transaction { transaction in
            var versions: [StreamID: Int64] = [:]
            func readVersions() async throws -> [CommitResult] {
                for (stream, version) in try await Self.versions(of: unread, in: transaction) {
                    versions[stream] = version
                }
                return try OutboxWriter.number(batch, versions: versions, last: nil, now: Date())
            }
            // Read before the rows: a stale expectation fails before anything is written.
            var planned = versionsUnderLock ? [] : try await readVersions()
            try await Self.apply(batch.flatMap(\.mutations), tables: tables, in: transaction)
            try configuration.faults?(.afterMutations)
            await configuration.holdOpen?()
            if versionsUnderLock {
                try await transaction.execute("SELECT 1 FROM canon_outbox_head WHERE id = 1 FOR UPDATE")
                planned = try await readVersions()
            }
            let events = planned.flatMap(\.events)
            let head: PostgresRow?
            if events.isEmpty {
                // With guarded streams to re-check, under the head's lock.
                head = try await transaction.rows("SELECT position, committed_at FROM canon_outbox_head WHERE id = 1\(guardedStreams.isEmpty ? "" : " FOR UPDATE")").first
            } else {
                head = try await Self.append(events, now: Date(), announce: announce, in: transaction)
            }
            guard let head else { throw CanonicalStoreError.storage("the outbox head row is missing") }
            if !guardedStreams.isEmpty {
                // Under the head's lock every earlier commit is visible and no later one can
                // append: the guarded streams' versions now are final.
                var now = versions
                for stream in guardedStreams { now[stream] = nil }
                for (stream, version) in try await Self.versions(of: guardedStreams, in: transaction) { now[stream] = version }
                _ = try OutboxWriter.number(batch, versions: now, last: nil, now: Date())
            }
            let (position, committedAt) = try head.decode((Int64, Int64).self)
            let start = position - Int64(events.count)
            let last = start == 0 ? nil : (position: OutboxPosition(start), committedAt: Timestamp.date(microseconds: committedAt))
            let results = try OutboxWriter.number(batch, versions: versions, last: last, now: Timestamp.date(microseconds: committedAt))
            try configuration.faults?(.beforeCommit)
            return results
        }
    }

    /// The whole commit as one statement, so one round trip and its own transaction: for a
    /// batch that only inserts rows and appends to streams whose versions are known without
    /// reading (`.noStream`), which is what opening cases, registering parties and adding
    /// evidence do. The domain inserts are data-modifying CTEs beside the tail's (PostgreSQL
    /// runs every one of them to completion, all or nothing); the head's row lock is taken by
    /// the statement and held until its commit, as on the longer path.
    ///
    /// Its text depends on which tables and columns the batch writes and which rows it requires,
    /// not on how many rows or events (they are bound as arrays, `PostgresColumns`): it is
    /// prepared once per connection and shape.
    ///
    /// - Returns: nil when the batch does not qualify (an update or delete, no events); the
    ///   caller takes the longer path.
    private func commitInOneStatement(_ batch: [UnitOfWork], announce: Bool) async throws -> [CommitResult]? {
        let steps = Self.plan(batch.flatMap(\.mutations))
        var inserts: [(table: String, columns: [String], rows: [Row])] = []
        var required: [(table: String, row: Row)] = []
        for step in steps {
            switch step {
            case .inserts(let table, let columns, let rows): inserts.append((table, columns, rows))
            case .one(.require(let table, let row)):
                // Units gathered together often require the same row (one principal's writes): once.
                if !required.contains(where: { $0.table == table && $0.row == row }) { required.append((table, row)) }
            case .one: return nil
            }
        }
        // The statement's snapshot does not see the rows its own CTEs insert: a unit that
        // requires a row it inserts takes the longer path, which does.
        guard Set(required.map(\.table)).isDisjoint(with: inserts.map(\.table)) else { return nil }
        // A very large batch takes the longer path, which sends its rows in chunks.
        guard inserts.reduce(0, { $0 + $1.rows.count }) <= Self.rowsPerStatement else { return nil }
        // In an order of their own (not the units' arrival), so that batches of the same kinds
        // of work have one text: the inserts by table and columns (the canonical schema has no
        // foreign keys), the required rows by table and which of their columns are null.
        inserts.sort { ($0.table, $0.columns.joined(separator: ",")) < ($1.table, $1.columns.joined(separator: ",")) }
        required.sort { ($0.table, Self.shape(of: $0.row)) < ($1.table, Self.shape(of: $1.row)) }
        var binds = PostgresSchemaSQL.Binds()
        let requirements = try required.enumerated().map { index, requirement in
            try Self.requirementSQL(requirement.row, in: requirement.table, name: "r\(index)", tables: tables, binds: &binds)
        }
        var ctes: [(name: String, sql: String)] = []
        let planned = try OutboxWriter.number(batch, versions: [:], last: nil, now: Date())
        let events = planned.flatMap(\.events)
        guard !events.isEmpty else { return nil }
        for (index, insert) in inserts.enumerated() {
            ctes.append(("m\(index)", "\(try Self.insertSQL(insert.rows, columns: insert.columns, into: insert.table, tables: tables, binds: &binds)) RETURNING 1"))
        }
        let sql = try Self.tailSQL(events, now: Date(), announce: announce, binds: &binds, before: ctes, requiring: requirements)
        guard let head = try await database.rows(sql, binds.values, prepared: database.preparing(sql)).first else {
            throw CanonicalStoreError.storage("the outbox head row is missing")
        }
        let (position, committedAt) = try head.decode((Int64, Int64).self)
        let start = position - Int64(events.count)
        let last = start == 0 ? nil : (position: OutboxPosition(start), committedAt: Timestamp.date(microseconds: committedAt))
        return try OutboxWriter.number(batch, versions: [:], last: last, now: Timestamp.date(microseconds: committedAt))
    }

    static func versions(of streams: [StreamID], in transaction: PostgresTransaction) async throws -> [StreamID: Int64] {
        guard !streams.isEmpty else { return [:] }
        var binds = PostgresBindings()
        binds.append(streams.map(\.rawValue))
        let rows = try await transaction.connection.query(
            PostgresQuery(
                unsafeSQL: "SELECT stream_id, MAX(stream_version) FROM canon_outbox WHERE stream_id = ANY($1) GROUP BY stream_id", binds: binds),
            logger: transaction.logger
        ).collect()
        var versions: [StreamID: Int64] = [:]
        for row in rows {
            let (stream, version) = try row.decode((String, Int64).self)
            versions[StreamID(stream)] = version
        }
        return versions
    }

    /// The serialized tail in one statement: moves the head by the number of `events` (taking
    /// its row lock, waiting for the previous committer, reading what it left), appends the events
    /// at the positions after it with its commit time, and, when `announce`, notifies the channel
    /// with the last position (delivered when the transaction commits). Returns the new head and
    /// commit time.
    ///
    /// The events' positions and commit time here are placeholders; their stream versions are
    /// the ones written.
    static func append(_ events: [EventEnvelope], now: Date, announce: Bool, in transaction: PostgresTransaction) async throws -> PostgresRow? {
        var binds = PostgresSchemaSQL.Binds()
        return try await transaction.rows(try tailSQL(events, now: now, announce: announce, binds: &binds), binds.values, prepared: true).first
    }

    /// The tail statement (see `append`), after the data-modifying CTEs `before`, which run to
    /// completion before the head's row is locked: the head's UPDATE reads their row counts in
    /// InitPlans. (In the order the longer path takes: domain rows, then the head. The other
    /// order could deadlock with it: holding the head while waiting on a key that a writer
    /// holds while it waits for the head.)
    /// `requiring`: required rows (`requirementSQL`), each a CTE that share-locks the row and a
    /// condition on it that the head's update checks first, raising `CA002` when it fails, so the
    /// whole statement writes nothing.
    static func tailSQL(
        _ events: [EventEnvelope], now: Date, announce: Bool, binds: inout PostgresSchemaSQL.Binds, before: [(name: String, sql: String)] = [],
        requiring: [Requirement] = []
    ) throws -> String {
        var rows = PostgresColumns([.bigint, .text, .bigint, .text, .bigint, .text, .text, .text, .text, .bigint, .bigint])
        for (index, event) in events.enumerated() {
            try rows.append([
                .integer(Int64(index + 1)), .text(event.streamID.rawValue), .integer(event.streamVersion), .text(event.type),
                .integer(Int64(event.schemaVersion)), .text(String(decoding: event.payload, as: UTF8.self)), .text(event.actor),
                event.correlationID.map(CanonValue.text) ?? .null, event.causationID.map(CanonValue.text) ?? .null,
                .integer(Timestamp.microseconds(event.occurredAt)), .integer(event.priority ? 1 : 0),
            ])
        }
        let count = binds.bind(.integer(Int64(events.count)))
        let time = binds.bind(.timestamp(now))
        let eventRows = rows.unnest(binding: &binds)
        // A bind, not two texts: announcing or not, the statement is prepared once.
        let announced = binds.bind(.integer(announce ? 1 : 0))
        let ctes = (requiring.map(\.cte) + before).map { "\($0.name) AS (\($0.sql))," }.joined(separator: "\n")
        let priority = events.contains(where: \.priority) ? ", pg_notify('\(priorityChannel)', head.position::text)" : ""
        let afterThem = requiring.map { " AND \($0.condition)" }.joined() + before.map { " AND (SELECT count(*) FROM \($0.name)) >= 0" }.joined()
        return """
            WITH \(ctes)
            head AS (
                UPDATE canon_outbox_head SET position = position + \(count), committed_at = GREATEST(committed_at, \(time))
                WHERE id = 1\(afterThem) RETURNING position, committed_at),
            appended AS (
                INSERT INTO canon_outbox (\(PostgresSchemaSQL.outboxColumns))
                SELECT head.position - \(count) + e.k, e.stream_id, e.stream_version, e.type, e.schema_version, e.payload, e.actor,
                    e.correlation_id, e.causation_id, e.occurred_at, head.committed_at, e.priority
                FROM head, \(eventRows) AS e(
                    k, stream_id, stream_version, type, schema_version, payload, actor, correlation_id, causation_id, occurred_at, priority)
                RETURNING 1),
            notified AS (
                SELECT CASE WHEN \(announced)::bigint = 1 THEN pg_notify('\(notificationChannel)', head.position::text) END\(priority) FROM head)
            SELECT head.position, head.committed_at FROM head, notified
            """
    }

    /// One step of applying mutations: a single update or delete, or the inserts of one table
    /// with the same columns, sent as one multi-row statement.
    enum Step {
        case one(RowMutation)
        case inserts(table: String, columns: [String], rows: [Row])
    }

    /// `mutations` as steps, in order, except that inserts into one table with the same columns
    /// go into one step, placed where the first of them was. An insert moves up past mutations
    /// of other tables only, never past an update or delete of its own table. (The canonical
    /// schema has no foreign keys; when a moved insert still fails, the whole transaction rolls
    /// back and group commit retries each unit alone, in its own order.)
    static func plan(_ mutations: [RowMutation]) -> [Step] {
        var steps: [Step] = []
        var open: [String: [[String]: Int]] = [:]
        for mutation in mutations {
            switch mutation {
            case .insert(let table, let row):
                let columns = row.columns
                if let index = open[table]?[columns], case .inserts(_, _, var rows) = steps[index] {
                    rows.append(row)
                    steps[index] = .inserts(table: table, columns: columns, rows: rows)
                } else {
                    open[table, default: [:]][columns] = steps.count
                    steps.append(.inserts(table: table, columns: columns, rows: [row]))
                }
            case .update(let table, _, _), .delete(let table, _), .require(let table, _):
                open[table] = nil
                steps.append(.one(mutation))
            }
        }
        return steps
    }

    /// Applies `mutations` as `plan` orders them.
    static func apply(_ mutations: [RowMutation], tables: [String: TableSchema], in transaction: PostgresTransaction) async throws {
        for step in plan(mutations) {
            switch step {
            case .one(let mutation): try await apply(mutation, tables: tables, in: transaction)
            case .inserts(let table, let columns, let rows): try await insert(rows, columns: columns, into: table, tables: tables, in: transaction)
            }
        }
    }

    /// At most this many rows go in one statement (an array is at most 1 GB, and so is a message).
    static let rowsPerStatement = 10_000

    /// Which of a required row's columns are null: what its condition's text depends on.
    static func shape(of row: Row) -> String {
        row.columns.map { row[$0].isNull ? "\($0) null" : $0 }.joined(separator: ",")
    }

    /// The rows of one table in statements of `rowsPerStatement` rows (`insertSQL`), prepared
    /// once per shape.
    static func insert(_ rows: [Row], columns: [String], into table: String, tables: [String: TableSchema], in transaction: PostgresTransaction) async throws {
        for start in stride(from: 0, to: rows.count, by: rowsPerStatement) {
            var binds = PostgresSchemaSQL.Binds()
            let sql = try insertSQL(Array(rows[start..<min(start + rowsPerStatement, rows.count)]), columns: columns, into: table, tables: tables, binds: &binds)
            try await transaction.rows(sql, binds.values, prepared: transaction.database.preparing(sql))
        }
    }

    /// `INSERT INTO table (columns) SELECT * FROM unnest($1::text[], …)` for `rows`, each column
    /// bound as one array (`PostgresColumns`): one text for any number of rows.
    static func insertSQL(_ rows: [Row], columns: [String], into table: String, tables: [String: TableSchema], binds: inout PostgresSchemaSQL.Binds) throws -> String {
        guard let schema = tables[table] else { throw CanonicalStoreError.unknownTable(table) }
        let checked = try PostgresSchemaSQL.checked(columns, in: schema)
        var values = PostgresColumns(checked, of: schema)
        for row in rows { try values.append(checked.map { row[$0] }) }
        return "INSERT INTO \(quoted(schema.name)) (\(checked.map(quoted).joined(separator: ", "))) SELECT * FROM \(values.unnest(binding: &binds))"
    }

    static func apply(_ mutation: RowMutation, tables: [String: TableSchema], in transaction: PostgresTransaction) async throws {
        guard let schema = tables[mutation.table] else { throw CanonicalStoreError.unknownTable(mutation.table) }
        var binds = PostgresSchemaSQL.Binds()
        switch mutation {
        case .insert(_, let row):
            try await insert([row], columns: row.columns, into: schema.name, tables: tables, in: transaction)
        case .update(_, let key, let values):
            guard !schema.appendOnly else { throw CanonicalStoreError.appendOnlyViolation(table: schema.name) }
            let columns = try PostgresSchemaSQL.checked(values.columns, in: schema)
            let assignments = columns.map { "\(quoted($0)) = \(binds.bind(values[$0]))" }.joined(separator: ", ")
            let conditions = try PostgresSchemaSQL.conditions(key, in: schema, binds: &binds)
            let updated = try await transaction.rows(
                "UPDATE \(quoted(schema.name)) SET \(assignments)\(conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")) RETURNING 1",
                binds.values)
            if updated.isEmpty { throw CanonicalStoreError.rowNotFound(table: schema.name, key: key) }
        case .delete(_, let key):
            guard !schema.appendOnly else { throw CanonicalStoreError.appendOnlyViolation(table: schema.name) }
            let conditions = try PostgresSchemaSQL.conditions(key, in: schema, binds: &binds)
            try await transaction.execute(
                "DELETE FROM \(quoted(schema.name))\(conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))", binds.values)
        case .require(_, let row):
            let found = try await transaction.rows(try Self.requiredRow(row, in: schema, binds: &binds), binds.values)
            if found.isEmpty { throw CanonicalStoreError.requirementFailed(table: schema.name, row: row) }
        }
    }

    /// Selects the row `row` describes `FOR SHARE`: it cannot change until this transaction ends
    /// (an UPDATE of it waits), and in READ COMMITTED a version committed meanwhile is the one
    /// checked.
    static func requiredRow(_ row: Row, in schema: TableSchema, binds: inout PostgresSchemaSQL.Binds) throws -> String {
        let conditions = try PostgresSchemaSQL.conditions(row, in: schema, binds: &binds)
        return "SELECT 1 FROM \(quoted(schema.name))\(conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")) LIMIT 1 FOR SHARE"
    }

    /// A required row in the one commit statement: the CTE that selects it (`requiredRow`) and
    /// the condition on that CTE for the head's update.
    struct Requirement {
        var cte: (name: String, sql: String)
        var condition: String
    }

    /// A `RowMutation.require` in the one-statement commit: a CTE `name` that share-locks the
    /// row (so it cannot change before the commit; it is evaluated before the statement waits
    /// for the head's lock, and a version committed meanwhile is the one checked), and the
    /// condition on it for the head's update: true when the row is there, else `canon_require`
    /// raises `CA002` (mapped to `requirementFailed`) and the statement writes nothing.
    static func requirementSQL(
        _ row: Row, in table: String, name: String, tables: [String: TableSchema], binds: inout PostgresSchemaSQL.Binds
    ) throws -> Requirement {
        guard let schema = tables[table] else { throw CanonicalStoreError.unknownTable(table) }
        let cte = (name: name, sql: try requiredRow(row, in: schema, binds: &binds))
        return Requirement(
            cte: cte,
            condition: "canon_require(EXISTS (SELECT 1 FROM \(name)), \(binds.bind(.text(schema.name)))::text, \(binds.bind(.text(row.assignments)))::text)")
    }

    public func fetchOne(_ query: RowQuery) async throws -> Row? {
        var limited = query
        limited.limit = 1
        return try await fetchAll(limited).first
    }

    public func fetchAll(_ query: RowQuery) async throws -> [Row] {
        let (sql, binds) = try PostgresSchemaSQL.select(query, tables: tables)
        return try await database.rows(sql, binds, prepared: query.anyOf == nil).map(Self.row)
    }

    /// A result row as a `Row`, by column name.
    static func row(_ row: PostgresRow) throws -> Row {
        var values: [String: CanonValue] = [:]
        for cell in row { values[cell.columnName] = try cell.canonValue() }
        return Row(values)
    }

    public func fetchValues(_ query: RowQuery) async throws -> [[CanonValue]] {
        let (sql, binds) = try PostgresSchemaSQL.select(query, tables: tables)
        return try await database.rows(sql, binds, prepared: query.anyOf == nil).map { row in try row.map { try $0.canonValue() } }
    }

    public func count(_ table: String, filter: Row) async throws -> Int {
        let (sql, binds) = try PostgresSchemaSQL.count(table: table, filter: filter, tables: tables)
        return Int(try await database.rows(sql, binds, prepared: true).first?.decode(Int64.self) ?? 0)
    }

    public func streamVersion(_ stream: StreamID) async throws -> Int64? {
        try await database.rows("SELECT MAX(stream_version) FROM canon_outbox WHERE stream_id = $1", [.text(stream.rawValue)], prepared: true)
            .first?.decode(Int64?.self)
    }

    public func events(after position: OutboxPosition, limit: Int) async throws -> [EventEnvelope] {
        try await database.rows(
            "SELECT \(PostgresSchemaSQL.outboxColumns) FROM canon_outbox WHERE position > $1 ORDER BY position LIMIT $2",
            [.integer(position.rawValue), .integer(Int64(max(limit, 0)))], prepared: true
        ).map(EventEnvelope.init(outboxRow:))
    }

    /// Through the partial index on priority events (`canon.outbox.v2-priority`): a commit of
    /// ordinary events costs the priority path one index probe, not a read of its events.
    public func priorityEvents(after position: OutboxPosition, through: OutboxPosition, limit: Int) async throws -> [EventEnvelope] {
        try await database.rows(
            "SELECT \(PostgresSchemaSQL.outboxColumns) FROM canon_outbox WHERE priority = 1 AND position > $1 AND position <= $2 ORDER BY position LIMIT $3",
            [.integer(position.rawValue), .integer(through.rawValue), .integer(Int64(max(limit, 0)))], prepared: true
        ).map(EventEnvelope.init(outboxRow:))
    }

    public func events(in stream: StreamID, through position: OutboxPosition) async throws -> [EventEnvelope] {
        try await database.rows(
            "SELECT \(PostgresSchemaSQL.outboxColumns) FROM canon_outbox WHERE stream_id = $1 AND position <= $2 ORDER BY stream_version",
            [.text(stream.rawValue), .integer(position.rawValue)], prepared: true
        ).map(EventEnvelope.init(outboxRow:))
    }

    public func headPosition() async throws -> OutboxPosition {
        OutboxPosition(try await database.rows("SELECT MAX(position) FROM canon_outbox", prepared: true).first?.decode(Int64?.self) ?? 0)
    }

    public func checkHealth() async throws {
        try await database.rows("SELECT 1")
    }

    /// The bytes of every schema of the database (tables, their indexes and TOAST), by schema:
    /// the canonical tables live in `public`, each projection in a schema of its own.
    public func schemaSizes() async throws -> [String: Int64] {
        let rows = try await database.rows("""
            SELECT n.nspname, SUM(pg_total_relation_size(c.oid))::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') GROUP BY n.nspname
            """)
        var sizes: [String: Int64] = [:]
        for row in rows {
            let (schema, bytes) = try row.decode((String, Int64).self)
            sizes[schema] = bytes
        }
        return sizes
    }

    /// Runs raw SQL, bypassing the store's rules: for tests that prove the database itself
    /// enforces them.
    public func executeRawSQL(_ sql: String) async throws {
        try await database.rows(sql)
    }
}

extension SchemaMigration {
    /// A migration as the SQL statements one engine runs for it.
    struct Applied {
        var identifier: String
        var statements: [String]
    }
}

extension EventEnvelope {
    init(outboxRow row: PostgresRow) throws {
        let (position, stream, version, type, schemaVersion, payload, actor, correlation, causation, occurred, committed, priority) =
            try row.decode((Int64, String, Int64, String, Int64, String, String, String?, String?, Int64, Int64, Int64).self)
        self.init(
            position: OutboxPosition(position), streamID: StreamID(stream), streamVersion: version, type: type,
            schemaVersion: Int(schemaVersion), payload: Data(payload.utf8), actor: actor, correlationID: correlation,
            causationID: causation, occurredAt: Timestamp.date(microseconds: occurred),
            committedAt: Timestamp.date(microseconds: committed), priority: priority != 0)
    }
}
