import Dispatch

/// Runs blocking work (model inference, a long synchronous scan) on dispatch threads instead of
/// the concurrency runtime's cooperative pool.
///
/// The pool has one thread per core. Work that holds one of them for tens or hundreds of
/// milliseconds (embedding a batch of evidence) stalls every task that could have run there:
/// HTTP handlers, the other projection agents, commit notifications. On two cores, two agents
/// embedding at once would stop the process.
public enum BlockingWork {
    private static let queue = DispatchQueue(label: "canon.blocking-work", qos: .utility, attributes: .concurrent)

    /// Runs `work` on a dispatch thread and resumes the caller with its result.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }
}

extension TextEmbedder {
    /// `embed(_:)` off the cooperative pool (see `BlockingWork`).
    public func embedInBackground(_ texts: [String]) async throws -> [[Float]] {
        try await BlockingWork.run { self.embed(texts) }
    }
}
