import Canon
import Foundation
import NIOCore
import PostgresNIO

/// Rows bound column by column, each column one PostgreSQL array in binary form, for
/// `INSERT … SELECT … FROM unnest($1::text[], $2::bigint[], …)`: a statement that takes its rows
/// this way has one text whatever the number of rows, so it is prepared once per connection
/// (`PreparedSQL`) instead of parsed, analysed and planned on every commit, which was a third
/// of PostgreSQL's CPU under load when each batch's row count gave a new `VALUES (…), (…)`
/// text. Binary arrays also spare both sides the text of the values: no escaping here, no
/// parsing there (rows sent as one JSON text cost PostgreSQL a tenth of its CPU in parsing).
struct PostgresColumns {
    private var columns: [PostgresColumn]

    init(_ kinds: [PostgresColumn.Kind]) {
        columns = kinds.map(PostgresColumn.init)
    }

    /// The columns of `checked` (names a table has) as that table's schema types them.
    init(_ checked: [String], of schema: TableSchema) {
        self.init(checked.map { name in PostgresColumn.Kind(schema.column(named: name)?.type ?? .text) })
    }

    /// Appends one row: `values` in the order of the columns.
    ///
    /// - Throws: `CanonicalStoreError.invalidValue` for a value of another type than its column's.
    mutating func append(_ values: [CanonValue]) throws(CanonicalStoreError) {
        precondition(values.count == columns.count, "a row of \(values.count) values for \(columns.count) columns")
        for index in columns.indices { try columns[index].append(values[index]) }
    }

    /// `unnest($a::text[], $b::bigint[], …)`, each column bound in `binds`: rows of the columns
    /// in order, to select from (`AS name(c0, c1, …)` names them).
    func unnest(binding binds: inout PostgresSchemaSQL.Binds) -> String {
        "unnest(" + columns.map { "\(binds.bind($0))::\($0.kind.sqlType)" }.joined(separator: ", ") + ")"
    }
}

/// One column of rows as a one-dimensional PostgreSQL array, encoded in the binary format
/// (`array_recv`): dimensions, a null flag, the element type, then each element as its length
/// (-1 for NULL) and its binary value.
struct PostgresColumn: PostgresDynamicTypeEncodable, Sendable {
    enum Kind: Sendable {
        case text, bigint, double, bytes

        init(_ type: TableSchema.ColumnType) {
            switch type {
            case .text: self = .text
            case .integer, .boolean, .timestamp: self = .bigint
            case .real: self = .double
            case .blob: self = .bytes
            }
        }

        var sqlType: String {
            switch self {
            case .text: "text[]"
            case .bigint: "bigint[]"
            case .double: "float8[]"
            case .bytes: "bytea[]"
            }
        }
    }

    let kind: Kind
    private(set) var count: Int32 = 0
    private var hasNull = false
    private var elements = ByteBuffer()

    init(_ kind: Kind) { self.kind = kind }

    mutating func append(_ value: CanonValue) throws(CanonicalStoreError) {
        switch (kind, value) {
        case (_, .null):
            hasNull = true
            elements.writeInteger(Int32(-1))
        case (.text, .text(let text)):
            elements.writeInteger(Int32(text.utf8.count))
            elements.writeString(text)
        case (.bigint, .integer(let integer)):
            elements.writeInteger(Int32(8))
            elements.writeInteger(integer)
        case (.double, .real(let real)):
            elements.writeInteger(Int32(8))
            elements.writeInteger(real.bitPattern)
        // The conversions that lose nothing, as PostgreSQL's assignment casts (and SQLite's
        // strict tables) make them: a whole number into a real or text column, a real with no
        // fraction into an integer column.
        case (.double, .integer(let integer)):
            elements.writeInteger(Int32(8))
            elements.writeInteger(Double(integer).bitPattern)
        case (.text, .integer(let integer)):
            let text = String(integer)
            elements.writeInteger(Int32(text.utf8.count))
            elements.writeString(text)
        case (.bigint, .real(let real)) where real.rounded() == real && real >= -0x1p63 && real < 0x1p63:
            elements.writeInteger(Int32(8))
            elements.writeInteger(Int64(real))
        case (.bytes, .blob(let data)):
            elements.writeInteger(Int32(data.count))
            elements.writeBytes(data)
        default:
            throw CanonicalStoreError.invalidValue("\(value) cannot be stored in a column of \(kind.sqlType.dropLast(2))")
        }
        count += 1
    }

    var psqlType: PostgresDataType {
        switch kind {
        case .text: .textArray
        case .bigint: .int8Array
        case .double: .float8Array
        case .bytes: .byteaArray
        }
    }

    var psqlFormat: PostgresFormat { .binary }

    private var elementType: PostgresDataType {
        switch kind {
        case .text: .text
        case .bigint: .int8
        case .double: .float8
        case .bytes: .bytea
        }
    }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        buffer.writeInteger(Int32(count == 0 ? 0 : 1))  // dimensions (none for an empty array)
        buffer.writeInteger(Int32(hasNull ? 1 : 0))
        buffer.writeInteger(elementType.rawValue)
        if count > 0 {
            buffer.writeInteger(count)  // the one dimension's length
            buffer.writeInteger(Int32(1))  // and its lower bound
        }
        buffer.writeImmutableBuffer(elements)
    }
}

/// A value bound to a statement: one Canon value, or a whole column of rows.
enum PostgresBind: Sendable {
    case value(CanonValue)
    case column(PostgresColumn)
}
