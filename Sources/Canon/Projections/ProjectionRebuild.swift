import Foundation

/// A blue-green rebuild of one projection: the next version is built beside the live one while
/// reads and writes go on, then compared, then made live by the caller.
///
/// 1. **Build** the new store from the canonical outbox up to the position `target` that was
///    the head when the rebuild started: the canonical state as of that position. It goes in
///    chunks, each committed with the new store's checkpoint, so a crash resumes where the
///    last chunk ended.
/// 2. **Catch up** from the outbox past `target` to the current head.
/// 3. **Compare** the new store with the live one at one common position: row counts and
///    content checksums must be equal.
///
/// The live store keeps serving (its agent keeps applying) throughout.
public struct ProjectionRebuild: Sendable {
    public struct Progress: Sendable {
        public enum Phase: String, Sendable { case building, catchingUp = "catching up", comparing }
        public var phase: Phase
        public var position: OutboxPosition
        public var target: OutboxPosition
    }

    public struct Report: Hashable, Codable, Sendable {
        public var projection: ProjectionIdentity
        public var replacing: ProjectionIdentity
        public var builtTo: OutboxPosition
        public var comparedAt: OutboxPosition
        public var rows: Int
        public var liveRows: Int
        public var checksum: String
        public var liveChecksum: String
        public var seconds: Double

        public var matches: Bool { rows == liveRows && checksum == liveChecksum }
    }

    public let source: any CanonicalStore
    public let live: any ProjectionStore
    public let next: any ProjectionStore
    /// Events in the first committed chunk. Chunks then grow as the agent's batches do: doubled
    /// after one that committed in under half of `chunkTarget`, up to `maxChunkSize`.
    public var chunkSize: Int
    public var maxChunkSize: Int
    public var chunkTarget: Duration

    public init(
        source: any CanonicalStore, live: any ProjectionStore, next: any ProjectionStore, chunkSize: Int = 5_000,
        maxChunkSize: Int = 20_000, chunkTarget: Duration = .milliseconds(500)
    ) {
        self.source = source
        self.live = live
        self.next = next
        self.chunkSize = max(1, chunkSize)
        self.maxChunkSize = max(self.chunkSize, maxChunkSize)
        self.chunkTarget = chunkTarget
    }

    /// Builds, catches up and compares.
    ///
    /// - Parameter compareAttempts: how many times to retry when the live store moves between
    ///   reading its summary and bringing the new store to the same position.
    /// - Throws: `ProjectionError`, or the projection's own error on an event it cannot apply.
    public func run(compareAttempts: Int = 20, progress: @Sendable (Progress) -> Void = { _ in }) async throws -> Report {
        let started = ContinuousClock.now
        let target = try await source.headPosition()
        try await applyUntil(target, phase: .building, progress: progress)
        let head = try await source.headPosition()
        try await applyUntil(head, phase: .catchingUp, progress: progress)

        for _ in 0..<max(1, compareAttempts) {
            // The live store's checkpoint and content are read in one snapshot; then the new
            // store is brought to exactly that position and summarised.
            let liveSummary = try await live.contentSummary()
            let nextCheckpoint = try await next.checkpoint().position
            if nextCheckpoint > liveSummary.checkpoint {
                // The live store is behind the new one: let it catch up (its agent runs), or
                // catch it up here when no agent runs.
                try await catchUp(live, to: nextCheckpoint)
                continue
            }
            try await catchUp(next, to: liveSummary.checkpoint)
            progress(Progress(phase: .comparing, position: liveSummary.checkpoint, target: liveSummary.checkpoint))
            let nextSummary = try await next.contentSummary()
            guard nextSummary.checkpoint == liveSummary.checkpoint else { continue }
            let elapsed = ContinuousClock.now - started
            return Report(
                projection: next.identity, replacing: live.identity, builtTo: target, comparedAt: liveSummary.checkpoint,
                rows: nextSummary.rows, liveRows: liveSummary.rows, checksum: nextSummary.checksum, liveChecksum: liveSummary.checksum,
                seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        throw ProjectionError.timedOut("\(live.identity) kept moving; could not compare it with \(next.identity) at one position")
    }

    private func applyUntil(_ target: OutboxPosition, phase: Progress.Phase, progress: @Sendable (Progress) -> Void) async throws {
        var chunks = BatchSizer(minimum: chunkSize, maximum: maxChunkSize, target: chunkTarget)
        while true {
            let checkpoint = try await next.checkpoint()
            guard checkpoint.position < target else { return }
            let limit = min(chunks.current, Int(target.rawValue - checkpoint.position.rawValue))
            let events = try await source.events(after: checkpoint.position, limit: limit)
            guard let last = events.last else { return }
            let started = ContinuousClock.now
            try await next.apply(events, from: checkpoint.position, to: Checkpoint(position: last.position, committedAt: last.committedAt))
            chunks.record(full: events.count == chunks.current, took: ContinuousClock.now - started)
            progress(Progress(phase: phase, position: last.position, target: target))
        }
    }

    /// Applies events to `store` up to exactly `position`, tolerating its own agent applying
    /// concurrently (the checkpoint compare-and-set makes one of us win each chunk).
    private func catchUp(_ store: any ProjectionStore, to position: OutboxPosition) async throws {
        while true {
            let checkpoint = try await store.checkpoint()
            guard checkpoint.position < position else { return }
            let events = try await source.events(after: checkpoint.position, limit: min(chunkSize, Int(position.rawValue - checkpoint.position.rawValue)))
            guard let last = events.last else { return }
            do {
                try await store.apply(events, from: checkpoint.position, to: Checkpoint(position: last.position, committedAt: last.committedAt))
            } catch let error as ProjectionError where error.code == .checkpointConflict {
                continue
            }
        }
    }
}
