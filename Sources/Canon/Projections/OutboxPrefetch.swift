/// The next range of the outbox, loading while the current one applies: what an agent and a
/// rebuild use to keep the reader busy while the store writes.
struct OutboxPrefetch {
    private var pending: (after: OutboxPosition, limit: Int, events: Task<[EventEnvelope], any Error>)?

    /// Starts loading up to `limit` events after `position`, replacing any load under way.
    mutating func start(after position: OutboxPosition, limit: Int, from source: any CanonicalStore) {
        cancel()
        pending = (position, limit, Task { try await source.events(after: position, limit: limit) })
    }

    /// The load of up to `limit` events after `position`: the prefetched one when it starts
    /// there (topped up with the events after it when the batch grew past what was prefetched
    /// and the prefetch was full), else a fresh one. (Taken without awaiting, so an actor can
    /// hold the prefetch.)
    mutating func take(after position: OutboxPosition, limit: Int, from source: any CanonicalStore) -> Task<[EventEnvelope], any Error> {
        if let prefetched = pending {
            pending = nil
            if prefetched.after == position {
                return Task {
                    let events = try await prefetched.events.value
                    guard limit > prefetched.limit, events.count == prefetched.limit, let last = events.last else { return Array(events.prefix(limit)) }
                    return events + (try await source.events(after: last.position, limit: limit - prefetched.limit))
                }
            }
            prefetched.events.cancel()
        }
        return Task { try await source.events(after: position, limit: limit) }
    }

    /// The first `limit` events of the load under way after `position`, without taking it (what a
    /// preparing store is told comes next).
    func peek(after position: OutboxPosition, limit: Int) -> Task<[EventEnvelope], any Error>? {
        guard let prefetched = pending, prefetched.after == position else { return nil }
        return Task { Array(try await prefetched.events.value.prefix(limit)) }
    }

    mutating func cancel() {
        pending?.events.cancel()
        pending = nil
    }
}
