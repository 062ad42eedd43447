/// Sizes the batches a backlog is applied in: a full batch that applied in under half of the
/// target doubles the next one, up to `maximum`; one that took longer than the target halves it,
/// down to `minimum`. Large transactions make a backlog cheap; the target keeps a slow
/// projection's transactions short (an agent must beat its heartbeat between them, a rebuild
/// must report progress).
struct BatchSizer: Sendable {
    let minimum: Int
    let maximum: Int
    let target: Duration
    /// The number of events to load next.
    private(set) var current: Int

    init(minimum: Int, maximum: Int, target: Duration) {
        self.minimum = max(1, minimum)
        self.maximum = max(self.minimum, maximum)
        self.target = target
        current = self.minimum
    }

    /// The largest batch the next one may be, before the current one is measured (a prefetch
    /// loads this many; the caller keeps `current` of them).
    var ahead: Int { min(maximum, current * 2) }

    /// Records one applied batch: `full` when it held `current` events.
    mutating func record(full: Bool, took: Duration) {
        if took > target {
            current = max(minimum, current / 2)
        } else if full, took < target / 2 {
            current = min(maximum, current * 2)
        }
    }

    /// Back to the smallest batch (after a failure).
    mutating func reset() { current = minimum }
}
