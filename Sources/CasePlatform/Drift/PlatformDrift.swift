import Canon
import Foundation

/// What each of the platform's projections should hold, computed from canonical state: the
/// canonical side of `canon drift` and `canon repair`.
public enum PlatformDrift {
    /// The expectation for `store` (a live projection of this platform), read from `source`.
    public static func expectation(for store: any ProjectionStore, source: any CanonicalStore) throws -> any DriftExpectation {
        switch store.identity.name {
        case PlatformPortfolio.Store.caseSearch:
            return CaseSearchExpectation(source: source, projection: CaseSearchProjection(version: store.identity.version))
        case PlatformPortfolio.Store.caseTimeline:
            return CaseTimelineExpectation(source: source, projection: CaseTimelineProjection(version: store.identity.version))
        case PlatformPortfolio.Store.evidenceSemantic:
            guard let vectors = store as? any VectorStore else { break }
            return EvidenceSemanticExpectation(source: source, model: vectors.model)
        default:
            break
        }
        throw ProjectionError.unknownProjection(store.identity.name, known: [
            PlatformPortfolio.Store.caseSearch, PlatformPortfolio.Store.caseTimeline, PlatformPortfolio.Store.evidenceSemantic,
        ])
    }

    /// The drift check of `store` against `source`.
    ///
    /// - Throws: `ProjectionError.unknownProjection` when the store is not one of the platform's
    ///   projections or cannot be checked.
    public static func check(
        _ store: any ProjectionStore, source: any CanonicalStore, options: DriftCheck.Options = .init(), cache: (any DriftDigestCache)? = nil
    ) throws -> DriftCheck {
        guard let checkable = store as? any DriftCheckable else {
            throw ProjectionError.unknownProjection(store.identity.name, known: [])
        }
        return DriftCheck(store: checkable, expectation: try expectation(for: store, source: source), source: source, options: options, cache: cache)
    }

    /// `(id, version)` of every row of `table`, in id order: the source version of each key.
    static func versions(_ source: any CanonicalStore, table: String, progress: @Sendable (Int) -> Void) async throws -> [(key: String, version: Int64)] {
        var versions: [(key: String, version: Int64)] = []
        var after: CanonValue?
        while true {
            let rows = try await source.fetchValues(RowQuery(
                table: table, after: after.map { RowQuery.After("id", $0) }, columns: ["id", "version"], order: [.init("id")], limit: 50_000))
            guard let last = rows.last else { break }
            for row in rows {
                guard case .text(let id) = row[0], case .integer(let version) = row[1] else {
                    throw CanonicalStoreError.column("id, version", expected: "text, integer", found: row[0])
                }
                versions.append((id, version))
            }
            progress(versions.count)
            after = last[0]
            if rows.count < 50_000 { break }
        }
        return versions
    }

    /// Rows of `table` in `key` order, a page at a time, through `body`.
    static func scan(_ source: any CanonicalStore, table: String, key: String = "id", page: Int = 5_000, _ body: ([Row]) async throws -> Void) async throws {
        var after: CanonValue?
        while true {
            let rows = try await source.fetchAll(RowQuery(
                table: table, after: after.map { RowQuery.After(key, $0) }, order: [.init(key)], limit: page))
            guard let last = rows.last else { return }
            try await body(rows)
            after = last[key]
            if rows.count < page { return }
        }
    }

    /// Up to `count` keys of `table` drawn at random, uniformly over its rows: each the key at a
    /// random offset in key order. (Ids are time-ordered, UUIDv7: the first key after a random
    /// point of the key space, as this used to draw, was nearly always the oldest.)
    static func sample(_ source: any CanonicalStore, table: String, count: Int) async throws -> [String] {
        let total = try await source.count(table, filter: [:])
        guard total > 0, count > 0 else { return [] }
        var offsets = Set<Int>()
        if count >= total {
            offsets = Set(0..<total)
        } else {
            while offsets.count < count { offsets.insert(Int.random(in: 0..<total)) }
        }
        // In offset order, each read skipping only the rows since the key before it: one pass over
        // the key index in all, not one from the start per key.
        var keys: [String] = []
        var previous: (offset: Int, key: String)?
        for offset in offsets.sorted() {
            let row = try await source.fetchOne(RowQuery(
                table: table, after: previous.map { RowQuery.After("id", .text($0.key)) }, columns: ["id"], order: [.init("id")], limit: 1,
                offset: offset - (previous.map { $0.offset + 1 } ?? 0)))
            guard let id = try row?.string("id") else { break }
            keys.append(id)
            previous = (offset, id)
        }
        return keys
    }

    /// Every event of the streams of `cases`, through `position`, in position order.
    static func history(ofCases cases: some Sequence<String>, through position: OutboxPosition, in source: any CanonicalStore) async throws -> [EventEnvelope] {
        var events: [EventEnvelope] = []
        for id in Set(cases) { events += try await source.events(in: StreamID("case-\(id)"), through: position) }
        return events.sorted { $0.position < $1.position }
    }
}

/// An expectation keyed by case id: a key's history is its case stream, and its source version is
/// the case's version (every change to a case, its party links included, moves it; party names
/// never change).
public protocol CaseKeyedExpectation: VersionedDriftExpectation {
    var source: any CanonicalStore { get }
}

extension CaseKeyedExpectation {
    public func expectedVersions(progress: @Sendable (Int) -> Void) async throws -> [(key: String, version: Int64)] {
        try await PlatformDrift.versions(source, table: "cases", progress: progress)
    }

    public func history(of keys: Set<String>, through position: OutboxPosition) async throws -> [EventEnvelope] {
        try await PlatformDrift.history(ofCases: keys, through: position, in: source)
    }

    public func sampleKeys(_ count: Int) async throws -> [String] {
        try await PlatformDrift.sample(source, table: "cases", count: count)
    }
}

/// Case search, from the `cases`, `case_parties` and `parties` rows: the document the
/// projection makes of a case's current state.
public struct CaseSearchExpectation: CaseKeyedExpectation {
    public let source: any CanonicalStore
    public let projection: CaseSearchProjection

    public var projectionName: String { projection.identity.name }

    public init(source: any CanonicalStore, projection: CaseSearchProjection = CaseSearchProjection()) {
        self.source = source
        self.projection = projection
    }

    public func expectedDigests(progress: @Sendable (Int) -> Void) async throws -> [KeyDigest] {
        var digests: [KeyDigest] = []
        try await PlatformDrift.scan(source, table: "cases") { rows in
            let cases = try rows.map(Case.init(row:))
            digests += try await self.digests(of: cases)
            progress(digests.count)
        }
        return digests
    }

    public func expectedDigests(_ keys: [String]) async throws -> [String: UInt64] {
        let cases = try await CaseQueries(store: source).cases(ids: keys)
        return Dictionary(uniqueKeysWithValues: try await digests(of: Array(cases.values)).map { ($0.key, $0.digest) })
    }

    private func digests(of cases: [Case]) async throws -> [KeyDigest] {
        let schema = projection.schema
        return try await CaseSearchState.documents(of: cases, projection: projection, fetch: source.fetchAll).map {
            KeyDigest(key: $0.key, digest: $0.driftDigest(schema))
        }
    }

    public func keys(touchedBy event: EventEnvelope) -> Set<String> {
        projection.documentKey(for: event).map { [$0] } ?? []
    }

}

/// Case timeline, from the outbox: the timeline is the case's history, and the outbox holds it.
public struct CaseTimelineExpectation: CaseKeyedExpectation {
    public let source: any CanonicalStore
    public let projection: CaseTimelineProjection

    public init(source: any CanonicalStore, projection: CaseTimelineProjection = CaseTimelineProjection()) {
        self.source = source
        self.projection = projection
    }

    public var projectionName: String { projection.identity.name }

    public func expectedDigests(progress: @Sendable (Int) -> Void) async throws -> [KeyDigest] {
        let head = try await source.headPosition()
        var sums: [String: UInt64] = [:]
        var cursor = OutboxPosition.start
        var seen = 0
        while cursor < head {
            let events = try await source.events(after: cursor, limit: 5_000)
            guard let last = events.last else { break }
            for event in events where event.position <= head {
                if let key = projection.clearedKey(by: event) {
                    sums[key] = nil
                    continue
                }
                for entry in try projection.entries(for: event) { sums[entry.key, default: 0] &+= entry.driftDigest }
            }
            cursor = last.position
            seen += events.count
            progress(seen)
        }
        return sums.map { KeyDigest(key: $0.key, digest: $0.value) }
    }

    public func expectedDigests(_ keys: [String]) async throws -> [String: UInt64] {
        let head = try await source.headPosition()
        var sums: [String: UInt64] = [:]
        for entry in try projection.replay(try await history(of: Set(keys), through: head)) where keys.contains(entry.key) {
            sums[entry.key, default: 0] &+= entry.driftDigest
        }
        return sums
    }

    public func keys(touchedBy event: EventEnvelope) -> Set<String> {
        Set(((try? projection.entries(for: event)) ?? []).map(\.key) + [projection.clearedKey(by: event)].compactMap { $0 })
    }

}

/// Evidence vectors, from the `evidence` rows: which text of which version should be embedded,
/// with which model.
public struct EvidenceSemanticExpectation: VersionedDriftExpectation {
    public let source: any CanonicalStore
    public let model: EmbeddingModelDescriptor
    let projection = EvidenceSemanticProjection()

    public var projectionName: String { projection.identity.name }

    public init(source: any CanonicalStore, model: EmbeddingModelDescriptor) {
        self.source = source
        self.model = model
    }

    private func digest(_ evidence: Evidence) -> KeyDigest {
        let document = VectorDocument(
            key: evidence.id, group: evidence.caseID, sourceVersion: evidence.version, text: EvidenceSemanticProjection.text(of: evidence))
        return KeyDigest(key: evidence.id, digest: document.driftDigest(model: model))
    }

    public func expectedDigests(progress: @Sendable (Int) -> Void) async throws -> [KeyDigest] {
        var digests: [KeyDigest] = []
        try await PlatformDrift.scan(source, table: "evidence") { rows in
            digests += try rows.map { digest(try Evidence(row: $0)) }
            progress(digests.count)
        }
        return digests
    }

    public func expectedDigests(_ keys: [String]) async throws -> [String: UInt64] {
        let rows = try await source.fetchAll(RowQuery(table: "evidence", anyOf: .init("id", keys.map { .text($0) })))
        return Dictionary(uniqueKeysWithValues: try rows.map { let entry = digest(try Evidence(row: $0)); return (entry.key, entry.digest) })
    }

    /// An evidence item's vector is made from its row at its version (with this store's model).
    public func expectedVersions(progress: @Sendable (Int) -> Void) async throws -> [(key: String, version: Int64)] {
        try await PlatformDrift.versions(source, table: "evidence", progress: progress)
    }

    public func keys(touchedBy event: EventEnvelope) -> Set<String> {
        Set(((try? projection.documents(for: event)) ?? []).map(\.key) + projection.removedKeys(by: event))
    }

    public func history(of keys: Set<String>, through position: OutboxPosition) async throws -> [EventEnvelope] {
        // A purged item's case is in its tombstone; a key with neither has no history, and the
        // repair deletes its vector.
        let ids = keys.map { CanonValue.text($0) }
        let rows = try await source.fetchAll(RowQuery(table: "evidence", anyOf: .init("id", ids)))
        let purged = try await source.fetchAll(RowQuery(table: "tombstones", filter: ["kind": .text("evidence")], anyOf: .init("id", ids)))
        return try await PlatformDrift.history(ofCases: try (rows + purged).map { try $0.string("case_id") }, through: position, in: source)
    }

    public func sampleKeys(_ count: Int) async throws -> [String] {
        try await PlatformDrift.sample(source, table: "evidence", count: count)
    }
}
