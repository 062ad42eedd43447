import Canon
import Foundation

/// Rows as one JSON array of objects, keyed by column, for `json_populate_recordset` and
/// `json_to_recordset`: a statement that takes its rows this way has one text whatever the
/// number of rows, so it is prepared once per connection (`PreparedSQL`) instead of parsed,
/// analysed and planned on every commit, which was a third of PostgreSQL's CPU under load when
/// each batch's row count gave a new `VALUES (…), (…)` text.
///
/// Values as PostgreSQL reads them back: null, integers and finite reals as JSON numbers (the
/// shortest text that reads back as the same double), infinities and NaN, text, and bytes in
/// `bytea`'s hex input form (`\x0a1b`) as JSON strings.
struct PostgresJSONRows {
    private(set) var bytes: [UInt8] = [UInt8(ascii: "[")]
    /// Each column's `"name":`, written once.
    private let keys: [[UInt8]]
    private var rows = 0

    init(columns: [String]) {
        keys = columns.map { column in
            var key: [UInt8] = []
            FlatJSONWriter.appendQuoted(column, to: &key, escapingSlashes: false)
            key.append(UInt8(ascii: ":"))
            return key
        }
    }

    /// Appends one row: `values` in the order of the columns.
    mutating func append(_ values: [CanonValue]) {
        precondition(values.count == keys.count, "a row of \(values.count) values for \(keys.count) columns")
        if rows > 0 { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "{"))
        rows += 1
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(contentsOf: keys[index])
            switch value {
            case .null: bytes.append(contentsOf: "null".utf8)
            case .integer(let integer): bytes.append(contentsOf: String(integer).utf8)
            case .real(let real) where real.isFinite: bytes.append(contentsOf: "\(real)".utf8)
            case .real(let real):
                // JSON has no infinity or NaN: a string, which `float8`'s input reads.
                bytes.append(contentsOf: (real.isNaN ? #""NaN""# : real < 0 ? #""-Infinity""# : #""Infinity""#).utf8)
            case .text(let text): FlatJSONWriter.appendQuoted(text, to: &bytes, escapingSlashes: false)
            case .blob(let data):
                // `"\\x…"`: the JSON string `\x…`, which `bytea` reads as hex.
                bytes.append(contentsOf: #""\\x"#.utf8)
                for byte in data {
                    bytes.append(Self.hex[Int(byte >> 4)])
                    bytes.append(Self.hex[Int(byte & 0xF)])
                }
                bytes.append(UInt8(ascii: "\""))
            }
        }
        bytes.append(UInt8(ascii: "}"))
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// The array, closed, as the text to bind.
    consuming func text() -> String {
        bytes.append(UInt8(ascii: "]"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
