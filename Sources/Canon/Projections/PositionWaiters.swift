import Foundation
import Synchronization

/// Lets tasks wait, with a deadline, until a position is reached.
///
/// Used twice: agents wait for the outbox to pass their checkpoint (new commits wake them at
/// once; the deadline is the polling fallback), and readers wait for a projection to apply a
/// position (read-your-writes with `min_position`).
public final class PositionWaiters: Sendable {
    private struct Waiter {
        var target: OutboxPosition
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var reached = OutboxPosition.start
        var waiters: [UUID: Waiter] = [:]
        /// Waiters abandoned before they registered: they resume as soon as they do.
        var abandoned: Set<UUID> = []
        /// Waiters already resumed, so abandoning them has nothing left to do.
        var resumed: Set<UUID> = []
        /// How many times `kick` ran.
        var kicks: UInt64 = 0
    }

    private let state = Mutex(State())

    public init(reached: OutboxPosition = .start) {
        state.withLock { $0.reached = reached }
    }

    public var reached: OutboxPosition { state.withLock { $0.reached } }

    /// How many times `kick` has run. A waiter that reads it before it suspends, and passes it to
    /// `wait`, is woken by a kick that lands before it has registered: an async call leaves the
    /// caller's actor at once, so a kick sent from that actor (a resume) could otherwise come
    /// between the caller's decision to wait and the wait, and be lost until the deadline.
    public var kicks: UInt64 { state.withLock { $0.kicks } }

    /// Records that `position` was reached and wakes everyone waiting for it or less.
    public func advance(to position: OutboxPosition) {
        move(to: position, backwards: false)
    }

    /// Sets the reached position, also backwards (after a replay rewinds a checkpoint), and
    /// wakes everyone waiting for it or less.
    public func reset(to position: OutboxPosition) {
        move(to: position, backwards: true)
    }

    private func move(to position: OutboxPosition, backwards: Bool) {
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            guard backwards || position > state.reached else { return [] }
            state.reached = position
            let due = state.waiters.filter { $0.value.target <= position }
            for id in due.keys {
                state.waiters[id] = nil
                state.resumed.insert(id)
            }
            return due.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    /// Wakes every waiter now, whatever it waits for (each re-checks its own condition).
    public func kick() {
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.kicks &+= 1
            let all = state.waiters
            state.waiters.removeAll()
            for id in all.keys { state.resumed.insert(id) }
            return all.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    /// Waits until `target` is reached or `timeout` passes, or a kick comes; with `kicks` (read
    /// from `kicks` before deciding to wait), also returns at once when a kick came since.
    ///
    /// - Returns: whether `target` was reached.
    @discardableResult
    public func wait(until target: OutboxPosition, timeout: Duration, unlessKickedSince kicks: UInt64? = nil) async -> Bool {
        if reached >= target { return true }
        let id = UUID()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: timeout)
            }
            group.addTask {
                await withCheckedContinuation { continuation in
                    self.register(id, target: target, kicks: kicks, continuation)
                }
            }
            await group.next()
            group.cancelAll()
            self.abandon(id)
        }
        return reached >= target
    }

    private func register(_ id: UUID, target: OutboxPosition, kicks: UInt64?, _ continuation: CheckedContinuation<Void, Never>) {
        let resumeNow = state.withLock { state in
            if state.abandoned.remove(id) != nil { return true }
            if state.reached >= target || kicks.map({ $0 != state.kicks }) == true {
                state.resumed.insert(id)
                return true
            }
            state.waiters[id] = Waiter(target: target, continuation: continuation)
            return false
        }
        if resumeNow { continuation.resume() }
    }

    /// Resumes the waiter if it is still registered; if it has not registered yet, marks it so
    /// that it resumes as soon as it does.
    private func abandon(_ id: UUID) {
        let continuation: CheckedContinuation<Void, Never>? = state.withLock { state in
            if let waiter = state.waiters.removeValue(forKey: id) { return waiter.continuation }
            if state.resumed.remove(id) == nil { state.abandoned.insert(id) }
            return nil
        }
        continuation?.resume()
    }
}
