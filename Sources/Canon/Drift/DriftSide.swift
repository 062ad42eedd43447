/// A contiguous range of keys, `lower` inclusive to `upper` exclusive; nil is unbounded.
public struct KeyRange: Hashable, Codable, Sendable, CustomStringConvertible {
    public var lower: String?
    public var upper: String?

    public init(lower: String? = nil, upper: String? = nil) {
        self.lower = lower
        self.upper = upper
    }

    public static let all = KeyRange()

    public func contains(_ key: String) -> Bool {
        (lower.map { key >= $0 } ?? true) && (upper.map { key < $0 } ?? true)
    }

    public var description: String { "[\(lower ?? "−∞"), \(upper ?? "+∞"))" }
}

/// The checksum of a key range: its key count and the sums of the low and high 32 bits of its
/// digests. Sums (not a rolling hash) let an engine compute it with one aggregate over an index,
/// and the two halves keep each sum exact in a signed 64-bit accumulator for 2³¹ keys.
public struct RangeChecksum: Hashable, Codable, Sendable {
    public var count: Int
    public var low: Int64
    public var high: Int64

    public init(count: Int = 0, low: Int64 = 0, high: Int64 = 0) {
        self.count = count
        self.low = low
        self.high = high
    }

    public mutating func add(_ digest: UInt64) {
        count += 1
        low += Int64(digest & 0xFFFF_FFFF)
        high += Int64(digest >> 32)
    }
}

/// One key and the digest of its content.
public struct KeyDigest: Hashable, Codable, Sendable {
    public var key: String
    public var digest: UInt64

    public init(key: String, digest: UInt64) {
        self.key = key
        self.digest = digest
    }
}

/// One side of a drift check: the keys and digests a store holds (or should hold), read by range.
///
/// A side answers every call from the same state: a derived store from one read snapshot, the
/// canonical side from digests computed once.
public protocol DriftSide: Sendable {
    func checksum(_ range: KeyRange) async throws -> RangeChecksum

    /// The keys in `range` with their digests, in key order.
    func digests(_ range: KeyRange) async throws -> [KeyDigest]

    /// Up to `parts - 1` keys of `range`, in order, that split it into `parts` runs of about
    /// equal size.
    func splitPoints(_ range: KeyRange, parts: Int) async throws -> [String]
}

/// A side held in memory, sorted by key, with prefix sums so any range's checksum costs two
/// binary searches: the canonical side of a check, computed once from canonical state.
public struct InMemoryDriftSide: DriftSide {
    public let keys: [String]
    public let digests: [UInt64]
    private let prefix: [RangeChecksum]

    /// - Parameter digests: every key once; sorted here.
    public init(_ entries: [KeyDigest]) {
        var ordered = true
        for index in entries.indices.dropFirst() where !(entries[index - 1].key < entries[index].key) {
            ordered = false
            break
        }
        let sorted = ordered ? entries : entries.sorted { $0.key < $1.key }
        keys = sorted.map(\.key)
        digests = sorted.map(\.digest)
        var sums = [RangeChecksum()]
        sums.reserveCapacity(sorted.count + 1)
        var running = RangeChecksum()
        for entry in sorted {
            running.add(entry.digest)
            sums.append(running)
        }
        prefix = sums
    }

    public var count: Int { keys.count }

    public func digest(of key: String) -> UInt64? {
        let index = lowerBound(key)
        return index < keys.count && keys[index] == key ? digests[index] : nil
    }

    private func lowerBound(_ key: String) -> Int {
        var low = 0, high = keys.count
        while low < high {
            let middle = (low + high) / 2
            if keys[middle] < key { low = middle + 1 } else { high = middle }
        }
        return low
    }

    private func bounds(_ range: KeyRange) -> Range<Int> {
        let start = range.lower.map(lowerBound) ?? 0
        let end = range.upper.map(lowerBound) ?? keys.count
        return start..<max(start, end)
    }

    public func checksum(_ range: KeyRange) -> RangeChecksum {
        let indices = bounds(range)
        let end = prefix[indices.upperBound], start = prefix[indices.lowerBound]
        return RangeChecksum(count: end.count - start.count, low: end.low - start.low, high: end.high - start.high)
    }

    public func digests(_ range: KeyRange) -> [KeyDigest] {
        bounds(range).map { KeyDigest(key: keys[$0], digest: digests[$0]) }
    }

    public func splitPoints(_ range: KeyRange, parts: Int) -> [String] {
        let indices = bounds(range)
        guard parts > 1, indices.count > 1 else { return [] }
        let step = max(1, indices.count / parts)
        return stride(from: indices.lowerBound + step, to: indices.upperBound, by: step).prefix(parts - 1).map { keys[$0] }
    }
}
