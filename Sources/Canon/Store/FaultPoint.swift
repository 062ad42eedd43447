/// Points inside a commit where tests inject failures, to prove that a unit of work is atomic.
public enum FaultPoint: String, Hashable, Sendable {
    /// After the domain rows are written, before any event is appended.
    case afterMutations
    /// After the events are appended, just before the transaction commits.
    case beforeCommit
}

/// Decides whether to fail at a fault point. Production stores have none.
public typealias FaultInjector = @Sendable (FaultPoint) throws -> Void
