import Canon
import GRDB

/// Turns the engine-neutral schema and queries of `Canon` into SQLite SQL.
enum SQLiteSchemaSQL {
    static let outboxDDL = """
        CREATE TABLE canon_outbox (
            position INTEGER PRIMARY KEY,
            stream_id TEXT NOT NULL,
            stream_version INTEGER NOT NULL CHECK (stream_version >= 1),
            type TEXT NOT NULL,
            schema_version INTEGER NOT NULL,
            payload TEXT NOT NULL,
            actor TEXT NOT NULL,
            correlation_id TEXT,
            causation_id TEXT,
            occurred_at INTEGER NOT NULL,
            committed_at INTEGER NOT NULL,
            priority INTEGER NOT NULL
        ) STRICT;
        CREATE UNIQUE INDEX canon_outbox_stream ON canon_outbox (stream_id, stream_version);
        \(appendOnlyTriggers("canon_outbox").joined(separator: "\n"))
        """

    static func ddl(for step: SchemaMigration.Step) -> [String] {
        switch step {
        case .createTable(let table):
            var parts = table.columns.map { column in
                "\(quoted(column.name)) \(type(column.type))\(column.nullable ? "" : " NOT NULL")\(check(column))"
            }
            parts.append("PRIMARY KEY (\(table.primaryKey.map(quoted).joined(separator: ", ")))")
            for unique in table.unique {
                parts.append("UNIQUE (\(unique.map(quoted).joined(separator: ", ")))")
            }
            var statements = ["CREATE TABLE \(quoted(table.name)) (\n    \(parts.joined(separator: ",\n    "))\n) STRICT"]
            for index in table.indexes {
                statements.append(createIndex(table: table.name, index: index))
            }
            if table.appendOnly { statements += appendOnlyTriggers(table.name) }
            return statements
        case .addColumn(let table, let column, let defaultValue):
            return ["ALTER TABLE \(quoted(table)) ADD COLUMN \(quoted(column.name)) \(type(column.type))\(column.nullable ? "" : " NOT NULL") DEFAULT \(literal(defaultValue))"]
        case .createIndex(let table, let index):
            return [createIndex(table: table, index: index)]
        }
    }

    static func appendOnlyTriggers(_ table: String) -> [String] {
        ["UPDATE", "DELETE"].map { operation in
            """
            CREATE TRIGGER \(quoted("\(table)_append_only_\(operation.lowercased())")) BEFORE \(operation) ON \(quoted(table))
            BEGIN SELECT RAISE(ABORT, 'append-only table \(table)'); END;
            """
        }
    }

    static func select(_ query: RowQuery, tables: [String: TableSchema]) throws -> (String, StatementArguments) {
        guard let schema = tables[query.table] else { throw CanonicalStoreError.unknownTable(query.table) }
        var (whereSQL, arguments) = try whereClause(query.filter, in: schema)
        if let anyOf = query.anyOf {
            _ = try checked([anyOf.column], in: schema)
            let membership = anyOf.values.isEmpty
                ? "0"
                : "\(quoted(anyOf.column)) IN (\(Array(repeating: "?", count: anyOf.values.count).joined(separator: ", ")))"
            whereSQL = whereSQL.isEmpty ? " WHERE \(membership)" : whereSQL + " AND \(membership)"
            arguments += anyOf.values.map { $0.databaseValue }
        }
        if let after = query.after {
            _ = try checked([after.column], in: schema)
            let condition = "\(quoted(after.column)) > ?"
            whereSQL = whereSQL.isEmpty ? " WHERE \(condition)" : whereSQL + " AND \(condition)"
            arguments.append(after.value.databaseValue)
        }
        var selected = "*"
        if let columns = query.columns {
            selected = try checked(columns, in: schema).map(quoted).joined(separator: ", ")
        }
        var sql = "SELECT \(selected) FROM \(quoted(schema.name))\(whereSQL)"
        if !query.order.isEmpty {
            _ = try checked(query.order.map(\.column), in: schema)
            sql += " ORDER BY " + query.order.map { "\(quoted($0.column)) \($0.ascending ? "ASC" : "DESC")" }.joined(separator: ", ")
        }
        if let limit = query.limit { sql += " LIMIT \(max(limit, 0))" }
        return (sql, StatementArguments(arguments))
    }

    static func count(table: String, filter: Canon.Row, tables: [String: TableSchema]) throws -> (String, StatementArguments) {
        guard let schema = tables[table] else { throw CanonicalStoreError.unknownTable(table) }
        let (whereSQL, arguments) = try whereClause(filter, in: schema)
        return ("SELECT COUNT(*) FROM \(quoted(schema.name))\(whereSQL)", StatementArguments(arguments))
    }

    static func whereClause(_ filter: Canon.Row, in schema: TableSchema) throws -> (String, [DatabaseValue]) {
        let columns = try checked(filter.columns, in: schema)
        guard !columns.isEmpty else { return ("", []) }
        var conditions: [String] = []
        var arguments: [DatabaseValue] = []
        for column in columns {
            if filter[column].isNull {
                conditions.append("\(quoted(column)) IS NULL")
            } else {
                conditions.append("\(quoted(column)) = ?")
                arguments.append(filter[column].databaseValue)
            }
        }
        return (" WHERE " + conditions.joined(separator: " AND "), arguments)
    }

    /// The columns, after checking each exists: names reach SQL only from the declared schema.
    static func checked(_ columns: [String], in schema: TableSchema) throws -> [String] {
        for column in columns where schema.column(named: column) == nil {
            throw CanonicalStoreError.constraintViolation("\(schema.name) has no column \(column)")
        }
        return columns
    }

    private static func createIndex(table: String, index: TableSchema.Index) -> String {
        "CREATE INDEX \(quoted(index.name)) ON \(quoted(table)) (\(index.columns.map(quoted).joined(separator: ", ")))"
    }

    private static func type(_ type: TableSchema.ColumnType) -> String {
        switch type {
        case .text: "TEXT"
        case .integer, .boolean, .timestamp: "INTEGER"
        case .real: "REAL"
        case .blob: "BLOB"
        }
    }

    private static func check(_ column: TableSchema.Column) -> String {
        column.type == .boolean ? " CHECK (\(quoted(column.name)) IN (0, 1))" : ""
    }

    private static func literal(_ value: CanonValue) -> String {
        switch value {
        case .null: "NULL"
        case .integer(let value): String(value)
        case .real(let value): String(value)
        case .text(let value): "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
        case .blob(let value): "X'" + value.map { String(format: "%02X", $0) }.joined() + "'"
        }
    }
}
