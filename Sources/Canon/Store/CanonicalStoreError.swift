/// Why a canonical store refused or failed an operation.
///
/// A struct around a private enum, so that new cases do not break callers; match on `code`.
public struct CanonicalStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        case streamVersionConflict
        case uniqueViolation
        case rowNotFound
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
    /// A `storage` error that says nothing about the data: the store could not be reached, was
    /// busy, restarting or out of room. Trying again later can succeed; nothing is wrong with
    /// what was being written.
    public let transient: Bool

    private init(_ code: Code, _ message: String, actualVersion: Int64? = nil, transient: Bool = false) {
        self.code = code
        self.message = message
        self.actualVersion = actualVersion
        self.transient = transient
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
        Self(.rowNotFound, "no row in \(table) matches \(key.columns.map { "\($0)=\(key[$0])" }.joined(separator: ", "))")
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

    public static func storage(_ detail: String) -> Self { Self(.storage, detail) }

    /// A transient `storage` error (see `transient`).
    public static func unavailable(_ detail: String) -> Self { Self(.storage, detail, transient: true) }

    public var description: String { message }
}
