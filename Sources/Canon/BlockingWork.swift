import Foundation

/// Runs blocking work (model inference, a long synchronous scan) on threads of its own instead
/// of the concurrency runtime's cooperative pool.
///
/// The pool has one thread per core. Work that holds one of them for tens or hundreds of
/// milliseconds (embedding a batch of evidence) stalls every task that could have run there:
/// HTTP handlers, the other projection agents, commit notifications. On two cores, two agents
/// embedding at once would stop the process.
///
/// The threads are plain threads, not a libdispatch queue: on Linux the cooperative pool is
/// libdispatch's own, and a concurrent queue shares its width, so work queued there waits
/// behind every ready task of a busy process.
public final class BlockingWork: @unchecked Sendable {
    /// Two threads per core: the work is CPU-bound, but one long job (or a test that holds a
    /// thread per core on purpose) must not stop every other model call in the process.
    public static let shared = BlockingWork(threads: 2 * max(2, ProcessInfo.processInfo.activeProcessorCount))

    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []   // guarded by `condition`
    private var next = 0                            // guarded by `condition`

    init(threads: Int, name: String = "canon-blocking") {
        for index in 0..<threads {
            let thread = Thread { [unowned self] in self.work() }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    /// Runs `work` on one of the threads and resumes the caller with its result.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await shared.run(work)
    }

    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            enqueue { continuation.resume(with: Result { try work() }) }
        }
    }

    /// One thread of its own that only frees what `release` hands it: never queued behind model
    /// inference (a search query's embedding waits on `shared`), nor holding it up.
    static let releaser = BlockingWork(threads: 1, name: "canon-release")

    /// Frees `value` on the release thread once the caller lets go of it. A catch-up batch
    /// (100,000 events, the 25,000 documents folded from them) is hundreds of thousands of
    /// allocations: freeing them where the batch ends took 30-90 ms per batch on the writer's
    /// path, between one transaction and the next. (Should that thread run before the caller has
    /// let go, the caller frees the value itself, as it would have anyway.)
    public static func release<T: Sendable>(_ value: T) {
        let held = Held(value)
        releaser.enqueue { held.drop() }
    }

    private final class Held<T: Sendable>: @unchecked Sendable {
        private var value: T?
        init(_ value: T) { self.value = value }
        /// Runs once, on the one thread that took the job.
        func drop() { value = nil }
    }

    private func enqueue(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while next == jobs.count { condition.wait() }
            let job = jobs[next]
            next += 1
            if next == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                next = 0
            }
            condition.unlock()
            job()
        }
    }
}

extension TextEmbedder {
    /// `embed(_:)` off the cooperative pool (see `BlockingWork`).
    public func embedInBackground(_ texts: [String]) async throws -> [[Float]] {
        try await BlockingWork.run { self.embed(texts) }
    }
}
