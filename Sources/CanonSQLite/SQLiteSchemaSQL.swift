import Canon
import Foundation
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

    /// SQLite's DDL: `STRICT` tables, integers for booleans and times, abort triggers.
    static let dialect = SQLDialect(
        typeName: { type in
            switch type {
            case .text: "TEXT"
            case .integer, .boolean, .timestamp: "INTEGER"
            case .real: "REAL"
            case .blob: "BLOB"
            }
        },
        blobLiteral: { "X'" + $0.map { String(format: "%02X", $0) }.joined() + "'" },
        tableSuffix: " STRICT", appendOnlyTriggers: appendOnlyTriggers)

    static func ddl(for step: SchemaMigration.Step) -> [String] { dialect.ddl(for: step) }

    @Sendable static func appendOnlyTriggers(_ table: String) -> [String] {
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
        // SQLite takes an offset only after a limit; -1 is none.
        // Bound, so that one cached statement serves every offset.
        if let offset = query.offset {
            sql += "\(query.limit == nil ? " LIMIT -1" : "") OFFSET ?"
            arguments.append(Int64(max(offset, 0)).databaseValue)
        }
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

    /// The columns, after checking each exists (`TableSchema.checked`).
    static func checked(_ columns: [String], in schema: TableSchema) throws -> [String] { try schema.checked(columns) }
}
