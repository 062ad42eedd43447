/// Everything one command changes: domain rows and the events that describe them.
///
/// A canonical store commits a unit of work in one transaction. Either every mutation is applied
/// and every event is appended to the outbox, or nothing is. Before anything is written, each
/// stream expectation is checked against the stream's current version.
///
/// ```swift
/// var work = UnitOfWork(metadata: CommandMetadata(actor: "alice"))
/// work.expect(stream, .exactly(3))
/// work.mutations.append(.update(table: "cases", key: ["id": .text(id)], values: ["status": .text("triage")]))
/// work.events.append(try PendingEvent(streamID: stream, type: "case.status_changed", encoding: change, occurredAt: now))
/// let result = try await store.commit(work)
/// ```
public struct UnitOfWork: Hashable, Sendable {
    public var metadata: CommandMetadata
    public var expectations: [StreamExpectation]
    public var mutations: [RowMutation]
    public var events: [PendingEvent]

    public init(
        metadata: CommandMetadata, expectations: [StreamExpectation] = [], mutations: [RowMutation] = [],
        events: [PendingEvent] = []
    ) {
        self.metadata = metadata
        self.expectations = expectations
        self.mutations = mutations
        self.events = events
    }

    public mutating func expect(_ stream: StreamID, _ version: ExpectedVersion) {
        expectations.append(StreamExpectation(streamID: stream, expected: version))
    }

    public struct StreamExpectation: Hashable, Sendable {
        public var streamID: StreamID
        public var expected: ExpectedVersion

        public init(streamID: StreamID, expected: ExpectedVersion) {
            self.streamID = streamID
            self.expected = expected
        }
    }
}

/// What a committed unit of work produced.
public struct CommitResult: Hashable, Sendable {
    /// The committed events, with their positions and stream versions.
    public var events: [EventEnvelope]
    /// The outbox position after the commit: the last event's, or the head when no event was
    /// appended. A reader that has applied this position has seen the write.
    public var position: OutboxPosition

    public init(events: [EventEnvelope], position: OutboxPosition) {
        self.events = events
        self.position = position
    }

    /// The version of `stream` after the commit, if the unit appended to it.
    public func version(of stream: StreamID) -> Int64? {
        events.last { $0.streamID == stream }?.streamVersion
    }
}
