import Canon
import Foundation
import GRDB
import Synchronization

/// `OutboxTransaction` on an open GRDB write transaction. Valid only inside the write closure.
struct SQLiteOutboxTransaction: OutboxTransaction {
    let db: Database
    let tables: [String: TableSchema]
    let sqlCache: SQLTextCache

    static func streamVersion(_ db: Database, _ stream: StreamID) throws -> Int64? {
        try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT MAX(stream_version) FROM canon_outbox WHERE stream_id = ?"),
            arguments: [stream.rawValue])
    }

    mutating func currentVersion(of stream: StreamID) throws -> Int64? {
        try Self.streamVersion(db, stream)
    }

    mutating func setVersion(_ version: Int64, of stream: StreamID) throws {
        // The version lives in the outbox's unique (stream_id, stream_version) index.
    }

    mutating func lastCommitted() throws -> (position: OutboxPosition, committedAt: Date)? {
        guard let row = try GRDB.Row.fetchOne(
            db.cachedStatement(sql: "SELECT position, committed_at FROM canon_outbox ORDER BY position DESC LIMIT 1"))
        else { return nil }
        return (OutboxPosition(row["position"]), Timestamp.date(microseconds: row["committed_at"]))
    }

    mutating func append(_ event: EventEnvelope) throws {
        try db.cachedStatement(sql: """
            INSERT INTO canon_outbox (position, stream_id, stream_version, type, schema_version, payload, actor,
                correlation_id, causation_id, occurred_at, committed_at, priority)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [
                event.position.rawValue, event.streamID.rawValue, event.streamVersion, event.type, event.schemaVersion,
                String(decoding: event.payload, as: UTF8.self), event.actor, event.correlationID, event.causationID,
                Timestamp.microseconds(event.occurredAt), Timestamp.microseconds(event.committedAt), event.priority ? 1 : 0,
            ])
    }

    mutating func apply(_ mutation: RowMutation) throws {
        guard let schema = tables[mutation.table] else { throw CanonicalStoreError.unknownTable(mutation.table) }
        switch mutation {
        case .insert(_, let row):
            let columns = try SQLiteSchemaSQL.checked(row.columns, in: schema)
            let sql = sqlCache.sql(0, schema.name, columns) {
                "INSERT INTO \(quoted(schema.name)) (\(columns.map(quoted).joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))"
            }
            try db.cachedStatement(sql: sql).execute(arguments: StatementArguments(columns.map { row[$0].databaseValue }))
        case .update(_, let key, let values):
            guard !schema.appendOnly else { throw CanonicalStoreError.appendOnlyViolation(table: schema.name) }
            let columns = try SQLiteSchemaSQL.checked(values.columns, in: schema)
            let (whereSQL, whereArguments) = try SQLiteSchemaSQL.whereClause(key, in: schema)
            let sql = sqlCache.sql(1, schema.name, columns, key.columns) {
                "UPDATE \(quoted(schema.name)) SET \(columns.map { "\(quoted($0)) = ?" }.joined(separator: ", "))\(whereSQL)"
            }
            try db.cachedStatement(sql: sql).execute(arguments: StatementArguments(columns.map { values[$0].databaseValue } + whereArguments))
            if db.changesCount == 0 { throw CanonicalStoreError.rowNotFound(table: schema.name, key: key) }
        case .delete(_, let key):
            guard !schema.appendOnly else { throw CanonicalStoreError.appendOnlyViolation(table: schema.name) }
            let (whereSQL, whereArguments) = try SQLiteSchemaSQL.whereClause(key, in: schema)
            try db.cachedStatement(sql: "DELETE FROM \(quoted(schema.name))\(whereSQL)").execute(arguments: StatementArguments(whereArguments))
        case .require(_, let row):
            // Inside the write transaction: no other writer can change the row before the commit.
            let (whereSQL, whereArguments) = try SQLiteSchemaSQL.whereClause(row, in: schema)
            let sql = sqlCache.sql(2, schema.name, row.columns.filter { !row[$0].isNull }, row.columns.filter { row[$0].isNull }) {
                "SELECT EXISTS (SELECT 1 FROM \(quoted(schema.name))\(whereSQL))"
            }
            guard try Bool.fetchOne(db.cachedStatement(sql: sql), arguments: StatementArguments(whereArguments)) == true else {
                throw CanonicalStoreError.requirementFailed(table: schema.name, row: row)
            }
        }
    }
}

func quoted(_ identifier: String) -> String { SQLDialect.quoted(identifier) }

/// Generated SQL, kept per table and column list, so a commit does not rebuild its statements'
/// text (the statements themselves are cached by GRDB).
final class SQLTextCache: Sendable {
    private struct Key: Hashable {
        var kind: UInt8
        var table: String
        var columns: [String]
        var keyColumns: [String]
    }

    private let entries = Mutex<[Key: String]>([:])

    func sql(_ kind: UInt8, _ table: String, _ columns: [String], _ keyColumns: [String] = [], make: () -> String) -> String {
        let key = Key(kind: kind, table: table, columns: columns, keyColumns: keyColumns)
        if let sql = entries.withLock({ $0[key] }) { return sql }
        let sql = make()
        entries.withLock { $0[key] = sql }
        return sql
    }
}

extension CanonValue {
    var databaseValue: DatabaseValue {
        switch self {
        case .null: .null
        case .integer(let value): value.databaseValue
        case .real(let value): value.databaseValue
        case .text(let value): value.databaseValue
        case .blob(let value): value.databaseValue
        }
    }

    init(_ value: DatabaseValue) {
        switch value.storage {
        case .null: self = .null
        case .int64(let value): self = .integer(value)
        case .double(let value): self = .real(value)
        case .string(let value): self = .text(value)
        case .blob(let value): self = .blob(value)
        }
    }
}

extension Canon.Row {
    init(grdb row: GRDB.Row) {
        var values: [String: CanonValue] = [:]
        values.reserveCapacity(row.count)
        for (column, value) in row { values[column] = CanonValue(value) }
        self.init(values)
    }

    /// The rows of `statement`, read through a cursor (no intermediate copy of each row).
    /// The column names are read once: each row's dictionary is `mapValues` of one made from
    /// them, so it takes that one's layout and hashes no column name again (building each from
    /// the row's names hashed every name of every row: a tenth of a build from state).
    static func fetchAll(_ statement: Statement, arguments: StatementArguments) throws -> [Canon.Row] {
        var rows: [Canon.Row] = []
        let cursor = try GRDB.Row.fetchCursor(statement, arguments: arguments)
        // By name, the index of the last column of that name (as `init(grdb:)` keeps the last).
        let columns = Dictionary(statement.columnNames.enumerated().map { ($1, $0) }, uniquingKeysWith: { _, last in last })
        while let row = try cursor.next() {
            rows.append(Canon.Row(columns.mapValues { CanonValue(row[$0] as DatabaseValue) }))
        }
        return rows
    }
}

extension EventEnvelope {
    /// The outbox columns `fetchAll` reads, in the order it reads them.
    static let outboxColumns =
        "position, stream_id, stream_version, type, schema_version, payload, actor, correlation_id, causation_id, occurred_at, committed_at, priority"

    /// The events `statement` selects (`outboxColumns`, in that order), read where SQLite holds
    /// each column (`OutboxEventCursor`): a catch-up reads a million of them. `expected` is how
    /// many there will probably be (the array is allocated for that many up front).
    static func fetchAll(_ statement: Statement, arguments: StatementArguments, expected: Int = 0) throws -> [EventEnvelope] {
        try fetchRange(statement, arguments: arguments, expected: expected, selecting: .all).events
    }

    /// The range `statement` selects, with only the events `selection` includes made.
    static func fetchRange(_ statement: Statement, arguments: StatementArguments, expected: Int = 0, selecting selection: EventSelection) throws -> OutboxRange {
        var events: [EventEnvelope] = []
        // Reserved for every event the range holds, even when the selection keeps few: an
        // event is one reference (its box), so 100,000 slots are 800 KB, and an array doubling
        // its way up to a catch-up batch faults in fresh pages at each step.
        events.reserveCapacity(expected)
        let cursor = try OutboxEventCursor(statement, arguments: arguments, selecting: selection)
        try cursor.forEach { if let event = $0 { events.append(event) } }
        return OutboxRange(events: events, through: cursor.through, count: cursor.count)
    }
}
