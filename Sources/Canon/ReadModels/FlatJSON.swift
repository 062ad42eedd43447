import Foundation

/// A writer and a reader for flat JSON objects (strings, integers, booleans, null and arrays of
/// strings), for documents a projection writes on every apply.
///
/// The writer produces exactly the bytes `JSONEncoder` with `.sortedKeys` produces for the same
/// values (the caller writes keys in sorted order): `"`, `\` and `/` escaped (`/` not, with
/// `escapingSlashes: false`, as `.withoutEscapingSlashes`), `\b \t \n \f \r` short, other
/// control characters as `\u00xx`, everything else as UTF-8. So documents written before and
/// after it compare equal, byte for byte.
public struct FlatJSONWriter {
    public private(set) var bytes: [UInt8] = []
    private var first = true
    private let escapingSlashes: Bool

    public init(capacity: Int = 512, escapingSlashes: Bool = true) {
        self.escapingSlashes = escapingSlashes
        bytes.reserveCapacity(capacity)
        bytes.append(UInt8(ascii: "{"))
    }

    private mutating func key(_ name: StaticString) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func string(_ name: StaticString, _ value: String) {
        key(name)
        append(value)
    }

    /// Leaves the key out when `value` is nil (as synthesized `Encodable` does).
    public mutating func string(_ name: StaticString, _ value: String?) {
        guard let value else { return }
        string(name, value)
    }

    public mutating func integer(_ name: StaticString, _ value: Int64) {
        key(name)
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = 20
            repeat {
                start -= 1
                digits[start] = UInt8(truncatingIfNeeded: 0x30 + magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    public mutating func integer(_ name: StaticString, _ value: Int?) {
        guard let value else { return }
        integer(name, Int64(value))
    }

    public mutating func bool(_ name: StaticString, _ value: Bool) {
        key(name)
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    public mutating func strings(_ name: StaticString, _ values: [String]) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            append(value)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func append(_ value: String) { Self.appendQuoted(value, to: &bytes, escapingSlashes: escapingSlashes) }

    /// Appends `value` to `bytes` as a JSON string, escaped as `JSONEncoder` escapes it (`/` as
    /// `\/` unless `escapingSlashes` is false, as with `.withoutEscapingSlashes`).
    public static func appendQuoted(_ value: String, to bytes: inout [UInt8], escapingSlashes: Bool = true) {
        /// Whether `byte` must be escaped.
        func escaped(_ byte: UInt8) -> Bool {
            byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || (escapingSlashes && byte == UInt8(ascii: "/"))
        }
        bytes.append(UInt8(ascii: "\""))
        // Most text needs no escape: copied whole.
        let copied = value.utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
            guard !utf8.contains(where: escaped) else { return false }
            bytes.append(contentsOf: utf8)
            return true
        }
        if copied == true {
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "/") where escapingSlashes: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "/")])
            case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0..<0x20:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// The object, closed.
    public consuming func finish() -> Data {
        bytes.append(UInt8(ascii: "}"))
        return Data(bytes)
    }
}

/// A reader for the flat objects `FlatJSONWriter` (or `JSONEncoder`) writes. Anything else (a
/// nested object, a number with a fraction) is refused with nil, and the caller falls back to
/// `JSONDecoder`.
public enum FlatJSON {
    public enum Value: Hashable, Sendable {
        case string(String)
        case integer(Int64)
        case bool(Bool)
        case null
        case strings([String])
    }

    /// Whether `bytes` are UTF-8 with no control character (below U+0020) inside a string:
    /// what JSON requires and the reader does not check on its own.
    public static func isStrictText(_ bytes: [UInt8]) -> Bool {
        guard String(validating: bytes, as: UTF8.self) != nil else { return false }
        var inString = false
        var escaped = false
        for byte in bytes {
            if escaped {
                escaped = false
            } else if inString {
                if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false } else if byte < 0x20 { return false }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            }
        }
        return true
    }

    public static func parse(_ data: Data) -> [String: Value]? {
        guard let fields = fields(data) else { return nil }
        return Dictionary(fields, uniquingKeysWith: { _, last in last })
    }

    /// The object's fields in the order they appear (a later duplicate key wins on lookup, as
    /// in `parse`): no hashing, for readers that look a few keys up once.
    public static func fields(_ data: Data) -> [(key: String, value: Value)]? {
        data.withUnsafeBytes { raw -> [(key: String, value: Value)]? in
            var reader = Reader(bytes: raw.bindMemory(to: UInt8.self))
            return reader.object()
        }
    }

    /// Where one field's key (between its quotes) and value start.
    struct Entry {
        var keyStart: Int32
        var keyEnd: Int32
        var valueStart: Int32
        /// The key is plain ASCII (no escape, no byte above 127), so it is compared byte for
        /// byte; any other key is compared decoded, as Strings (`==` takes canonically
        /// equivalent spellings as equal, as `JSONDecoder` does).
        var plainKey: Bool
    }

    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        /// The object's fields as where their keys and values start, each value checked as
        /// `value()` checks it but not built (`FlatObject` decodes the ones asked for).
        mutating func entries() -> [Entry]? {
            guard expect(UInt8(ascii: "{")) else { return nil }
            var entries: [Entry] = []
            entries.reserveCapacity(16)
            if expect(UInt8(ascii: "}")) { return entries }
            repeat {
                skipSpace()
                let keyStart = index + 1
                guard let escaped = skipString() else { return nil }
                let keyEnd = index - 1
                let plain = !escaped && !bytes[keyStart..<keyEnd].contains { $0 >= 0x80 }
                guard expect(UInt8(ascii: ":")) else { return nil }
                skipSpace()
                let valueStart = index
                guard skipValue() else { return nil }
                entries.append(Entry(keyStart: Int32(keyStart), keyEnd: Int32(keyEnd), valueStart: Int32(valueStart), plainKey: plain))
            } while expect(UInt8(ascii: ","))
            guard expect(UInt8(ascii: "}")) else { return nil }
            skipSpace()
            return index == bytes.count ? entries : nil
        }

        /// Passes one value `value()` would read; false where it would answer nil.
        mutating func skipValue() -> Bool {
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: "\""): return skipString() != nil
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            case UInt8(ascii: "["):
                index += 1
                if expect(UInt8(ascii: "]")) { return true }
                repeat {
                    skipSpace()
                    guard skipString() != nil else { return false }
                } while expect(UInt8(ascii: ","))
                return expect(UInt8(ascii: "]"))
            default:
                return integer() != nil
            }
        }

        /// Passes one string `string()` would read, at the opening quote: whether it holds an
        /// escape, nil where `string()` would answer nil. Plain text is passed without decoding.
        mutating func skipString() -> Bool? {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
            let end = plainEnd(from: index + 1)
            guard end < bytes.count else { return nil }
            if bytes[end] == UInt8(ascii: "\"") {
                index = end + 1
                return false
            }
            // Escapes are rare: check this string the way `string()` reads it.
            return string() == nil ? nil : true
        }

        /// Where the text from `start` stops being plain: at the first quote or backslash, or at
        /// the end of the bytes.
        func plainEnd(from start: Int) -> Int {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\") { end += 1 }
            return end
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func expect(_ byte: UInt8) -> Bool {
            skipSpace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func object() -> [(key: String, value: Value)]? {
            guard expect(UInt8(ascii: "{")) else { return nil }
            var values: [(key: String, value: Value)] = []
            values.reserveCapacity(16)
            if expect(UInt8(ascii: "}")) { return values }
            repeat {
                guard let key = string(), expect(UInt8(ascii: ":")), let value = value() else { return nil }
                values.append((key, value))
            } while expect(UInt8(ascii: ","))
            guard expect(UInt8(ascii: "}")) else { return nil }
            skipSpace()
            return index == bytes.count ? values : nil
        }

        mutating func value() -> Value? {
            skipSpace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "\""): return string().map(Value.string)
            case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
            case UInt8(ascii: "n"): return literal("null") ? .null : nil
            case UInt8(ascii: "["):
                index += 1
                var items: [String] = []
                if expect(UInt8(ascii: "]")) { return .strings(items) }
                repeat {
                    guard let item = string() else { return nil }
                    items.append(item)
                } while expect(UInt8(ascii: ","))
                return expect(UInt8(ascii: "]")) ? .strings(items) : nil
            default:
                return integer().map(Value.integer)
            }
        }

        mutating func literal(_ word: StaticString) -> Bool {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { return false }
            for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
            index += count
            return true
        }

        mutating func integer() -> Int64? {
            let start = index
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
            let digits = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            guard index > start, index == bytes.count || ![UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) else { return nil }
            // JSON has no leading zeros ("01").
            guard index - digits < 2 || bytes[digits] != UInt8(ascii: "0") else { return nil }
            return Int64(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
        }

        mutating func string() -> String? {
            guard expect(UInt8(ascii: "\"")) else { return nil }
            // Text without an escape (nearly all) becomes a String straight from the bytes.
            let end = plainEnd(from: index)
            if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
                defer { index = end + 1 }
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[index..<end]), as: UTF8.self)
            }
            // The plain part is copied as it is; the loop below starts at the first escape.
            var output: [UInt8] = []
            var run = index
            index = end
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<index]))
                    index += 1
                    return String(decoding: output, as: UTF8.self)
                }
                guard byte == UInt8(ascii: "\\") else {
                    index += 1
                    continue
                }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<index]))
                index += 1
                guard index < bytes.count else { return nil }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escaped)
                case UInt8(ascii: "b"): output.append(0x08)
                case UInt8(ascii: "f"): output.append(0x0C)
                case UInt8(ascii: "n"): output.append(0x0A)
                case UInt8(ascii: "r"): output.append(0x0D)
                case UInt8(ascii: "t"): output.append(0x09)
                case UInt8(ascii: "u"):
                    guard var scalar = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A surrogate pair.
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else { return nil }
                        index += 2
                        guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { return nil }
                    output.append(contentsOf: String(Character(unicode)).utf8)
                default:
                    return nil
                }
                run = index
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: return nil
                }
                value = value * 16 + digit
                index += 1
            }
            return value
        }
    }
}

/// A flat JSON object, read field by field with the types `JSONDecoder` would accept.
///
/// Checked whole when made, but each value is decoded only when it is asked for, and keys are
/// compared where they lie in the payload: building a String for every key and value up front,
/// then comparing Strings on every lookup, cost more than the rest of a fold.
public struct FlatObject {
    /// The object's bytes, copied once out of the `Data`: every lookup reads them, and each
    /// `Data.withUnsafeBytes` costs a dynamic exclusivity check of its storage (a case's sixteen
    /// fields took sixteen).
    private let bytes: [UInt8]
    /// Where each field's key and value start, in order.
    private let entries: [FlatJSON.Entry]

    /// Nil unless `data` is one flat object (the same objects `FlatJSON.fields` reads).
    ///
    /// - Parameter strict: also nil for text `JSONDecoder` refuses that the reader would
    ///   otherwise take: bytes that are not UTF-8, a control character inside a string. (What
    ///   the flat writer and `JSONEncoder` wrote has neither; a client's body may.)
    public init?(_ data: Data, strict: Bool = false) {
        let bytes = [UInt8](data)
        if strict, !FlatJSON.isStrictText(bytes) { return nil }
        guard bytes.count < Int(Int32.max), let entries = bytes.withUnsafeBufferPointer({ buffer -> [FlatJSON.Entry]? in
            var scanner = FlatJSON.Reader(bytes: buffer)
            return scanner.entries()
        }) else { return nil }
        self.bytes = bytes
        self.entries = entries
    }

    /// The value of `key`, nil when absent; lookups scan from the end, so a repeated key's last
    /// value wins.
    public subscript(key: String) -> FlatJSON.Value? {
        var key = key
        return key.withUTF8 { wanted in
            let plainWanted = !wanted.contains { $0 >= 0x80 }
            return self.bytes.withUnsafeBufferPointer { bytes -> FlatJSON.Value? in
                for entry in entries.reversed() {
                    let start = Int(entry.keyStart), end = Int(entry.keyEnd)
                    if entry.plainKey && plainWanted {
                        guard end - start == wanted.count,
                              wanted.isEmpty || memcmp(bytes.baseAddress! + start, wanted.baseAddress!, wanted.count) == 0
                        else { continue }
                    } else {
                        var reader = FlatJSON.Reader(bytes: bytes, index: start - 1)
                        guard let decoded = reader.string(), decoded == String(decoding: wanted, as: UTF8.self) else { continue }
                    }
                    var reader = FlatJSON.Reader(bytes: bytes, index: Int(entry.valueStart))
                    return reader.value()
                }
                return nil
            }
        }
    }

    /// How many fields the object has (a repeated key counts each time).
    public var count: Int { entries.count }

    /// Whether no key appears twice. (`JSONDecoder` takes a repeated key's first value, lookups
    /// here its last: a reader of objects it did not write refuses them, and the decoder decides.)
    /// Keys with escapes or non-ASCII bytes count as repeated, conservatively, and so does any
    /// object of more than 32 keys (the check compares every pair).
    public var keysAreUnique: Bool {
        guard entries.count <= 32 else { return false }
        return bytes.withUnsafeBufferPointer { bytes in
            for (index, entry) in entries.enumerated() {
                guard entry.plainKey else { return false }
                let key = bytes[Int(entry.keyStart)..<Int(entry.keyEnd)]
                for other in entries[(index + 1)...] where bytes[Int(other.keyStart)..<Int(other.keyEnd)].elementsEqual(key) { return false }
            }
            return true
        }
    }

    public func string(_ key: String) -> String? {
        if case .string(let value)? = self[key] { value } else { nil }
    }

    public func integer(_ key: String) -> Int64? {
        if case .integer(let value)? = self[key] { value } else { nil }
    }

    public func int(_ key: String) -> Int? { integer(key).flatMap { Int(exactly: $0) } }

    public func bool(_ key: String) -> Bool? {
        if case .bool(let value)? = self[key] { value } else { nil }
    }

    /// An RFC 3339 date (`Timestamp.parseISO8601`, as `Timestamp.decodingStrategy`).
    public func date(_ key: String) -> Date? { string(key).flatMap(Timestamp.parseISO8601) }

    public func strings(_ key: String) -> [String]? {
        if case .strings(let value)? = self[key] { value } else { nil }
    }

    /// An optional field: `.some(nil)` when absent or null, nil when present with another type.
    public func optional<T>(_ key: String, _ read: (String) -> T?) -> T?? {
        switch self[key] {
        case nil, .null?: return .some(nil)
        default: return read(key).map { .some($0) } ?? nil
        }
    }

    /// A `RawRepresentable` string value (an enum).
    public func value<T: RawRepresentable>(_ key: String, as type: T.Type = T.self) -> T? where T.RawValue == String {
        string(key).flatMap(T.init(rawValue:))
    }
}

/// A payload the flat writer can write: `encode(into:)` writes its fields in sorted key order,
/// exactly as its `Encodable` conformance through `JSONEncoder` with `.sortedKeys` and
/// `.withoutEscapingSlashes` would (`PendingEvent` encodes event payloads that way; tests
/// compare the two). Commands encode one on every write.
public protocol FlatEncodable: Encodable {
    func encode(into writer: inout FlatJSONWriter)
}

/// A payload the flat reader can build: `init(flat:)` answers nil for anything it does not
/// expect, and the caller falls back to `JSONDecoder`. It must accept exactly what the type's
/// `Decodable` conformance accepts for flat objects (tests compare the two).
public protocol FlatDecodable: Decodable {
    init?(flat object: FlatObject)
}
