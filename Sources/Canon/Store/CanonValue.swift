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
    /// keep, so a date survives a JSON round trip unchanged. Formatted with integer arithmetic
    /// (civil-from-days), because it runs for every date of every event payload.
    public static func iso8601(_ date: Date) -> String {
        let micros = microseconds(date)
        let seconds = floorDivide(micros, 1_000_000)
        let fraction = micros - seconds * 1_000_000
        let days = floorDivide(seconds, 86_400)
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = civil(fromDays: days)
        // Four digits of year; outside 0...9999, its decimal text padded to four.
        let wideYear: [UInt8]? = (0...9999).contains(year) ? nil : Array((String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year)).utf8)
        let yearWidth = wideYear?.count ?? 4
        // Written in place: no intermediate strings.
        return String(unsafeUninitializedCapacity: yearWidth + 23) { text in
            func put(_ value: Int64, width: Int, at offset: Int) {
                var value = value
                for index in stride(from: offset + width - 1, through: offset, by: -1) {
                    text[index] = UInt8(truncatingIfNeeded: 0x30 + value % 10)
                    value /= 10
                }
            }
            if let wideYear {
                for (index, byte) in wideYear.enumerated() { text[index] = byte }
            } else {
                put(year, width: 4, at: 0)
            }
            let at = yearWidth
            text[at] = UInt8(ascii: "-")
            put(month, width: 2, at: at + 1)
            text[at + 3] = UInt8(ascii: "-")
            put(day, width: 2, at: at + 4)
            text[at + 6] = UInt8(ascii: "T")
            put(secondOfDay / 3600, width: 2, at: at + 7)
            text[at + 9] = UInt8(ascii: ":")
            put(secondOfDay / 60 % 60, width: 2, at: at + 10)
            text[at + 12] = UInt8(ascii: ":")
            put(secondOfDay % 60, width: 2, at: at + 13)
            text[at + 15] = UInt8(ascii: ".")
            put(fraction, width: 6, at: at + 16)
            text[at + 22] = UInt8(ascii: "Z")
            return at + 23
        }
    }

    /// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`, up to microseconds kept, or with a
    /// numeric offset); nil when malformed.
    public static func parseISO8601(_ text: String) -> Date? {
        var text = text
        // Read where the String holds its bytes: no copy into an array for every date decoded.
        return text.withUTF8(parseISO8601(utf8:))
    }

    private static func parseISO8601(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Date? {
        func number(_ range: Range<Int>) -> Int64? {
            guard range.upperBound <= bytes.count else { return nil }
            var value: Int64 = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            return value
        }
        guard bytes.count >= 20, bytes[4] == 45, bytes[7] == 45, bytes[10] == 84 || bytes[10] == 116, bytes[13] == 58, bytes[16] == 58,
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var micros: Int64 = 0
        if bytes[index] == 46 {
            index += 1
            var digits = 0
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                if digits < 6 { micros = micros * 10 + Int64(bytes[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 6) { micros *= 10 }
        }
        var offset: Int64 = 0
        guard index < bytes.count else { return nil }
        if bytes[index] == 90 || bytes[index] == 122 {
            guard index + 1 == bytes.count else { return nil }
        } else if bytes[index] == 43 || bytes[index] == 45, index + 6 == bytes.count, bytes[index + 3] == 58,
                  let offsetHours = number(index + 1..<index + 3), let offsetMinutes = number(index + 4..<index + 6) {
            offset = (offsetHours * 3600 + offsetMinutes * 60) * (bytes[index] == 45 ? -1 : 1)
        } else {
            return nil
        }
        let days = self.days(fromCivil: year, month, day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        return date(microseconds: seconds * 1_000_000 + micros)
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        value >= 0 ? value / divisor : (value - divisor + 1) / divisor
    }

    /// Year, month and day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPrime + 2) / 5 + 1
        let month = monthPrime < 10 ? monthPrime + 3 : monthPrime - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
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
