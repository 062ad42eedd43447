import Foundation

/// A derived store whose content can be checked against canonical state and repaired key by key.
///
/// Each engine keeps, beside every key it stores, the `DriftDigest` of what it applied (in the
/// same transaction), and computes range checksums over those digests itself.
public protocol DriftCheckable: ProjectionStore {
    /// A read-only view of the stored keys and digests at one checkpoint, held until `close()`.
    func driftSnapshot() async throws -> any DriftSnapshot

    /// Re-derives exactly `keys` from `history` (every event of their streams through
    /// `checkpoint`, in order), through the store's own fold and write code: a key the history
    /// does not produce is deleted. Writes only while the checkpoint is still `checkpoint`
    /// (otherwise `ProjectionError.checkpointConflict`, and nothing is written), so an agent's
    /// newer work is never overwritten with older state.
    func repair(keys: Set<String>, history: [EventEnvelope], at checkpoint: OutboxPosition) async throws

    /// Keeps the summary of the last check, for status and health.
    func recordDrift(_ summary: DriftSummary) async throws

    /// The summary of the last check of each mode, newest first.
    func driftSummaries() async throws -> [DriftSummary]
}

/// The derived side of a check, read from one snapshot of the store.
public protocol DriftSnapshot: DriftSide {
    /// The store's checkpoint in this snapshot: differences on keys changed after it are lag.
    var checkpoint: OutboxPosition { get }

    /// Keys whose stored content no longer hashes to the digest kept when it was applied: changed
    /// behind the runtime's back.
    func tampered() async throws -> [String]

    /// The digests of `keys` computed from their stored content (absent keys are left out).
    func contentDigests(_ keys: [String]) async throws -> [String: UInt64]

    /// A uniform random sample of up to `count` stored keys.
    func sampleKeys(_ count: Int) async throws -> [String]

    func close()
}

/// What a projection should hold, computed from current canonical state: the other side of a
/// drift check, written by the application that owns the projection.
public protocol DriftExpectation: Sendable {
    /// The name of the projection this describes.
    var projectionName: String { get }

    /// The digest of every key the projection should hold, given current canonical state.
    ///
    /// - Parameter progress: called with the number of keys computed so far.
    func expectedDigests(progress: @Sendable (Int) -> Void) async throws -> [KeyDigest]

    /// The expected digests of just `keys` (keys that should not exist are left out).
    func expectedDigests(_ keys: [String]) async throws -> [String: UInt64]

    /// The projection keys `event` changes.
    func keys(touchedBy event: EventEnvelope) -> Set<String>

    /// Every event that contributes to `keys`, through `position`, in position order (the input
    /// of a targeted repair).
    func history(of keys: Set<String>, through position: OutboxPosition) async throws -> [EventEnvelope]

    /// A uniform random sample of up to `count` keys the projection should hold.
    func sampleKeys(_ count: Int) async throws -> [String]
}

extension DriftSummary {
    /// The JSON text both engines keep in `canon_drift`, one row per mode.
    public func storedJSON() throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = Timestamp.encodingStrategy
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The rows of `canon_drift` read back, newest first. A row that is not a summary is a
    /// storage error naming the store, never a check left out.
    public static func stored(_ rows: [String], of store: ProjectionIdentity) throws -> [DriftSummary] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = Timestamp.decodingStrategy
        return try rows.map { row in
            do {
                return try decoder.decode(DriftSummary.self, from: Data(row.utf8))
            } catch {
                throw ProjectionError.storage("\(store): a drift check kept in canon_drift is unreadable (\(error)); `canon drift \(store.name)` records a new one")
            }
        }.sorted { $0.checkedAt > $1.checkedAt }
    }
}

/// The newest drift check of each store that keeps them, as status and health read them.
public struct NewestDriftChecks: Sendable {
    public var summaries: [String: DriftSummary] = [:]
    /// Stores whose kept checks could not be read, with why: shown degraded, never as unchecked.
    public var unreadable: [String: String] = [:]

    public init(summaries: [String: DriftSummary] = [:], unreadable: [String: String] = [:]) {
        self.summaries = summaries
        self.unreadable = unreadable
    }

    public static func read(_ stores: [any ProjectionStore]) async -> NewestDriftChecks {
        var checks = NewestDriftChecks()
        for store in stores {
            guard let checkable = store as? any DriftCheckable else { continue }
            do {
                if let newest = try await checkable.driftSummaries().first { checks.summaries[store.identity.name] = newest }
            } catch {
                checks.unreadable[store.identity.name] = "\(error)"
            }
        }
        return checks
    }
}
