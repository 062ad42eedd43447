import Foundation
import Logging
import Metrics

/// A store that can apply permission changes ahead of its checkpoint.
///
/// Rules: applying is idempotent; a change never replaces a newer one (by outbox position); and
/// the ordinary apply path never undoes it with an older event of the same key. Per-stream order
/// holds for what the store shows: a key's visibility is always that of its newest permission
/// change the store has seen.
public protocol PriorityApplying: ProjectionStore {
    /// Applies the permission changes among `events` (in position order) now.
    func applyPriority(_ events: [EventEnvelope]) async throws
}

/// The priority path: follows new commits and hands priority events (restrict, unrestrict) to
/// every live store that can apply them ahead, so a permission change does not wait behind a
/// backlog of ordinary events. The agents still apply the same events in order later.
struct PriorityLane: Sendable {
    let source: any CanonicalStore
    let commits: PositionWaiters
    let stores: @Sendable () -> [any ProjectionStore]
    let observer: (@Sendable ([EventEnvelope], Date) -> Void)?
    /// Advanced past every batch of events the lane has handled, so callers can wait for a permission change to be applied.
    let applied: PositionWaiters
    let logger: Logger
    /// Where commits that appended priority events are announced, when the engine says so: the
    /// lane then reads the outbox only for those (and every `fallback`, in case an announcement
    /// was lost), not after every commit. Without it, every commit wakes the lane.
    var priorityCommits: PositionWaiters? = nil
    /// How long the lane waits for an announcement before it reads up to the head anyway.
    var fallback: Duration = .seconds(1)
    static let latency = Timer(label: "canon_priority_apply_seconds")

    func run() async {
        var seen = (try? await source.headPosition()) ?? .start
        // Permission changes already in a store's backlog when the lane starts serving it (at
        // start, when a lease is taken over, after a blue-green switch) go ahead too: the lane
        // steps back to that store's checkpoint (applying again is idempotent for the others).
        var served: Set<ProjectionIdentity> = []
        func stepBack() async {
            for case let store as any PriorityApplying in stores() where !served.contains(store.identity) {
                guard let checkpoint = try? await store.checkpoint().position else { continue }
                served.insert(store.identity)
                if checkpoint < seen { seen = checkpoint }
            }
        }
        await stepBack()
        var failures = 0
        while !Task.isCancelled {
            if failures == 0 {
                _ = await (priorityCommits ?? commits).wait(until: seen.next, timeout: fallback)
            } else {
                // The same events again, after a pause that grows with each failure in a row.
                try? await Task.sleep(for: min(fallback, .milliseconds(50) * (1 << min(failures, 6))))
            }
            if Task.isCancelled { return }
            await stepBack()
            do {
                // Up to the position the commits have announced (committed, with every position
                // below it): only the priority events in between are read.
                var through = max(commits.reached, priorityCommits?.reached ?? .start)
                if through <= seen { through = try await source.headPosition() }
                while seen < through {
                    let priority = try await source.priorityEvents(after: seen, through: through, limit: 1_000)
                    let last = priority.count == 1_000 ? priority[priority.count - 1].position : through
                    if !priority.isEmpty {
                        for case let store as any PriorityApplying in stores() {
                            try await store.applyPriority(priority)
                        }
                        let now = Date()
                        for event in priority {
                            Self.latency.recordNanoseconds(Int64(max(0, now.timeIntervalSince(event.committedAt)) * 1_000_000_000))
                        }
                        observer?(priority, now)
                    }
                    // Only once every store took them: a batch that failed anywhere is tried again
                    // (applying is idempotent), not left to wait behind the backlog.
                    seen = last
                    applied.advance(to: last)
                }
                failures = 0
            } catch {
                failures += 1
                logger.warning(
                    "priority path failed; trying these events again (the agents also apply them in order)",
                    metadata: ["error": "\(error)", "failures": "\(failures)"])
            }
        }
    }
}
