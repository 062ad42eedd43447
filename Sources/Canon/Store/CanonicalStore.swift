/// A canonical store: the one write owner of the facts it holds, with a transactional outbox.
///
/// Domain rows and the events that describe them commit together in one transaction, so a
/// derived store fed from the outbox can never see an event whose change did not commit, nor
/// miss one whose change did.
///
/// Guarantees every engine keeps (the conformance suite in `CanonTesting` checks them):
/// - `commit` is atomic: all mutations and events, or none.
/// - Stream expectations are checked inside the transaction (optimistic concurrency), and
///   `(stream, version)` is unique.
/// - Outbox positions are gap-free and strictly increasing in commit order; a reader of
///   `events(after:limit:)` never passes a position that may still commit.
/// - Append-only tables refuse UPDATE and DELETE in the engine itself.
public protocol CanonicalStore: Sendable {
    /// Commits one unit of work in one transaction.
    ///
    /// - Returns: the appended events and the position after the commit.
    /// - Throws: `CanonicalStoreError` (`streamVersionConflict`, `uniqueViolation`,
    ///   `rowNotFound`, `appendOnlyViolation`, …); nothing is written when it throws.
    func commit(_ work: UnitOfWork) async throws -> CommitResult

    /// Commits several units of work in one transaction, in order: all or none.
    ///
    /// Used for bulk loads (demo seeding, backfills) where a transaction per command would cost
    /// an fsync each.
    func commit(batch: [UnitOfWork]) async throws -> [CommitResult]

    /// The first row matching `query`, or nil.
    func fetchOne(_ query: RowQuery) async throws -> Row?

    /// Every row matching `query`, in its order.
    func fetchAll(_ query: RowQuery) async throws -> [Row]

    /// The values of `query.columns` (every column, in no set order, when nil) of each matching
    /// row, in that order: a scan of a few columns over many rows without a dictionary per row.
    func fetchValues(_ query: RowQuery) async throws -> [[CanonValue]]

    /// The number of rows matching `filter` in `table`.
    func count(_ table: String, filter: Row) async throws -> Int

    /// The version of a stream's last event, or nil when it has none.
    func streamVersion(_ stream: StreamID) async throws -> Int64?

    /// Up to `limit` events after `position`, in position order.
    func events(after position: OutboxPosition, limit: Int) async throws -> [EventEnvelope]

    /// The same range, of which only the events `selection` includes are made whole and
    /// returned; where it ends says how far it reached (what a projection's agent reads).
    func events(after position: OutboxPosition, limit: Int, selecting selection: EventSelection) async throws -> OutboxRange

    /// Up to `limit` priority events (permission changes) after `position` and up to `through`,
    /// in position order: what the priority path reads on every commit. `through` must be a
    /// position known committed (so that every position below it is).
    func priorityEvents(after position: OutboxPosition, through: OutboxPosition, limit: Int) async throws -> [EventEnvelope]

    /// Every event of `stream` up to and including `position`, in order (to refold one key).
    func events(in stream: StreamID, through position: OutboxPosition) async throws -> [EventEnvelope]

    /// The position of the last committed event (`.start` when the outbox is empty).
    func headPosition() async throws -> OutboxPosition

    /// Throws when the store cannot serve reads and writes (used by readiness checks).
    func checkHealth() async throws
}

extension CanonicalStore {
    /// Reads the range whole and keeps the included events; an engine may skip the others as it reads.
    public func events(after position: OutboxPosition, limit: Int, selecting selection: EventSelection) async throws -> OutboxRange {
        OutboxRange(try await events(after: position, limit: limit), selecting: selection)
    }

    /// Reads every event in the range and keeps the priority ones; an engine with an index on
    /// priority events reads only those.
    public func priorityEvents(after position: OutboxPosition, through: OutboxPosition, limit: Int) async throws -> [EventEnvelope] {
        var found: [EventEnvelope] = []
        var seen = position
        while seen < through, found.count < limit {
            let events = try await events(after: seen, limit: 1_000).prefix { $0.position <= through }
            guard let last = events.last else { break }
            found += events.filter(\.priority)
            seen = last.position
        }
        return Array(found.prefix(limit))
    }

    public func fetchValues(_ query: RowQuery) async throws -> [[CanonValue]] {
        let rows = try await fetchAll(query)
        return rows.map { row in (query.columns ?? row.columns.sorted()).map { row[$0] } }
    }

    public func fetchOne(_ table: String, where filter: Row) async throws -> Row? {
        try await fetchOne(RowQuery(table: table, filter: filter, limit: 1))
    }

    public func fetchAll(_ table: String, where filter: Row = [:], orderBy order: [RowQuery.Ordering] = [], limit: Int? = nil) async throws -> [Row] {
        try await fetchAll(RowQuery(table: table, filter: filter, order: order, limit: limit))
    }
}
