/// The bookkeeping a projection store keeps beside its data, in the same storage: checkpoint,
/// dead letters and heartbeat. Each engine keeps it in one object (a SQLite file's tables, a
/// PostgreSQL schema's tables).
public protocol ProjectionBookkeeping: Sendable {
    func checkpoint() async throws -> Checkpoint
    /// Records `letter` and moves the checkpoint from `from` past it (`to`), in one transaction.
    func park(_ letter: DeadLetter, from: OutboxPosition, to: Checkpoint) async throws
    func deadLetters() async throws -> [DeadLetter]
    func setDeadLetterState(position: OutboxPosition, to state: DeadLetter.State) async throws
    /// Moves the checkpoint back to `position` (not ahead of the checkpoint).
    func rewind(to position: OutboxPosition) async throws
    func recordHeartbeat(_ heartbeat: AgentHeartbeat) async throws
    func heartbeat() async throws -> AgentHeartbeat?
}

/// A projection store whose bookkeeping one `ProjectionBookkeeping` keeps: it gets that half of
/// `ProjectionStore` from it and writes only its own data.
public protocol BookkeepingProjectionStore: ProjectionStore {
    var bookkeeping: any ProjectionBookkeeping { get }
}

extension BookkeepingProjectionStore {
    public func checkpoint() async throws -> Checkpoint { try await bookkeeping.checkpoint() }

    public func park(_ letter: DeadLetter, from: OutboxPosition, to: Checkpoint) async throws {
        try await bookkeeping.park(letter, from: from, to: to)
    }

    public func deadLetters() async throws -> [DeadLetter] { try await bookkeeping.deadLetters() }

    public func setDeadLetterState(position: OutboxPosition, to state: DeadLetter.State) async throws {
        try await bookkeeping.setDeadLetterState(position: position, to: state)
    }

    public func rewind(to position: OutboxPosition) async throws { try await bookkeeping.rewind(to: position) }

    public func recordHeartbeat(_ heartbeat: AgentHeartbeat) async throws { try await bookkeeping.recordHeartbeat(heartbeat) }

    public func heartbeat() async throws -> AgentHeartbeat? { try await bookkeeping.heartbeat() }
}
