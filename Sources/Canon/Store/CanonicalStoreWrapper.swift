/// A canonical store that passes everything to `base` except what it overrides: a store that
/// signals its commits (`SignallingCanonicalStore`), and tests that count, hold or fail one
/// operation of a real store.
public protocol CanonicalStoreWrapper: CanonicalStore {
    var base: any CanonicalStore { get }
}

extension CanonicalStoreWrapper {
    public func commit(_ work: UnitOfWork) async throws -> CommitResult { try await base.commit(work) }
    public func commit(batch: [UnitOfWork]) async throws -> [CommitResult] { try await base.commit(batch: batch) }
    public func fetchOne(_ query: RowQuery) async throws -> Row? { try await base.fetchOne(query) }
    public func fetchAll(_ query: RowQuery) async throws -> [Row] { try await base.fetchAll(query) }
    public func fetchValues(_ query: RowQuery) async throws -> [[CanonValue]] { try await base.fetchValues(query) }
    public func count(_ table: String, filter: Row) async throws -> Int { try await base.count(table, filter: filter) }
    public func streamVersion(_ stream: StreamID) async throws -> Int64? { try await base.streamVersion(stream) }
    public func events(after position: OutboxPosition, limit: Int) async throws -> [EventEnvelope] {
        try await base.events(after: position, limit: limit)
    }
    public func events(after position: OutboxPosition, limit: Int, selecting selection: EventSelection) async throws -> OutboxRange {
        try await base.events(after: position, limit: limit, selecting: selection)
    }
    public func priorityEvents(after position: OutboxPosition, through: OutboxPosition, limit: Int) async throws -> [EventEnvelope] {
        try await base.priorityEvents(after: position, through: through, limit: limit)
    }
    public func events(in stream: StreamID, through position: OutboxPosition) async throws -> [EventEnvelope] {
        try await base.events(in: stream, through: position)
    }
    public func headPosition() async throws -> OutboxPosition { try await base.headPosition() }
    public func checkHealth() async throws { try await base.checkHealth() }
}
