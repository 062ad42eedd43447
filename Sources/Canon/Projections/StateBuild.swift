/// A projection store that can be built from a snapshot of canonical state instead of from the
/// whole outbox: one document write per record instead of one fold per event.
///
/// A build reads the state in key order, a chunk at a time, each chunk committed with the key it
/// reached, so a crash resumes after that key. A resumed build reads a newer snapshot, so the
/// store remembers, for each range of keys, the position of the snapshot it was built from: the
/// catch-up from the outbox that follows skips each key's events up to that position (they are
/// in its state already), and applies the rest.
public protocol StateBuildableStore: ProjectionStore {
    /// Where a build from state stands: nil when none was begun.
    func stateBuild() async throws -> StateBuildProgress?
    /// Begins a build from a snapshot at `position`, or resumes one: the keys after the cursor
    /// will be written as of `position`. A fresh build moves the checkpoint to `position`.
    ///
    /// - Throws: `ProjectionError` when the store already holds events applied from the outbox.
    func beginStateBuild(at position: OutboxPosition) async throws
    /// Writes the next chunk: `documents` are the state of every key after the cursor up to
    /// `cursor` (keys with no document have none), as of the position the build began at.
    func writeState(_ documents: [SearchDocument], through cursor: String) async throws
    /// Marks the build complete: from here on the store is caught up from the outbox.
    func finishStateBuild() async throws
}

public struct StateBuildProgress: Hashable, Sendable {
    /// The last key written; nil before the first chunk.
    public var cursor: String?
    public var complete: Bool

    public init(cursor: String?, complete: Bool) {
        self.cursor = cursor
        self.complete = complete
    }
}

/// Reads a projection's documents from canonical state: the domain's half of a build from state.
public protocol DocumentStateSource: Sendable {
    /// How many records the build will read (for its progress and estimate).
    func count(in snapshot: any CanonicalSnapshot, source: any CanonicalStore) async throws -> Int
    /// Up to `limit` records after key `cursor`, in key order, read in `snapshot`, as documents;
    /// `next` is the key to continue after, nil once the state is read to its end.
    func documents(in snapshot: any CanonicalSnapshot, after cursor: String?, limit: Int) async throws -> (documents: [SearchDocument], next: String?)
}
