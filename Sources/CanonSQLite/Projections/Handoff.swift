import Foundation

/// Hands chunks of work from a producer thread to a consumer thread, in order: the producer folds
/// documents while the consumer, inside the write transaction, writes the ones folded before.
///
/// Both sides run on threads of their own (GRDB's reader and writer queues), never on the
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
    private var abandoned = false      // guarded by `condition`

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

    /// Producer: no more chunks; `error` when producing failed (the consumer gets it at once).
    /// The first call decides how it ends.
    func finish(_ error: (any Error)? = nil) {
        condition.lock()
        if case .open = end { end = error.map { .failed($0) } ?? .finished }
        condition.signal()
        condition.unlock()
    }

    /// Consumer: the next chunk, nil once the producer finished; rethrows the producer's error.
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

    /// Consumer: stops the producer at its next `put`.
    func abandon() {
        condition.lock()
        abandoned = true
        condition.unlock()
    }
}
