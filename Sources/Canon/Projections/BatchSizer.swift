/// Sizes the batches a backlog is applied in: a full batch that applied in under half of the
/// target grows the next one toward what would take half the target at its rate (at least
/// double, at most `maxGrowth` times), up to `maximum`; one that took longer than the target
/// halves it, down to `minimum`. Large transactions make a backlog cheap; the target keeps a slow
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

    /// How many times larger one batch may be than the one before. Doubling alone took a
    /// catch-up seven batches to go from 1,000 events to 100,000, each too small to keep the
    /// folding reader ahead of the writer; a batch of 1,000 that applies in a hundredth of the
    /// target says the next may be much larger.
    static let maxGrowth = 8

    /// What a prefetch loads before the current batch is measured (the caller keeps `current` of
    /// them): twice the current size, not `maxGrowth` times, so a projection held below the
    /// maximum does not read eight times what it keeps. A batch that grows further loads the
    /// rest when it is taken (`OutboxPrefetch.take`).
    var ahead: Int { min(maximum, current * 2) }

    /// Records one applied batch: `full` when it held `current` events.
    mutating func record(full: Bool, took: Duration) {
        if took > target {
            current = max(minimum, current / 2)
        } else if full, took < target / 2 {
            // The batch that would take half the target at this one's rate, within the bounds.
            let room = took > .zero ? target / took / 2 : Double(Self.maxGrowth)
            let factor = room >= Double(Self.maxGrowth) ? Self.maxGrowth : max(2, Int(room))
            current = current > maximum / factor ? maximum : current * factor
        }
    }

    /// Back to the smallest batch (after a failure).
    mutating func reset() { current = minimum }
}
