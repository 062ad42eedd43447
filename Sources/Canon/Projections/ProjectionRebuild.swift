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
/// The live store keeps serving (its agent keeps applying) throughout. Cancelled, a rebuild
/// stops before its next chunk with `CancellationError`: every chunk it wrote is committed with
/// its checkpoint, and a new run resumes from there.
public struct ProjectionRebuild: Sendable {
    public struct Progress: Sendable {
        public enum Phase: String, Sendable {
            case building
            case buildingFromState = "building from state"
            case catchingUp = "catching up"
            case comparing
        }
        public var phase: Phase
        public var position: OutboxPosition
        public var target: OutboxPosition
        /// While building from state: records written, and records in the snapshot.
        public var records: (done: Int, total: Int)?

        public init(phase: Phase, position: OutboxPosition, target: OutboxPosition, records: (done: Int, total: Int)? = nil) {
            self.phase = phase
            self.position = position
            self.target = target
            self.records = records
        }
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
        /// Where the time went.
        public var phases: Phases
        /// When the new version differed from the live one: the differences a full drift check
        /// found between the new version and canonical state (0: the new version is right, and
        /// the live one had drifted or its projection changed). Nil when the versions matched.
        public var canonicalDifferences: Int?

        public struct Phases: Hashable, Codable, Sendable {
            public var building: Double
            public var catchingUp: Double
            public var comparing: Double
        }

        public var matches: Bool { rows == liveRows && checksum == liveChecksum }
    }

    public let source: any CanonicalStore
    public let live: any ProjectionStore
    public let next: any ProjectionStore
    /// When set (and the new store and the canonical store support it), the build reads the
    /// canonical state as of one snapshot instead of folding the whole outbox
    /// (`StateBuildableStore`), then catches up from the outbox as usual.
    public var state: (any DocumentStateSource)?
    /// Records read from the state per committed chunk (the first chunks are smaller).
    public var stateChunkSize = 20_000
    /// Events in the first committed chunk. Chunks then grow as the agent's batches do: doubled
    /// after one that committed in under half of `chunkTarget`, up to `maxChunkSize`.
    public var chunkSize: Int
    public var maxChunkSize: Int
    public var chunkTarget: Duration

    public init(
        source: any CanonicalStore, live: any ProjectionStore, next: any ProjectionStore, state: (any DocumentStateSource)? = nil,
        chunkSize: Int = 5_000, maxChunkSize: Int = 100_000, chunkTarget: Duration = .seconds(2)
    ) {
        self.source = source
        self.state = state
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
        let clock = ContinuousClock()
        let started = clock.now
        let target: OutboxPosition
        if let built = try await buildFromState(progress: progress) {
            target = built
        } else {
            target = try await source.headPosition()
            try await applyUntil(target, phase: .building, progress: progress)
        }
        let built = clock.now
        let head = try await source.headPosition()
        try await applyUntil(head, phase: .catchingUp, progress: progress)
        let caughtUp = clock.now

        for _ in 0..<max(1, compareAttempts) {
            try Task.checkCancellation()
            let liveCheckpoint = try await live.checkpoint().position
            let nextCheckpoint = try await next.checkpoint().position
            if nextCheckpoint > liveCheckpoint {
                // The live store is behind the new one: let it catch up (its agent runs), or
                // catch it up here when no agent runs.
                try await catchUp(live, to: nextCheckpoint)
                continue
            }
            try await catchUp(next, to: liveCheckpoint)
            progress(Progress(phase: .comparing, position: liveCheckpoint, target: liveCheckpoint))
            // Both summaries at once, each in one snapshot of its own file. When the live store
            // moved meanwhile, the new one is brought to the position the live summary saw and
            // summarised again.
            async let liveSide = live.contentSummary()
            var nextSummary = try await next.contentSummary()
            let liveSummary = try await liveSide
            if nextSummary.checkpoint != liveSummary.checkpoint {
                guard nextSummary.checkpoint < liveSummary.checkpoint else { continue }
                try await catchUp(next, to: liveSummary.checkpoint)
                nextSummary = try await next.contentSummary()
                guard nextSummary.checkpoint == liveSummary.checkpoint else { continue }
            }
            let finished = clock.now
            return Report(
                projection: next.identity, replacing: live.identity, builtTo: target, comparedAt: liveSummary.checkpoint,
                rows: nextSummary.rows, liveRows: liveSummary.rows, checksum: nextSummary.checksum, liveChecksum: liveSummary.checksum,
                seconds: Self.seconds(finished - started),
                phases: .init(building: Self.seconds(built - started), catchingUp: Self.seconds(caughtUp - built), comparing: Self.seconds(finished - caughtUp)))
        }
        throw ProjectionError.timedOut("\(live.identity) kept moving; could not compare it with \(next.identity) at one position")
    }

    /// Builds the new store from one snapshot of canonical state, when it can be: a store that
    /// began a build from the outbox continues from the outbox. Each chunk is read while the one
    /// before it is written.
    ///
    /// - Returns: the snapshot's position, or nil when the build goes through the outbox.
    private func buildFromState(progress: @Sendable (Progress) -> Void) async throws -> OutboxPosition? {
        guard let state, let store = next as? any StateBuildableStore, let snapshots = source as? any SnapshotReadable else {
            // A build from state that was begun and not finished holds some documents only:
            // folding the outbox from its checkpoint would leave the others out.
            if let store = next as? any StateBuildableStore, let begun = try await store.stateBuild(), !begun.complete {
                throw ProjectionError.storage(
                    "\(next.identity) was begun from canonical state and not finished: rebuild it from canonical state again (without --from-outbox) to finish it, or remove it (--prune) to start over from the outbox")
            }
            return nil
        }
        let begun = try await store.stateBuild()
        if begun?.complete == true { return try await store.checkpoint().position }
        if begun == nil, try await store.checkpoint().position > .start { return nil }
        let snapshot = try await snapshots.snapshot()
        try await store.beginStateBuild(at: snapshot.head)
        let total = try await state.count(in: snapshot, source: source)
        let cursor = begun?.cursor
        var done = 0
        // The first chunk is small, so writing starts soon; the next ones double up to the size.
        var limit = max(1, min(stateChunkSize, 2_000))
        var reading = Task { [limit] in try await state.documents(in: snapshot, after: cursor, limit: limit) }
        defer { reading.cancel() }
        while true {
            try Task.checkCancellation()
            let (documents, next) = try await reading.value
            if let next {
                limit = min(max(1, stateChunkSize), limit * 2)
                reading = Task { [limit] in try await state.documents(in: snapshot, after: next, limit: limit) }
            }
            if let reached = next ?? documents.last?.key { try await store.writeState(documents, through: reached) }
            done += documents.count
            progress(Progress(phase: .buildingFromState, position: snapshot.head, target: snapshot.head, records: (done, max(total, done))))
            if next == nil { break }
        }
        try await store.finishStateBuild()
        return snapshot.head
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Applies chunks to the new store up to `target`. The next chunk loads while one applies.
    private func applyUntil(_ target: OutboxPosition, phase: Progress.Phase, progress: @Sendable (Progress) -> Void) async throws {
        var chunks = BatchSizer(minimum: chunkSize, maximum: maxChunkSize, target: chunkTarget)
        var prefetch = OutboxPrefetch(selecting: next.selection)
        defer { prefetch.cancel() }
        while true {
            try Task.checkCancellation()
            let checkpoint = try await next.checkpoint()
            guard checkpoint.position < target else { return }
            let limit = min(chunks.current, Int(target.rawValue - checkpoint.position.rawValue))
            let range = try await prefetch.take(after: checkpoint.position, limit: limit, from: source).value
            guard let last = range.through else { return }
            if last.position < target {
                prefetch.start(after: last.position, limit: min(chunks.ahead, Int(target.rawValue - last.position.rawValue)), from: source)
            }
            let started = ContinuousClock.now
            try await next.apply(range.events, from: checkpoint.position, to: last)
            chunks.record(full: range.count >= chunks.current, took: ContinuousClock.now - started)
            progress(Progress(phase: phase, position: last.position, target: target))
        }
    }

    /// Applies events to `store` up to exactly `position`, tolerating its own agent applying
    /// concurrently (the checkpoint compare-and-set makes one of us win each chunk).
    private func catchUp(_ store: any ProjectionStore, to position: OutboxPosition) async throws {
        while true {
            try Task.checkCancellation()
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
