import Foundation

/// Hands chunks of work from producer threads to a consumer thread, each producer's in order:
/// producers fold documents while the consumer, inside the write transaction, writes the ones
/// folded before.
///
/// All sides run on threads of their own (GRDB's reader and writer queues), never on the
/// concurrency runtime's cooperative pool, so blocking here stalls no task.
final class Handoff<Chunk: Sendable>: @unchecked Sendable {
    private enum End {
        case open
        case finished
        case failed(any Error)
    }

    private let condition = NSCondition()
    private var chunks: [Chunk] = []   // guarded by `condition`
    private var next = 0               // guarded by `condition`
    private var end = End.open         // guarded by `condition`
    private var producing: Int         // guarded by `condition`
    private var abandoned = false      // guarded by `condition`

    init(producers: Int = 1) { producing = max(1, producers) }

    /// Producer: adds a chunk. Returns false when the consumer has given up (stop producing).
    @discardableResult
    func put(_ chunk: Chunk) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !abandoned else { return false }
        chunks.append(chunk)
        condition.signal()
        return true
    }

    /// Producer: no more chunks from this producer; `error` when producing failed. The consumer
    /// gets the first error at once, and nil from `take` once every producer finished.
    func finish(_ error: (any Error)? = nil) {
        condition.lock()
        producing -= 1
        switch (end, error) {
        case (.failed, _): break
        case (_, let error?): end = .failed(error)
        case (_, nil): if producing == 0 { end = .finished }
        }
        condition.signal()
        condition.unlock()
    }

    /// Consumer: the next chunk, nil once every producer finished; rethrows a producer's error.
    func take() throws -> Chunk? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if case .failed(let error) = end { throw error }
            if next < chunks.count {
                let chunk = chunks[next]
                next += 1
                return chunk
            }
            if case .finished = end { return nil }
            condition.wait()
        }
    }

    /// Consumer: stops the producers at their next `put`.
    func abandon() {
        condition.lock()
        abandoned = true
        condition.unlock()
    }
}
