import Synchronization

/// Coalesces one process's commit notifications (`canon_outbox`): at most one per `interval`.
///
/// PostgreSQL delivers a notification to every listening backend: it signals each one, wakes it,
/// and each sends the message to its process, which wakes an agent. Announcing every commit made
/// that work grow with commits times listeners: at 700 commits a second and two workers, about
/// 9% of PostgreSQL's CPU and 5% of each worker's. An agent needs one wake-up per batch it
/// applies, not one per commit (it lingers after a partial batch, and a notification carries only
/// the newest position).
///
/// - A commit announces itself when no announcement went out within `interval` (so an idle
///   store's next commit is announced at once).
/// - A commit inside the window does not; once it has committed, it makes sure an announcement
///   follows when the window ends: a later commit's own, or a trailing one
///   (`unannounced(_:at:)`, then `takeTrailing(at:)`) that announces the head as it is then.
///   A quiet commit whose outcome is unknown counts as unannounced at every position
///   (`Int64.max`): no later commit's announcement covers it for certain, the trailing one does.
///
/// So no commit waits more than `interval` to be announced, and nothing is ever left
/// unannounced. A zero interval announces every commit.
final class CommitAnnouncements: Sendable {
    let interval: Duration

    private struct State {
        /// Until when commits stay quiet (the last announcement's window).
        var quietUntil: ContinuousClock.Instant?
        /// The newest committed position not yet covered by an announcement.
        var pending: Int64?
        /// A trailing announcement is scheduled.
        var trailing = false
    }

    private let state = Mutex(State())

    init(interval: Duration) {
        self.interval = interval
    }

    /// Whether a commit about to start announces itself; if it does, the window starts now.
    func claim(at now: ContinuousClock.Instant) -> Bool {
        guard interval > .zero else { return true }
        return state.withLock { state in
            if let quietUntil = state.quietUntil, now < quietUntil { return false }
            state.quietUntil = now + interval
            return true
        }
    }

    /// A commit that announced itself committed through `position`: what was pending up to it
    /// is covered.
    func announced(_ position: Int64) {
        state.withLock { state in
            if let pending = state.pending, pending <= position { state.pending = nil }
        }
    }

    /// A commit that did not announce itself committed through `position`.
    ///
    /// - Returns: when to send the trailing announcement (`takeTrailing`), if the caller is the
    ///   one to schedule it; nil when one is already scheduled.
    func unannounced(_ position: Int64, at now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        state.withLock { state in
            state.pending = max(state.pending ?? position, position)
            guard !state.trailing else { return nil }
            state.trailing = true
            return max(now, state.quietUntil ?? now)
        }
    }

    /// The newest quiet position when a trailing announcement is still due now (the caller
    /// announces the head, which is at least that), or nil when a commit's own announcement
    /// covered every quiet commit meanwhile. Sending one starts a window, as a commit's does.
    func takeTrailing(at now: ContinuousClock.Instant) -> Int64? {
        state.withLock { state in
            state.trailing = false
            guard let pending = state.pending else { return nil }
            state.pending = nil
            state.quietUntil = now + interval
            return pending
        }
    }
}
