import Canon
import Foundation

/// Turns the engine-neutral schema and queries of `Canon` into PostgreSQL SQL with `$n` binds.
enum PostgresSchemaSQL {
    /// The SQLSTATE an append-only table's trigger raises (class "CA", Canon's own).
    static let appendOnlyState = "CA001"
    /// The SQLSTATE `canon_require` raises when a required row is missing (`RowMutation.require`).
    static let requirementState = "CA002"

    /// Raises `requirementState` (with the table in the error's table field) unless `ok`: how
    /// the one-statement commit fails whole when a row its work required is gone.
    static let requireFunction = """
        CREATE FUNCTION canon_require(ok boolean, tbl text, what text) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
            IF ok THEN RETURN true; END IF;
            RAISE EXCEPTION 'the work required a row in % with %, and none matches now', tbl, what
                USING ERRCODE = '\(requirementState)', TABLE = tbl;
        END $$
        """

    static let outboxColumns =
        "position, stream_id, stream_version, type, schema_version, payload, actor, correlation_id, causation_id, occurred_at, committed_at, priority"

    /// The outbox and the function every append-only table's trigger calls. One statement each:
    /// the extended protocol runs one statement per query.
    static let outboxDDL: [String] = [
        """
        CREATE FUNCTION canon_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'append-only table %', TG_TABLE_NAME USING ERRCODE = '\(appendOnlyState)';
        END $$
        """,
        """
        CREATE TABLE canon_outbox (
            position BIGINT PRIMARY KEY,
            stream_id TEXT NOT NULL,
            stream_version BIGINT NOT NULL CHECK (stream_version >= 1),
            type TEXT NOT NULL,
            schema_version BIGINT NOT NULL,
            payload TEXT NOT NULL,
            actor TEXT NOT NULL,
            correlation_id TEXT,
            causation_id TEXT,
            occurred_at BIGINT NOT NULL,
            committed_at BIGINT NOT NULL,
            priority BIGINT NOT NULL CHECK (priority IN (0, 1)),
            txid xid8 NOT NULL DEFAULT pg_current_xact_id()
        )
        """,
        "CREATE UNIQUE INDEX canon_outbox_stream ON canon_outbox (stream_id, stream_version)",
    ] + appendOnlyTriggers("canon_outbox") + [
        // The outbox head: one row whose lock serializes numbering (see `PostgresCanonicalStore`).
        "CREATE TABLE canon_outbox_head (id INTEGER PRIMARY KEY CHECK (id = 1), position BIGINT NOT NULL, committed_at BIGINT NOT NULL)",
        "INSERT INTO canon_outbox_head VALUES (1, 0, 0)",
    ]

    @Sendable static func appendOnlyTriggers(_ table: String) -> [String] {
        [
            "CREATE TRIGGER \(quoted("\(table)_append_only")) BEFORE UPDATE OR DELETE ON \(quoted(table)) FOR EACH ROW EXECUTE FUNCTION canon_refuse_change()",
            "CREATE TRIGGER \(quoted("\(table)_append_only_truncate")) BEFORE TRUNCATE ON \(quoted(table)) FOR EACH STATEMENT EXECUTE FUNCTION canon_refuse_change()",
        ]
    }

    /// PostgreSQL's DDL: byte-order text, 64-bit integers for booleans and times, refusing triggers.
    static let dialect = SQLDialect(
        typeName: { type in
            switch type {
            // Byte order, as SQLite compares text and as drift checks walk keys.
            case .text: "TEXT COLLATE \"C\""
            case .integer, .boolean, .timestamp: "BIGINT"
            case .real: "DOUBLE PRECISION"
            case .blob: "BYTEA"
            }
        },
        blobLiteral: { "'\\x" + $0.map { String(format: "%02x", $0) }.joined() + "'::bytea" },
        tableSuffix: "", appendOnlyTriggers: appendOnlyTriggers)

    static func ddl(for step: SchemaMigration.Step) -> [String] { dialect.ddl(for: step) }

    /// Binds collected while a statement is written: `bind(value)` returns its `$n`.
    struct Binds {
        var values: [PostgresBind] = []

        mutating func bind(_ value: CanonValue) -> String {
            values.append(.value(value))
            return "$\(values.count)"
        }

        /// A whole column of rows (`PostgresColumns.unnest`).
        mutating func bind(_ column: PostgresColumn) -> String {
            values.append(.column(column))
            return "$\(values.count)"
        }
    }

    static func select(_ query: RowQuery, tables: [String: TableSchema]) throws -> (String, [PostgresBind]) {
        guard let schema = tables[query.table] else { throw CanonicalStoreError.unknownTable(query.table) }
        var binds = Binds()
        var conditions = try self.conditions(query.filter, in: schema, binds: &binds)
        if let anyOf = query.anyOf {
            _ = try checked([anyOf.column], in: schema)
            conditions.append(anyOf.values.isEmpty
                ? "FALSE"
                : "\(quoted(anyOf.column)) IN (\(anyOf.values.map { binds.bind($0) }.joined(separator: ", ")))")
        }
        if let after = query.after {
            _ = try checked([after.column], in: schema)
            conditions.append("\(quoted(after.column)) > \(binds.bind(after.value))")
        }
        var selected = "*"
        if let columns = query.columns {
            selected = try checked(columns, in: schema).map(quoted).joined(separator: ", ")
        }
        var sql = "SELECT \(selected) FROM \(quoted(schema.name))"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        if !query.order.isEmpty {
            _ = try checked(query.order.map(\.column), in: schema)
            sql += " ORDER BY " + query.order.map { "\(quoted($0.column)) \($0.ascending ? "ASC" : "DESC")" }.joined(separator: ", ")
        }
        if let limit = query.limit { sql += " LIMIT \(max(limit, 0))" }
        // Bound, so that one prepared statement serves every offset.
        if let offset = query.offset { sql += " OFFSET \(binds.bind(.integer(Int64(max(offset, 0)))))" }
        return (sql, binds.values)
    }

    static func count(table: String, filter: Row, tables: [String: TableSchema]) throws -> (String, [PostgresBind]) {
        guard let schema = tables[table] else { throw CanonicalStoreError.unknownTable(table) }
        var binds = Binds()
        let conditions = try self.conditions(filter, in: schema, binds: &binds)
        return ("SELECT COUNT(*) FROM \(quoted(schema.name))\(conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))", binds.values)
    }

    static func conditions(_ filter: Row, in schema: TableSchema, binds: inout Binds) throws -> [String] {
        try checked(filter.columns, in: schema).map { column in
            filter[column].isNull ? "\(quoted(column)) IS NULL" : "\(quoted(column)) = \(binds.bind(filter[column]))"
        }
    }

    /// The columns, after checking each exists (`TableSchema.checked`).
    static func checked(_ columns: [String], in schema: TableSchema) throws -> [String] { try schema.checked(columns) }
}

func quoted(_ identifier: String) -> String { SQLDialect.quoted(identifier) }
