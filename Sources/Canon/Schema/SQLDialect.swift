import Foundation

/// What one SQL engine calls things: enough to turn the engine-neutral `SchemaMigration` steps
/// into its DDL in one place, so engines differ only where their SQL does.
public struct SQLDialect: Sendable {
    /// The column type of each `TableSchema.ColumnType`.
    public var typeName: @Sendable (TableSchema.ColumnType) -> String
    /// A blob literal.
    public var blobLiteral: @Sendable (Data) -> String
    /// Appended after a table's closing parenthesis (SQLite: ` STRICT`).
    public var tableSuffix: String
    /// The statements that make `table` refuse UPDATE and DELETE in the database itself.
    public var appendOnlyTriggers: @Sendable (String) -> [String]

    public init(
        typeName: @escaping @Sendable (TableSchema.ColumnType) -> String, blobLiteral: @escaping @Sendable (Data) -> String,
        tableSuffix: String, appendOnlyTriggers: @escaping @Sendable (String) -> [String]
    ) {
        self.typeName = typeName
        self.blobLiteral = blobLiteral
        self.tableSuffix = tableSuffix
        self.appendOnlyTriggers = appendOnlyTriggers
    }

    /// A quoted identifier (any quote inside doubled).
    public static func quoted(_ identifier: String) -> String {
        if identifier.utf8.contains(UInt8(ascii: "\"")) {
            return "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return "\"" + identifier + "\""
    }

    /// The statements of one migration step, in order.
    public func ddl(for step: SchemaMigration.Step) -> [String] {
        let quoted = Self.quoted
        switch step {
        case .createTable(let table):
            var parts = table.columns.map { column in
                "\(quoted(column.name)) \(typeName(column.type))\(column.nullable ? "" : " NOT NULL")\(check(column))"
            }
            parts.append("PRIMARY KEY (\(table.primaryKey.map(quoted).joined(separator: ", ")))")
            for unique in table.unique {
                parts.append("UNIQUE (\(unique.map(quoted).joined(separator: ", ")))")
            }
            var statements = ["CREATE TABLE \(quoted(table.name)) (\n    \(parts.joined(separator: ",\n    "))\n)\(tableSuffix)"]
            for index in table.indexes {
                statements.append(createIndex(table: table.name, index: index))
            }
            if table.appendOnly { statements += appendOnlyTriggers(table.name) }
            return statements
        case .addColumn(let table, let column, let defaultValue):
            return ["ALTER TABLE \(quoted(table)) ADD COLUMN \(quoted(column.name)) \(typeName(column.type))\(column.nullable ? "" : " NOT NULL") DEFAULT \(literal(defaultValue))"]
        case .createIndex(let table, let index):
            return [createIndex(table: table, index: index)]
        }
    }

    private func createIndex(table: String, index: TableSchema.Index) -> String {
        "CREATE INDEX \(Self.quoted(index.name)) ON \(Self.quoted(table)) (\(index.columns.map(Self.quoted).joined(separator: ", ")))"
    }

    /// Booleans are integers 0 or 1 in every engine.
    private func check(_ column: TableSchema.Column) -> String {
        column.type == .boolean ? " CHECK (\(Self.quoted(column.name)) IN (0, 1))" : ""
    }

    private func literal(_ value: CanonValue) -> String {
        switch value {
        case .null: "NULL"
        case .integer(let value): String(value)
        case .real(let value): String(value)
        case .text(let value): "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
        case .blob(let value): blobLiteral(value)
        }
    }
}
