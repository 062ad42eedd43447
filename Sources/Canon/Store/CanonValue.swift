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

    /// RFC 3339 UTC with microseconds, e.g. `2026-07-21T03:38:47.250000Z`: the precision stores
    /// keep, so a date survives a JSON round trip unchanged.
    public static func iso8601(_ date: Date) -> String {
        let micros = microseconds(date)
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let fraction = micros - seconds * 1_000_000
        let base = Date(timeIntervalSince1970: Double(seconds)).formatted(.iso8601)
        let digits = String(fraction)
        return String(base.dropLast()) + "." + String(repeating: "0", count: 6 - digits.count) + digits + "Z"
    }

    /// Parses RFC 3339 with or without a fraction (up to microseconds kept); nil when malformed.
    public static func parseISO8601(_ text: String) -> Date? {
        var base = text
        var micros: Int64 = 0
        if let dot = text.firstIndex(of: "."), text.hasSuffix("Z") {
            let fraction = text[text.index(after: dot)..<text.index(before: text.endIndex)]
            guard !fraction.isEmpty, fraction.allSatisfy(\.isASCII), fraction.allSatisfy(\.isNumber) else { return nil }
            let padded = (fraction + "000000").prefix(6)
            micros = Int64(padded) ?? 0
            base = String(text[..<dot]) + "Z"
        }
        guard let seconds = try? Date.ISO8601FormatStyle().parse(base) else { return nil }
        return date(microseconds: Int64(seconds.timeIntervalSince1970.rounded()) * 1_000_000 + micros)
    }

    /// JSON date strategies that keep microseconds.
    public static let encodingStrategy: JSONEncoder.DateEncodingStrategy = .custom { date, encoder in
        var container = encoder.singleValueContainer()
        try container.encode(iso8601(date))
    }

    public static let decodingStrategy: JSONDecoder.DateDecodingStrategy = .custom { decoder in
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let date = parseISO8601(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected an RFC 3339 date, got \(text)")
        }
        return date
    }
}
