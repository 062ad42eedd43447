/// An expected digest remembered with the version of the canonical state it was computed from.
public struct CachedDigest: Hashable, Sendable {
    public var key: String
    public var version: Int64
    public var digest: UInt64

    public init(key: String, version: Int64, digest: UInt64) {
        self.key = key
        self.version = version
        self.digest = digest
    }
}

/// Expected digests kept between checks, so a check recomputes only the keys whose canonical
/// state changed since the last one. One cache per projection version (its code and, for vectors,
/// its model are fixed), kept apart from the derived store it checks: a damaged store cannot
/// damage what it is compared with.
public protocol DriftDigestCache: Sendable {
    /// Every entry, in key order.
    func entries() async throws -> [CachedDigest]

    func update(upserting: [CachedDigest], deleting: [String]) async throws
}

/// An expectation that can say cheaply which canonical version each key's document is made from:
/// two reads of a key at the same version expect the same digest, so a cached digest of that
/// version stands.
public protocol VersionedDriftExpectation: DriftExpectation {
    /// Every key the projection should hold, with its source version, in key order.
    func expectedVersions(progress: @Sendable (Int) -> Void) async throws -> [(key: String, version: Int64)]
}

extension DriftCheck {
    /// The expected digests, recomputing only keys whose version moved since the cache was written.
    func cachedExpectedDigests(
        _ versioned: any VersionedDriftExpectation, cache: any DriftDigestCache, progress: @escaping @Sendable (Progress) -> Void
    ) async throws -> (digests: [KeyDigest], recomputed: Int) {
        let versions = try await versioned.expectedVersions { progress(Progress(phase: .expected, done: $0, total: nil)) }
        let cached = try await cache.entries()
        // Both lists are in key order: merge them. `found[i]` is the digest of `versions[i]`.
        var found = [UInt64?](repeating: nil, count: versions.count)
        var misses: [Int] = []
        var deleting: [String] = []
        var j = 0
        for (i, wanted) in versions.enumerated() {
            while j < cached.count && cached[j].key < wanted.key {
                deleting.append(cached[j].key)
                j += 1
            }
            if j < cached.count && cached[j].key == wanted.key {
                if cached[j].version == wanted.version { found[i] = cached[j].digest } else { misses.append(i) }
                j += 1
            } else {
                misses.append(i)
            }
        }
        deleting += cached[j...].map(\.key)
        var upserting: [CachedDigest] = []
        if misses.count > versions.count / 2 {
            // A cold (or mostly stale) cache: one pass over canonical state beats key lookups.
            let all = try await versioned.expectedDigests { progress(Progress(phase: .expected, done: $0, total: versions.count)) }
            let byKey = Dictionary(all.map { ($0.key, $0.digest) }, uniquingKeysWith: { first, _ in first })
            upserting = versions.compactMap { entry in byKey[entry.key].map { CachedDigest(key: entry.key, version: entry.version, digest: $0) } }
            try await cache.update(upserting: upserting, deleting: deleting)
            return (all, all.count)
        }
        for start in stride(from: 0, to: misses.count, by: 5_000) {
            let batch = misses[start..<min(start + 5_000, misses.count)]
            let computed = try await versioned.expectedDigests(batch.map { versions[$0].key })
            for index in batch {
                // A key gone meanwhile is no longer expected; a changed one is lag this time, and
                // its version moved, so the next check recomputes it.
                guard let digest = computed[versions[index].key] else { continue }
                found[index] = digest
                upserting.append(CachedDigest(key: versions[index].key, version: versions[index].version, digest: digest))
            }
            progress(Progress(phase: .expected, done: versions.count - misses.count + start + batch.count, total: versions.count))
        }
        var digests: [KeyDigest] = []
        digests.reserveCapacity(versions.count)
        for (index, digest) in found.enumerated() {
            if let digest { digests.append(KeyDigest(key: versions[index].key, digest: digest)) }
        }
        try await cache.update(upserting: upserting, deleting: deleting)
        return (digests, upserting.count)
    }
}
