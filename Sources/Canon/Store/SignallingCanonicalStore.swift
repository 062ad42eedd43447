import Metrics

/// A canonical store that wakes projection agents on every commit (in-process notification;
/// agents still poll as a fallback) and counts outbox writes.
public struct SignallingCanonicalStore: CanonicalStoreWrapper {
    public let base: any CanonicalStore
    public let commits: PositionWaiters
    /// Advanced to a commit's position when it appended a priority event (the priority path
    /// waits on it instead of reading the outbox after every commit).
    public let priorityCommits: PositionWaiters?
    private let written = Counter(label: "canon_outbox_events_written_total")

    public init(_ base: any CanonicalStore, commits: PositionWaiters, priorityCommits: PositionWaiters? = nil) {
        self.base = base
        self.commits = commits
        self.priorityCommits = priorityCommits
    }

    public func commit(_ work: UnitOfWork) async throws -> CommitResult {
        let result = try await base.commit(work)
        written.increment(by: result.events.count)
        commits.advance(to: result.position)
        if result.events.contains(where: \.priority) { priorityCommits?.advance(to: result.position) }
        return result
    }

    public func commit(batch: [UnitOfWork]) async throws -> [CommitResult] {
        let results = try await base.commit(batch: batch)
        written.increment(by: results.reduce(0) { $0 + $1.events.count })
        if let last = results.last { commits.advance(to: last.position) }
        if let priority = results.last(where: { $0.events.contains(where: \.priority) }) { priorityCommits?.advance(to: priority.position) }
        return results
    }
}
