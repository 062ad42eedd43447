import Foundation

/// One row of a canonical table, as column name → value.
///
/// Typed accessors throw `CanonicalStoreError.column` when a column is missing or holds a value
/// of another type, so that a schema mismatch is a clear error rather than a crash.
public struct Row: Hashable, Sendable, ExpressibleByDictionaryLiteral {
    public var values: [String: CanonValue]

    public init(_ values: [String: CanonValue] = [:]) { self.values = values }

    public init(dictionaryLiteral elements: (String, CanonValue)...) {
        self.values = Dictionary(elements, uniquingKeysWith: { _, last in last })
    }

    public subscript(column: String) -> CanonValue {
        get { values[column] ?? .null }
        set { values[column] = newValue }
    }

    public var columns: [String] { values.keys.sorted() }

    /// `column=value, …` in column order, for messages.
    public var assignments: String { columns.map { "\($0)=\(self[$0])" }.joined(separator: ", ") }

    public func string(_ column: String) throws -> String {
        guard case .text(let value) = self[column] else { throw CanonicalStoreError.column(column, expected: "text", found: self[column]) }
        return value
    }

    public func optionalString(_ column: String) throws -> String? {
        if self[column].isNull { return nil }
        return try string(column)
    }

    public func int(_ column: String) throws -> Int64 {
        guard case .integer(let value) = self[column] else { throw CanonicalStoreError.column(column, expected: "integer", found: self[column]) }
        return value
    }

    public func optionalInt(_ column: String) throws -> Int64? {
        if self[column].isNull { return nil }
        return try int(column)
    }

    public func bool(_ column: String) throws -> Bool { try int(column) != 0 }

    public func date(_ column: String) throws -> Date { Timestamp.date(microseconds: try int(column)) }

    public func optionalDate(_ column: String) throws -> Date? {
        if self[column].isNull { return nil }
        return try date(column)
    }

    public func data(_ column: String) throws -> Data {
        guard case .blob(let value) = self[column] else { throw CanonicalStoreError.column(column, expected: "blob", found: self[column]) }
        return value
    }
}
