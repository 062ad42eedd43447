/// Who may run each projection's agent when several processes share one canonical store.
///
/// A projection has exactly one active agent across all processes: the one whose process holds
/// its lease. The others follow the store's checkpoint (so their readers can still wait for a
/// position) and take the lease over when its holder dies. The checkpoint's compare-and-set
/// stays the last line of defence: two agents at once would never apply an event twice.
public protocol ProjectionLeases: Sendable {
    /// Tries to take the lease of projection `name`; true when this process holds it now.
    func acquire(_ name: String) async -> Bool

    /// Whether this process still holds the lease of `name` (false once it was lost, for
    /// example because the connection holding it broke).
    func stillHeld(_ name: String) async -> Bool

    /// Gives the lease of `name` up.
    func release(_ name: String) async
}

/// How a process reaches the process that runs a projection's agent, when leases put it
/// elsewhere: an operator's request (say, resume through `POST /v1/ops/projections/NAME/resume`)
/// may land on any server.
public protocol ProjectionControl: Sendable {
    /// Asks whichever process holds the lease of `identity` to resume its paused agent.
    func requestResume(_ identity: ProjectionIdentity) async throws
}
