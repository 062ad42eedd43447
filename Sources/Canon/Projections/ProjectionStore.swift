import Foundation

/// The store of one projection version: its derived data, its checkpoint, its dead letters and
/// its agent's heartbeat, all in the projection's own storage (its own file in embedded mode).
///
/// Rules every implementation keeps:
/// - `apply` writes the derived data and moves the checkpoint in one transaction, by
///   compare-and-set: when the stored checkpoint is not `from`, it throws
///   `ProjectionError.checkpointConflict` and writes nothing.
/// - Applying an event twice leaves the same state as applying it once.
/// - Events the projection does not handle still advance the checkpoint.
public protocol ProjectionStore: Sendable {
    var identity: ProjectionIdentity { get }

    func checkpoint() async throws -> Checkpoint

    /// Applies `events` (in position order, ending at `to`) and moves the checkpoint from
    /// `from` to `to`, in one transaction.
    func apply(_ events: [EventEnvelope], from: OutboxPosition, to: Checkpoint) async throws

    /// Records `letter` and moves the checkpoint from `from` past it (`to`), in one transaction.
    func park(_ letter: DeadLetter, from: OutboxPosition, to: Checkpoint) async throws

    func deadLetters() async throws -> [DeadLetter]

    func setDeadLetterState(position: OutboxPosition, to state: DeadLetter.State) async throws

    /// Re-derives everything `stream` contributes from its full history `events` up to
    /// `checkpoint`, replacing what is stored for it. The write happens only if the store is
    /// still at `checkpoint` (otherwise `ProjectionError.checkpointConflict`, and nothing is
    /// written), so a concurrent agent's newer events are never overwritten with older state.
    /// Used to retry dead letters and to repair.
    func refold(stream: StreamID, events: [EventEnvelope], at checkpoint: OutboxPosition) async throws

    /// Moves the checkpoint back to `position` so that later events are applied again
    /// (idempotently). `position` must not be ahead of the checkpoint.
    func rewind(to position: OutboxPosition) async throws

    /// Records that the agent is alive, apart from its progress. A `stopped` beat from another
    /// owner than the last one's is not recorded: it comes from an agent that lost the lease and
    /// must not hide the new holder's state.
    func recordHeartbeat(_ heartbeat: AgentHeartbeat) async throws

    func heartbeat() async throws -> AgentHeartbeat?

    /// The checkpoint, row count and a checksum of the stored content, read in one snapshot so
    /// two stores at the same checkpoint can be compared.
    func contentSummary() async throws -> ContentSummary

    /// The events its projection handles: the agent reads only these from the outbox (the
    /// others still move the checkpoint). Every event unless the store says otherwise.
    var selection: EventSelection { get }
}

extension ProjectionStore {
    public var selection: EventSelection { .all }
}

/// A store that starts on the batch an agent will most likely apply next while it still writes
/// and commits the current one: during a catch-up, the next batch's fold then overlaps this
/// batch's commit instead of waiting for it.
public protocol PreparingProjectionStore: ProjectionStore {
    /// `upcoming` (loading now) is most likely the batch applied right after the one ending at
    /// `after`. Only a hint: the store may prepare it ahead, and `apply` must still apply exactly
    /// the events it is given, prepared or not, with the same result.
    func expect(_ upcoming: Task<[EventEnvelope], any Error>, after: OutboxPosition)
}

/// What a store holds at a checkpoint, for comparing two versions of a projection.
public struct ContentSummary: Hashable, Codable, Sendable {
    public var checkpoint: OutboxPosition
    public var rows: Int
    /// A hex digest of the rows in key order (engine-defined, stable across versions and processes).
    public var checksum: String

    public init(checkpoint: OutboxPosition, rows: Int, checksum: String) {
        self.checkpoint = checkpoint
        self.rows = rows
        self.checksum = checksum
    }
}

/// What an agent last said about itself.
public struct AgentHeartbeat: Hashable, Codable, Sendable {
    public var at: Date
    public var state: AgentState
    public var lastError: String?
    public var owner: String

    public init(at: Date, state: AgentState, lastError: String?, owner: String) {
        self.at = at
        self.state = state
        self.lastError = lastError
        self.owner = owner
    }

    enum CodingKeys: String, CodingKey {
        case at, state, owner
        case lastError = "last_error"
    }
}

/// Where an agent is in its life.
public enum AgentState: String, Hashable, Codable, Sendable {
    case starting
    /// Applying a backlog.
    case catchingUp = "catching-up"
    /// Caught up, waiting for new commits.
    case idle
    /// Applying failed; waiting to retry.
    case retrying
    /// Stopped by the failure policy; needs an operator.
    case paused
    case stopped
}

/// Why a projection operation failed.
public struct ProjectionError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        case checkpointConflict, unknownProjection, unknownDeadLetter, invalidRewind, storage, timedOut, stillFailing
    }

    public let code: Code
    public let message: String
    /// Why a `storage` error may pass by itself (see `CanonicalStoreError.Transience`): the agent
    /// retries it without counting toward the failure policy while the store does not answer,
    /// so an outage never parks a sound event as poison.
    public let transience: CanonicalStoreError.Transience?

    private init(_ code: Code, _ message: String, transience: CanonicalStoreError.Transience? = nil) {
        self.code = code
        self.message = message
        self.transience = transience
    }

    public static func checkpointConflict(_ projection: ProjectionIdentity, expected: OutboxPosition, actual: OutboxPosition) -> Self {
        Self(.checkpointConflict, "\(projection) checkpoint is at \(actual), not \(expected): another agent applied these events")
    }

    public static func unknownProjection(_ name: String, known: [String]) -> Self {
        Self(.unknownProjection, "no projection named \(name); known: \(known.joined(separator: ", "))")
    }

    public static func unknownDeadLetter(_ projection: ProjectionIdentity, position: OutboxPosition) -> Self {
        Self(.unknownDeadLetter, "\(projection) has no dead letter at position \(position)")
    }

    public static func invalidRewind(_ projection: ProjectionIdentity, to: OutboxPosition, checkpoint: OutboxPosition) -> Self {
        Self(.invalidRewind, "\(projection) cannot replay from \(to): it must not be ahead of its checkpoint \(checkpoint)")
    }

    public static func storage(_ message: String) -> Self { Self(.storage, message) }

    /// A `storage` error of a store that is unreachable, recovering or out of room.
    public static func unavailable(_ message: String) -> Self { Self(.storage, message, transience: .outage) }

    /// A storage error of the store, keeping why it may pass.
    public static func storage(_ message: String, from error: CanonicalStoreError) -> Self {
        Self(.storage, message, transience: error.transience)
    }

    /// Why `error`, thrown while applying events, may pass by itself; nil when it may be the
    /// events' fault.
    public static func transience(of error: any Error) -> CanonicalStoreError.Transience? {
        (error as? ProjectionError)?.transience ?? (error as? CanonicalStoreError)?.transience
    }

    public static func stillFailing(_ projection: ProjectionIdentity, position: OutboxPosition, error: any Error) -> Self {
        Self(.stillFailing, "\(projection) still cannot apply the event at \(position): \(error); it stays parked")
    }

    public static func timedOut(_ message: String) -> Self { Self(.timedOut, message) }

    public var description: String { message }
}
