/// The next range of the outbox, loading while the current one applies: what an agent and a
/// rebuild use to keep the reader busy while the store writes. Each load reads only the events
/// of `selection` whole (the others only move the range's end).
struct OutboxPrefetch {
    private let selection: EventSelection
    private var pending: (after: OutboxPosition, limit: Int, range: Task<OutboxRange, any Error>)?

    init(selecting selection: EventSelection = .all) {
        self.selection = selection
    }

    /// Starts loading up to `limit` events after `position`, replacing any load under way.
    mutating func start(after position: OutboxPosition, limit: Int, from source: any CanonicalStore) {
        cancel()
        let selection = self.selection
        pending = (position, limit, Task { try await source.events(after: position, limit: limit, selecting: selection) })
    }

    /// The load of up to `limit` events after `position`: the prefetched one when it starts
    /// there (topped up with the events after it when the batch grew past what was prefetched
    /// and the prefetch was full), else a fresh one. (Taken without awaiting, so an actor can
    /// hold the prefetch.)
    mutating func take(after position: OutboxPosition, limit: Int, from source: any CanonicalStore) -> Task<OutboxRange, any Error> {
        let selection = self.selection
        if let prefetched = pending {
            pending = nil
            if prefetched.after == position {
                return Task {
                    let range = try await prefetched.range.value
                    guard limit > prefetched.limit, range.count == prefetched.limit, let through = range.through else {
                        return range.prefix(limit, after: position)
                    }
                    let more = try await source.events(after: through.position, limit: limit - prefetched.limit, selecting: selection)
                    return OutboxRange(events: range.events + more.events, through: more.through ?? through, count: range.count + more.count)
                }
            }
            prefetched.range.cancel()
        }
        return Task { try await source.events(after: position, limit: limit, selecting: selection) }
    }

    /// The included events of the first `limit` of the load under way after `position`, without
    /// taking it (what a preparing store is told comes next).
    func peek(after position: OutboxPosition, limit: Int) -> Task<[EventEnvelope], any Error>? {
        guard let prefetched = pending, prefetched.after == position else { return nil }
        return Task { try await prefetched.range.value.prefix(limit, after: position).events }
    }

    mutating func cancel() {
        pending?.range.cancel()
        pending = nil
    }
}
