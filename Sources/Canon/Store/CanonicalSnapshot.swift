/// One consistent read snapshot of a canonical store: every read sees the same state, the state
/// as of outbox position `head`. A rebuild from canonical state reads one.
public protocol CanonicalSnapshot: Sendable {
    /// The last outbox position the snapshot includes.
    var head: OutboxPosition { get }
    func fetchAll(_ query: RowQuery) async throws -> [Row]
}

/// A canonical store that can hold a read snapshot open while it is read in chunks.
public protocol SnapshotReadable: CanonicalStore {
    func snapshot() async throws -> any CanonicalSnapshot
}
