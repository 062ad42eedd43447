/// A change to one canonical row, applied inside a unit of work.
public enum RowMutation: Hashable, Sendable {
    /// Inserts a row; fails with `CanonicalStoreError.uniqueViolation` when its key exists.
    case insert(table: String, row: Row)
    /// Sets `values` on the one row whose columns equal `key`; fails with
    /// `CanonicalStoreError.rowNotFound` when no row matches.
    case update(table: String, key: Row, values: Row)
    /// Deletes the rows whose columns equal `key` (none is not an error).
    case delete(table: String, key: Row)
    /// Writes nothing: the unit commits only if a row whose columns equal `row` exists when it
    /// commits, else it fails with `CanonicalStoreError.requirementFailed` and writes nothing. A
    /// read the work was decided on, checked again atomically with the write: what a stream
    /// expectation is for events, for a row (say, the principal's role and team).
    case require(table: String, row: Row)

    public var table: String {
        switch self {
        case .insert(let table, _), .update(let table, _, _), .delete(let table, _), .require(let table, _): table
        }
    }
}

/// What the stream's version must be for a unit of work to commit (optimistic concurrency).
public enum ExpectedVersion: Hashable, Sendable, CustomStringConvertible {
    /// Any version, including a stream with no events yet.
    case any
    /// The stream must have no events yet.
    case noStream
    /// The stream's last event must have exactly this version.
    case exactly(Int64)

    /// Whether a stream whose current version is `current` (nil: no events) satisfies this.
    public func isSatisfied(by current: Int64?) -> Bool {
        switch self {
        case .any: true
        case .noStream: current == nil
        case .exactly(let version): current == version
        }
    }

    public var description: String {
        switch self {
        case .any: "any"
        case .noStream: "no stream"
        case .exactly(let version): "version \(version)"
        }
    }
}

/// Who asked for a unit of work and why: copied onto every event it appends.
public struct CommandMetadata: Hashable, Sendable {
    public var actor: String
    public var correlationID: String?
    public var causationID: String?

    public init(actor: String, correlationID: String? = nil, causationID: String? = nil) {
        self.actor = actor
        self.correlationID = correlationID
        self.causationID = causationID
    }

    public static let system = CommandMetadata(actor: "system")
}
