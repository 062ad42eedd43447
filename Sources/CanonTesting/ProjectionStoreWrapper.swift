import Canon

/// A projection store that passes everything to `base` except what it overrides: for tests that
/// hold, count or fail one operation of a real store.
public protocol ProjectionStoreWrapper: ProjectionStore {
    var base: any ProjectionStore { get }
}

extension ProjectionStoreWrapper {
    public var identity: ProjectionIdentity { base.identity }
    public var selection: EventSelection { base.selection }
    public func checkpoint() async throws -> Checkpoint { try await base.checkpoint() }
    public func apply(_ events: [EventEnvelope], from: OutboxPosition, to: Checkpoint) async throws {
        try await base.apply(events, from: from, to: to)
    }
    public func park(_ letter: DeadLetter, from: OutboxPosition, to: Checkpoint) async throws { try await base.park(letter, from: from, to: to) }
    public func deadLetters() async throws -> [DeadLetter] { try await base.deadLetters() }
    public func setDeadLetterState(position: OutboxPosition, to state: DeadLetter.State) async throws {
        try await base.setDeadLetterState(position: position, to: state)
    }
    public func refold(stream: StreamID, events: [EventEnvelope], at checkpoint: OutboxPosition) async throws {
        try await base.refold(stream: stream, events: events, at: checkpoint)
    }
    public func rewind(to position: OutboxPosition) async throws { try await base.rewind(to: position) }
    public func recordHeartbeat(_ heartbeat: AgentHeartbeat) async throws { try await base.recordHeartbeat(heartbeat) }
    public func heartbeat() async throws -> AgentHeartbeat? { try await base.heartbeat() }
    public func contentSummary() async throws -> ContentSummary { try await base.contentSummary() }
}
