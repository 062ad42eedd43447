/// Why a canonical store refused or failed an operation.
///
/// A struct around a private enum, so that new cases do not break callers; match on `code`.
public struct CanonicalStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        case streamVersionConflict
        case uniqueViolation
        case rowNotFound
        /// A `RowMutation.require` found no row matching what the work was decided on.
        case requirementFailed
        case appendOnlyViolation
        case constraintViolation
        /// A value the engine cannot store (a NUL character in text, a number out of range): the
        /// caller's input, not the store's state.
        case invalidValue
        case unknownTable
        case column
        case injectedFault
        case storage
    }

    public let code: Code
    public let message: String
    /// For `streamVersionConflict`: the stream's actual version (nil when it has no events).
    public let actualVersion: Int64?
    /// For `requirementFailed`: the table the required row was looked for in.
    public let table: String?
    /// Why a `storage` error may pass by itself; nil when nothing says it will.
    public let transience: Transience?
    /// The connection failed with the statement or its commit in flight: whether it took effect
    /// is unknown, so it must not simply be run again.
    public let outcomeUnknown: Bool

    /// Why trying again later can succeed, though nothing is wrong with what was written.
    public enum Transience: String, Hashable, Sendable {
        /// Other writers: a lock held past the busy timeout, a deadlock, a serialization failure.
        case contention
        /// The store itself: unreachable, shutting down or recovering, out of memory, disk or
        /// connections. Something in the work could also cause it (a backend that crashes on
        /// it), so callers that retry check the store answers before they stop counting.
        case outage
    }

    /// Whether trying again later can succeed (`transience` is set).
    public var transient: Bool { transience != nil }

    private init(
        _ code: Code, _ message: String, actualVersion: Int64? = nil, table: String? = nil, transience: Transience? = nil,
        outcomeUnknown: Bool = false
    ) {
        self.code = code
        self.message = message
        self.actualVersion = actualVersion
        self.table = table
        self.transience = transience
        self.outcomeUnknown = outcomeUnknown
    }

    public static func streamVersionConflict(_ stream: StreamID, expected: ExpectedVersion, actual: Int64?) -> Self {
        Self(.streamVersionConflict,
             "stream \(stream) was expected at \(expected) but is at \(actual.map { "version \($0)" } ?? "no stream")",
             actualVersion: actual)
    }

    public static func uniqueViolation(table: String, detail: String) -> Self {
        Self(.uniqueViolation, "a row with the same key already exists in \(table): \(detail)")
    }

    public static func rowNotFound(table: String, key: Row) -> Self {
        Self(.rowNotFound, "no row in \(table) matches \(key.assignments)")
    }

    public static func requirementFailed(table: String, row: Row) -> Self {
        Self(.requirementFailed, "the work required a row in \(table) with \(row.assignments), and none matches now", table: table)
    }

    /// The same, as an engine reported it (`detail` is its message).
    public static func requirementFailed(table: String, detail: String) -> Self {
        Self(.requirementFailed, detail, table: table)
    }

    public static func appendOnlyViolation(table: String) -> Self {
        Self(.appendOnlyViolation, "\(table) is append-only: rows can be added, never changed or removed")
    }

    public static func constraintViolation(_ detail: String) -> Self { Self(.constraintViolation, detail) }

    public static func invalidValue(_ detail: String) -> Self { Self(.invalidValue, "a value cannot be stored: \(detail)") }

    public static func unknownTable(_ table: String) -> Self { Self(.unknownTable, "no canonical table named \(table)") }

    public static func column(_ column: String, expected: String, found: CanonValue) -> Self {
        Self(.column, "column \(column) should hold \(expected) but holds \(found)")
    }

    public static func injectedFault(_ point: FaultPoint) -> Self { Self(.injectedFault, "fault injected at \(point)") }

    /// - Parameter outcomeUnknown: the work was in flight when the answer was lost (not
    ///   transient: nothing says trying again will do better).
    public static func storage(_ detail: String, outcomeUnknown: Bool = false) -> Self {
        Self(.storage, detail, outcomeUnknown: outcomeUnknown)
    }

    /// The store is unreachable, shutting down, recovering or out of room (`Transience.outage`).
    /// - Parameter outcomeUnknown: the connection was lost with work in flight.
    public static func unavailable(_ detail: String, outcomeUnknown: Bool = false) -> Self {
        Self(.storage, detail, transience: .outage, outcomeUnknown: outcomeUnknown)
    }

    /// Other writers got in the way (`Transience.contention`); the work was rolled back.
    public static func contended(_ detail: String) -> Self { Self(.storage, detail, transience: .contention) }

    public var description: String { message }
}
