import Foundation

/// A column value in the engine-neutral row model: what every engine can store and compare.
///
/// Booleans are stored as integers 0/1 and times as integer microseconds since 1970, so that
/// every engine sorts and compares them the same way.
public enum CanonValue: Hashable, Sendable, CustomStringConvertible {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)

    public static func bool(_ value: Bool) -> CanonValue { .integer(value ? 1 : 0) }

    public static func timestamp(_ date: Date) -> CanonValue { .integer(Timestamp.microseconds(date)) }

    public static func optionalText(_ value: String?) -> CanonValue { value.map(CanonValue.text) ?? .null }

    public static func optionalTimestamp(_ value: Date?) -> CanonValue { value.map(CanonValue.timestamp) ?? .null }

    public var isNull: Bool { if case .null = self { true } else { false } }

    public var description: String {
        switch self {
        case .null: "NULL"
        case .integer(let value): String(value)
        case .real(let value): String(value)
        case .text(let value): "'\(value)'"
        case .blob(let value): "<\(value.count) bytes>"
        }
    }
}

/// Conversion between `Date` and the integer microseconds that stores keep.
public enum Timestamp {
    public static func microseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    public static func date(microseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }

    /// `date` at the microsecond precision that stores keep, so that what a commit returns equals
    /// what a later read returns.
    public static func stored(_ date: Date) -> Date { self.date(microseconds: microseconds(date)) }
}
