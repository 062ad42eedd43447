import Foundation

/// How a derived key differs from what canonical state says it should be.
public enum DriftKind: String, Hashable, Codable, Sendable, CaseIterable {
    /// Canonical state has it; the store does not.
    case missing
    /// The store has it; canonical state does not (a delete that never arrived, or a stray).
    case extra
    /// Both have it, with different content.
    case stale
}

public struct DriftDifference: Hashable, Codable, Sendable {
    public var key: String
    public var kind: DriftKind
    /// Why it is stale, when it is known: "content changed after apply" for a tampered row.
    public var detail: String?

    public init(key: String, kind: DriftKind, detail: String? = nil) {
        self.key = key
        self.kind = kind
        self.detail = detail
    }
}

/// How a check ran.
public enum DriftMode: String, Hashable, Codable, Sendable, CaseIterable {
    /// Every key, by checksummed ranges with bisection, plus a scan of stored content against
    /// the digests kept at apply.
    case full
    /// A random sample of keys from both sides, compared key by key.
    case sample
    /// The keys changed after a position.
    case since
}

/// The result of one drift check.
public struct DriftReport: Hashable, Codable, Sendable {
    public var store: String
    public var version: Int
    public var mode: DriftMode
    /// The store's checkpoint the check was taken at: differences on keys changed after it are
    /// lag, listed apart, not drift.
    public var position: OutboxPosition
    /// The canonical head when the expected side was computed.
    public var canonicalHead: OutboxPosition
    /// For `since`: the position keys were changed after.
    public var since: OutboxPosition?
    public var checkedAt: Date
    public var expectedKeys: Int
    public var storedKeys: Int
    /// Keys whose digests were compared one by one (after ranges narrowed them down).
    public var keysCompared: Int
    /// Range checksums taken on each side.
    public var rangesCompared: Int
    public var differences: [DriftDifference]
    /// How many keys differ only because the store has not yet applied events after `position`.
    public var lagging: Int
    /// The first of them (at most 50), in key order.
    public var laggingSample: [String]
    /// Expected digests computed from canonical state in this check (the rest came from the
    /// cache, their canonical version unchanged since they were computed).
    public var expectedRecomputed: Int
    /// Where the time went: expected, ranges, content, lag (full mode).
    public var phaseSeconds: [String: Double]
    public var seconds: Double

    public var count: Int { differences.count }

    public func count(_ kind: DriftKind) -> Int { differences.filter { $0.kind == kind }.count }

    /// Keys per second through the whole check (the larger side).
    public var keysPerSecond: Double { seconds > 0 ? Double(max(expectedKeys, storedKeys, keysCompared)) / seconds : 0 }

    public var summary: DriftSummary {
        DriftSummary(
            mode: mode, position: position, checkedAt: checkedAt, differences: count, missing: count(.missing), extra: count(.extra),
            stale: count(.stale), keys: max(expectedKeys, storedKeys, keysCompared), seconds: seconds)
    }

    enum CodingKeys: String, CodingKey {
        case store, version, mode, position, since, differences, lagging, seconds
        case laggingSample = "lagging_sample", expectedRecomputed = "expected_recomputed", phaseSeconds = "phase_seconds"
        case canonicalHead = "canonical_head", checkedAt = "checked_at", expectedKeys = "expected_keys", storedKeys = "stored_keys"
        case keysCompared = "keys_compared", rangesCompared = "ranges_compared"
    }
}

/// What a store keeps of its last check of each mode.
public struct DriftSummary: Hashable, Codable, Sendable {
    public var mode: DriftMode
    public var position: OutboxPosition
    public var checkedAt: Date
    public var differences: Int
    public var missing: Int
    public var extra: Int
    public var stale: Int
    public var keys: Int
    public var seconds: Double

    public init(
        mode: DriftMode, position: OutboxPosition, checkedAt: Date, differences: Int, missing: Int, extra: Int, stale: Int, keys: Int, seconds: Double
    ) {
        self.mode = mode
        self.position = position
        self.checkedAt = checkedAt
        self.differences = differences
        self.missing = missing
        self.extra = extra
        self.stale = stale
        self.keys = keys
        self.seconds = seconds
    }

    enum CodingKeys: String, CodingKey {
        case mode, position, differences, missing, extra, stale, keys, seconds
        case checkedAt = "checked_at"
    }
}
