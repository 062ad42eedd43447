import Foundation

/// Finds every key where a derived store differs from what canonical state says it should hold,
/// and repairs exactly those keys.
///
/// The algorithm is engine-neutral; range checksums come from each engine.
///
/// **Full**: (1) the store's snapshot fixes the checkpoint `P`; (2) the expected digests are
/// computed from canonical state, between two reads of the canonical head (the later one `H`);
/// (3) both sides are compared by range checksums: a range whose checksums match is done, a
/// range small enough (`threshold` keys on the larger side) is compared key by key, any other is
/// split into `segments` ranges by the larger side's keys and compared again; (4) the store's
/// content is scanned against the digests it kept when applying, which finds rows changed
/// behind its back. Finally every key that any event in (`P`, `H`] touches is moved from the
/// differences to `lagging`: a check taken while writes are in flight reports drift, never lag.
///
/// **Sample** compares a random sample of keys from both sides; **since** compares the keys
/// changed after a position.
public struct DriftCheck: Sendable {
    public struct Options: Hashable, Sendable {
        /// Ranges a mismatching range is split into.
        public var segments: Int
        /// A mismatching range with at most this many keys (larger side) is compared key by key.
        public var threshold: Int
        /// Keys drawn from each side in sample mode.
        public var sampleSize: Int

        public init(segments: Int = 32, threshold: Int = 1_024, sampleSize: Int = 200) {
            self.segments = max(2, segments)
            self.threshold = max(1, threshold)
            self.sampleSize = max(1, sampleSize)
        }
    }

    public struct Progress: Sendable {
        public enum Phase: String, Sendable { case expected = "computing expected digests", ranges = "comparing ranges", content = "scanning stored content", lag = "reading lag" }
        public var phase: Phase
        public var done: Int
        public var total: Int?
    }

    public let store: any DriftCheckable
    public let expectation: any DriftExpectation
    public let source: any CanonicalStore
    public var options: Options
    /// Expected digests kept between checks (used when the expectation can version its keys).
    public let cache: (any DriftDigestCache)?

    public init(
        store: any DriftCheckable, expectation: any DriftExpectation, source: any CanonicalStore, options: Options = Options(),
        cache: (any DriftDigestCache)? = nil
    ) {
        self.store = store
        self.expectation = expectation
        self.source = source
        self.options = options
        self.cache = cache
    }

    // MARK: - Checking

    public func run(_ mode: DriftMode, since: OutboxPosition? = nil, record: Bool = true, progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws -> DriftReport {
        let started = ContinuousClock.now
        let snapshot = try await store.driftSnapshot()
        defer { snapshot.close() }
        var differences: [String: DriftDifference] = [:]
        var expectedKeys = 0, storedKeys = 0, compared = 0, ranges = 0, recomputed = 0
        var phases: [String: Double] = [:]
        var phaseStarted = ContinuousClock.now
        func lap(_ name: String) {
            let now = ContinuousClock.now
            let elapsed = now - phaseStarted
            phases[name, default: 0] += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            phaseStarted = now
        }
        let headBefore = try await source.headPosition()
        switch mode {
        case .full:
            // The scan of stored content needs only the store's snapshot: it runs while the
            // canonical side is computed (two cores, two engines' files).
            async let tamperedKeys = snapshot.tampered()
            let expected: InMemoryDriftSide
            if let cache, let versioned = expectation as? any VersionedDriftExpectation {
                let (digests, fresh) = try await cachedExpectedDigests(versioned, cache: cache, progress: progress)
                expected = InMemoryDriftSide(digests)
                recomputed = fresh
            } else {
                expected = InMemoryDriftSide(try await expectation.expectedDigests { progress(Progress(phase: .expected, done: $0, total: nil)) })
                recomputed = expected.count
            }
            expectedKeys = expected.count
            lap("expected")
            let comparison = try await Self.compare(expected, snapshot, options: options, progress: progress)
            storedKeys = comparison.storedKeys
            compared = comparison.keysCompared
            ranges = comparison.ranges
            for difference in comparison.differences { differences[difference.key] = difference }
            lap("ranges")
            let total = storedKeys
            progress(Progress(phase: .content, done: 0, total: total))
            for key in try await tamperedKeys where differences[key] == nil {
                differences[key] = DriftDifference(key: key, kind: .stale, detail: "stored content changed after it was applied")
            }
            progress(Progress(phase: .content, done: total, total: total))
            lap("content")
        case .sample, .since:
            var keys: [String]
            if mode == .sample {
                keys = try await expectation.sampleKeys(options.sampleSize) + snapshot.sampleKeys(options.sampleSize)
            } else {
                let from = since ?? snapshot.checkpoint
                keys = Array(try await touchedKeys(after: from, through: headBefore, progress: progress))
            }
            keys = Array(Set(keys)).sorted()
            for batch in stride(from: 0, to: keys.count, by: 500).map({ Array(keys[$0..<min($0 + 500, keys.count)]) }) {
                let expected = try await expectation.expectedDigests(batch)
                let stored = try await snapshot.contentDigests(batch)
                for key in batch {
                    switch (expected[key], stored[key]) {
                    case (nil, nil): break
                    case (_?, nil): differences[key] = DriftDifference(key: key, kind: .missing)
                    case (nil, _?): differences[key] = DriftDifference(key: key, kind: .extra)
                    case (let want?, let have?) where want != have: differences[key] = DriftDifference(key: key, kind: .stale)
                    default: break
                    }
                }
                compared += batch.count
                progress(Progress(phase: .ranges, done: compared, total: keys.count))
            }
            expectedKeys = keys.count
            recomputed = keys.count
            storedKeys = keys.count
        }
        // Differences on keys the store has not caught up with yet are lag, not drift.
        let head = try await source.headPosition()
        let lagKeys = try await touchedKeys(after: snapshot.checkpoint, through: head, progress: progress)
        let lagging = differences.keys.filter(lagKeys.contains).sorted()
        lap("lag")
        for key in lagging { differences[key] = nil }
        let elapsed = ContinuousClock.now - started
        let report = DriftReport(
            store: store.identity.name, version: store.identity.version, mode: mode, position: snapshot.checkpoint, canonicalHead: head,
            since: mode == .since ? (since ?? snapshot.checkpoint) : nil, checkedAt: Date(), expectedKeys: expectedKeys, storedKeys: storedKeys,
            keysCompared: compared, rangesCompared: ranges, differences: differences.values.sorted { $0.key < $1.key }, lagging: lagging.count,
            laggingSample: Array(lagging.prefix(50)), expectedRecomputed: recomputed, phaseSeconds: phases,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        if record { try await store.recordDrift(report.summary) }
        return report
    }

    /// What comparing two sides by ranges found.
    public struct Comparison: Sendable {
        public var differences: [DriftDifference]
        public var storedKeys: Int
        /// Keys compared one by one, in ranges small enough or mismatching to the end.
        public var keysCompared: Int
        /// Ranges whose checksums were compared.
        public var ranges: Int
    }

    /// Compares `stored` with `expected` by range checksums, bisecting mismatching ranges into
    /// `options.segments` parts until they hold at most `options.threshold` keys, then key by key.
    public static func compare(
        _ expected: InMemoryDriftSide, _ stored: any DriftSide, options: Options, progress: @escaping @Sendable (Progress) -> Void = { _ in }
    ) async throws -> Comparison {
        var comparison = RangeComparison(expected: expected, stored: stored, options: options, progress: progress)
        try await comparison.compare(.all)
        return Comparison(
            differences: comparison.differences, storedKeys: comparison.storedKeys, keysCompared: comparison.keysCompared, ranges: comparison.ranges)
    }

    /// The keys that events after `position`, through `head`, touch.
    func touchedKeys(after position: OutboxPosition, through head: OutboxPosition, progress: @Sendable (Progress) -> Void) async throws -> Set<String> {
        var keys = Set<String>()
        var cursor = position
        while cursor < head {
            let events = try await source.events(after: cursor, limit: 5_000)
            guard let last = events.last else { break }
            for event in events where event.position <= head { keys.formUnion(expectation.keys(touchedBy: event)) }
            cursor = last.position
            progress(Progress(phase: .lag, done: Int(cursor.rawValue - position.rawValue), total: Int(head.rawValue - position.rawValue)))
        }
        return keys
    }

    // MARK: - Repairing

    public struct RepairReport: Hashable, Codable, Sendable {
        public var store: String
        public var found: DriftReport
        /// Keys re-projected.
        public var repaired: [String]
        /// The check after the repair.
        public var verified: DriftReport
        /// Attempts the repair needed because the agent moved the checkpoint meanwhile.
        public var attempts: Int
    }

    /// Checks (`mode`), re-projects exactly the differing keys through the store's own apply
    /// code at its checkpoint (retrying when the agent moves it), then checks again.
    public func repair(mode: DriftMode = .full, since: OutboxPosition? = nil, progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws -> RepairReport {
        let found = try await run(mode, since: since, record: false, progress: progress)
        let keys = Set(found.differences.map(\.key))
        var attempts = 0
        if !keys.isEmpty {
            // The keys' history is read once through the canonical head, ahead of the agent; each
            // attempt then takes the part up to the checkpoint it read. So the only window a busy
            // agent can move the checkpoint in is between that read and the repair's write.
            var through = try await source.headPosition()
            var history = try await expectation.history(of: keys, through: through)
            while true {
                attempts += 1
                let checkpoint = try await store.checkpoint().position
                if checkpoint > through {
                    through = try await source.headPosition()
                    history = try await expectation.history(of: keys, through: through)
                    continue
                }
                do {
                    try await store.repair(keys: keys, history: history.filter { $0.position <= checkpoint }, at: checkpoint)
                    break
                } catch let error as ProjectionError where error.code == .checkpointConflict && attempts < 200 {
                    continue
                }
            }
        }
        let verified = try await run(mode, since: since, progress: progress)
        return RepairReport(store: store.identity.name, found: found, repaired: keys.sorted(), verified: verified, attempts: attempts)
    }
}

/// The bisection over two sides.
struct RangeComparison {
    let expected: InMemoryDriftSide
    let stored: any DriftSide
    let options: DriftCheck.Options
    let progress: @Sendable (DriftCheck.Progress) -> Void
    var differences: [DriftDifference] = []
    var storedKeys = 0
    var keysCompared = 0
    var ranges = 0
    private var settled = 0

    init(expected: InMemoryDriftSide, stored: any DriftSide, options: DriftCheck.Options, progress: @escaping @Sendable (DriftCheck.Progress) -> Void) {
        self.expected = expected
        self.stored = stored
        self.options = options
        self.progress = progress
    }

    mutating func compare(_ range: KeyRange) async throws {
        let want = expected.checksum(range)
        let have = try await stored.checksum(range)
        ranges += 1
        if range == .all { storedKeys = have.count }
        if want == have {
            settle(want.count)
            return
        }
        let larger = max(want.count, have.count)
        var points: [String] = []
        if larger > options.threshold, want.count > 1 || have.count > 2 * want.count {
            // The expected side splits for free (in memory); the stored side only when it holds
            // far more keys in the range (extras) than expected.
            points = have.count > 2 * want.count
                ? try await stored.splitPoints(range, parts: options.segments)
                : expected.splitPoints(range, parts: options.segments)
        }
        guard !points.isEmpty else {
            try await direct(range)
            settle(larger)
            return
        }
        var lower = range.lower
        for point in points + [nil] as [String?] {
            try await compare(KeyRange(lower: lower, upper: point ?? range.upper))
            lower = point
        }
    }

    private mutating func settle(_ count: Int) {
        settled += count
        progress(.init(phase: .ranges, done: settled, total: max(expected.count, storedKeys)))
    }

    /// Key by key, merging two sorted lists.
    private mutating func direct(_ range: KeyRange) async throws {
        let want = expected.digests(range)
        let have = try await stored.digests(range)
        keysCompared += max(want.count, have.count)
        var i = 0, j = 0
        while i < want.count || j < have.count {
            if j == have.count || (i < want.count && want[i].key < have[j].key) {
                differences.append(DriftDifference(key: want[i].key, kind: .missing))
                i += 1
            } else if i == want.count || have[j].key < want[i].key {
                differences.append(DriftDifference(key: have[j].key, kind: .extra))
                j += 1
            } else {
                if want[i].digest != have[j].digest { differences.append(DriftDifference(key: want[i].key, kind: .stale)) }
                i += 1
                j += 1
            }
        }
    }
}
