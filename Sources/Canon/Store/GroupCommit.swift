import Synchronization

/// Group commit: the units of work that arrive while earlier transactions are in flight are
/// gathered into one transaction, and each caller gets its own result.
///
/// A store whose commits serialize (Canon's outbox takes its head's lock, held until the commit
/// is durable) pays per transaction: the round trips, the statements, the WAL flush. Under load,
/// callers queue behind that anyway; committing what queued as one transaction turns N flushes
/// and N lock hand-offs into one. This is what dedicated event stores and database WALs do.
///
/// - With nothing in flight, a commit starts at once, alone: no latency is added when idle.
/// - At most `maxConcurrent` transactions are in flight; the rest queue, and whoever drains the
///   queue next takes up to `maxBatch` of them, in arrival order. At most `maxWaiting` wait: past
///   that a commit is refused at once with a transient error, so an overloaded store sheds load
///   instead of piling up requests.
/// - One failing unit must not fail the others. When a gathered transaction fails with an error
///   the store reported (a version conflict, a key or constraint violation, a bad value, a
///   deadlock), it rolled back, and each of its units is committed again alone, so only the
///   culprit sees the error. A connection lost with the work in flight (say during COMMIT)
///   leaves the outcome unknown: retrying could commit twice, so every unit of that transaction
///   gets the error, as it would alone. So does an injected fault (tests simulating a crash).
public final class GroupCommitter: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Units of work gathered into one transaction at most.
        public var maxBatch: Int
        /// Transactions in flight at once. One (the default) lets every unit that arrives during
        /// a commit join the next transaction. Two overlap one transaction's domain writes with
        /// the other's hold of the serialized tail (the outbox lock through its flush), which pays
        /// only while commits wait on a slow disk and the CPU is idle: each transaction then
        /// carries half as many units, and its fixed costs (round trip, plan start-up, WAL flush,
        /// notification) are shared by fewer writes. On two busy cores, one in flight sustained
        /// 9% and 24% more writes per second than two in two runs, at lower CPU per write in the server and in
        /// PostgreSQL (BENCHMARKS.md, "Twelfth session").
        public var maxConcurrent: Int
        /// Units that may wait at once; past it a commit is refused at once (a transient
        /// error, 503 through HTTP) instead of queueing without bound behind an overloaded store.
        public var maxWaiting: Int

        public init(maxBatch: Int = 64, maxConcurrent: Int = 1, maxWaiting: Int = 10_000) {
            self.maxBatch = max(1, maxBatch)
            self.maxConcurrent = max(1, maxConcurrent)
            self.maxWaiting = max(1, maxWaiting)
        }
    }

    public typealias CommitBatch = @Sendable ([UnitOfWork]) async throws -> [CommitResult]

    private struct Waiting: Sendable {
        let id: Int
        let work: UnitOfWork
        let continuation: CheckedContinuation<CommitResult, any Error>
    }

    private struct State {
        var queue: [Waiting] = []
        var queueStart = 0
        var inFlight = 0
        /// How many units each transaction carried (tests and benchmarks).
        var transactions = 0
        var units = 0
        var refused = 0
        /// Commits asked for, queued or refused (each caller's id is its arrival number).
        var arrivals = 0
        /// Moves on every arrival, refusal and cancellation: what `activity` follows.
        var changes = 0
    }

    public let configuration: Configuration
    private let state = Mutex(State())
    /// Moves each time a commit is queued, refused or cancelled: whoever watches the queue waits on it.
    public let activity = PositionWaiters()

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Commits `work`, gathered with whatever else is waiting, through `commitBatch` (the store's
    /// all-or-nothing commit of several units, in order).
    ///
    /// A caller cancelled while its unit still waits gets `CancellationError` and nothing of it is
    /// written. Once the unit is in a transaction, the caller waits for that transaction's outcome:
    /// a commit under way is not abandoned half-known.
    public func commit(_ work: UnitOfWork, through commitBatch: @escaping CommitBatch) async throws -> CommitResult {
        let id = state.withLock { state in
            state.arrivals += 1
            return state.arrivals
        }
        return try await withTaskCancellationHandler {
            try await enqueue(work, id: id, through: commitBatch)
        } onCancel: {
            let removed = state.withLock { state -> (Waiting, Int)? in
                guard let index = state.queue[state.queueStart...].firstIndex(where: { $0.id == id }) else { return nil }
                state.changes += 1
                return (state.queue.remove(at: index), state.changes)
            }
            if let (waiting, changes) = removed {
                activity.advance(to: OutboxPosition(Int64(changes)))
                waiting.continuation.resume(throwing: CancellationError())
            }
        }
    }

    private func enqueue(_ work: UnitOfWork, id: Int, through commitBatch: @escaping CommitBatch) async throws -> CommitResult {
        try await withCheckedThrowingContinuation { continuation in
            enum Admission { case drain, wait, full, cancelled }
            let (admission, changes) = state.withLock { state -> (Admission, Int) in
                state.changes += 1
                // Cancelled before it queued: the handler found nothing to take out.
                if Task.isCancelled { return (.cancelled, state.changes) }
                guard state.queue.count - state.queueStart < configuration.maxWaiting else {
                    state.refused += 1
                    return (.full, state.changes)
                }
                state.queue.append(Waiting(id: id, work: work, continuation: continuation))
                guard state.inFlight < configuration.maxConcurrent else { return (.wait, state.changes) }
                state.inFlight += 1
                return (.drain, state.changes)
            }
            activity.advance(to: OutboxPosition(Int64(changes)))
            switch admission {
            case .drain: Task { await self.drain(commitBatch) }
            case .wait: break
            case .full:
                continuation.resume(throwing: CanonicalStoreError.contended(
                    "\(configuration.maxWaiting) commits are already waiting for the store; nothing was written"))
            case .cancelled:
                continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// Units of work queued, not yet taken into a transaction.
    public var waiting: Int {
        state.withLock { $0.queue.count - $0.queueStart }
    }

    /// Commits refused because `maxWaiting` were already waiting, so far.
    public var refused: Int {
        state.withLock { $0.refused }
    }

    /// Transactions committed and the units they carried, so far.
    public var totals: (transactions: Int, units: Int) {
        state.withLock { ($0.transactions, $0.units) }
    }

    /// Takes batches off the queue until it is empty.
    private func drain(_ commitBatch: CommitBatch) async {
        while true {
            let batch: [Waiting] = state.withLock { state in
                let available = state.queue.count - state.queueStart
                guard available > 0 else {
                    state.queue.removeAll(keepingCapacity: true)
                    state.queueStart = 0
                    state.inFlight -= 1
                    return []
                }
                let count = min(available, configuration.maxBatch)
                state.transactions += 1
                state.units += count
                if count == state.queue.count {
                    // The whole queue: its buffer moves to the batch, nothing is copied.
                    defer { state.queue = [] }
                    return state.queue
                }
                let end = state.queueStart + count
                let taken = Array(state.queue[state.queueStart..<end])
                state.queueStart = end
                if state.queueStart > 1024 {
                    state.queue.removeFirst(state.queueStart)
                    state.queueStart = 0
                }
                return taken
            }
            guard !batch.isEmpty else { return }
            await run(batch, commitBatch)
        }
    }

    private func run(_ batch: [Waiting], _ commitBatch: CommitBatch) async {
        do {
            let results = try await commitBatch(batch.map(\.work))
            for (waiting, result) in zip(batch, results) { waiting.continuation.resume(returning: result) }
        } catch {
            guard batch.count > 1, Self.rolledBack(error) else {
                for waiting in batch { waiting.continuation.resume(throwing: error) }
                return
            }
            for waiting in batch {
                do {
                    waiting.continuation.resume(returning: try await commitBatch([waiting.work])[0])
                } catch {
                    waiting.continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Whether `error` says the transaction rolled back (so each unit may be tried alone): any
    /// error the store reported, unless the connection was lost with the work in flight (the
    /// outcome is unknown) or a test injected a crash. An error of unknown kind is treated as an
    /// unknown outcome.
    static func rolledBack(_ error: any Error) -> Bool {
        guard let error = error as? CanonicalStoreError else { return false }
        return !error.outcomeUnknown && error.code != .injectedFault
    }
}
