import Canon
import Foundation
import GRDB
import GRDBSQLite

/// Outbox rows as events, each column read through SQLite's C API where SQLite holds it, inside
/// GRDB's step loop (which keeps its cancellation, error and region bookkeeping), instead of through
/// GRDB's `Row` (a boxed value per column, the payload built as a String and then copied into
/// `Data`). The gain is small (BENCHMARKS.md): stepping SQLite and building each event's Strings
/// and payload are most of the cost. The table is `STRICT`, so each column holds its declared type.
final class OutboxEventCursor: DatabaseCursor {
    typealias Element = EventEnvelope
    let _statement: Statement
    var _isDone = false

    init(_ statement: Statement, arguments: StatementArguments) throws {
        _statement = statement
        try statement.setArguments(arguments)
    }

    deinit {
        // As GRDB's own cursors do. (A reset after a failed step repeats the failure's code:
        // the step already threw it.)
        sqlite3_reset(_statement.sqliteStatement)
    }

    func _element(sqliteStatement handle: SQLiteStatement) throws -> EventEnvelope {
        func text(_ column: Int32) -> String {
            let start = sqlite3_column_text(handle, column)
            return String(decoding: UnsafeRawBufferPointer(start: start, count: Int(sqlite3_column_bytes(handle, column))), as: UTF8.self)
        }
        func optionalText(_ column: Int32) -> String? {
            sqlite3_column_type(handle, column) == SQLITE_NULL ? nil : text(column)
        }
        let payload = sqlite3_column_blob(handle, 5).map { Data(bytes: $0, count: Int(sqlite3_column_bytes(handle, 5))) } ?? Data()
        return EventEnvelope(
            position: OutboxPosition(sqlite3_column_int64(handle, 0)), streamID: StreamID(text(1)),
            streamVersion: sqlite3_column_int64(handle, 2), type: text(3), schemaVersion: Int(sqlite3_column_int64(handle, 4)),
            payload: payload, actor: text(6), correlationID: optionalText(7), causationID: optionalText(8),
            occurredAt: Timestamp.date(microseconds: sqlite3_column_int64(handle, 9)),
            committedAt: Timestamp.date(microseconds: sqlite3_column_int64(handle, 10)),
            priority: sqlite3_column_int64(handle, 11) != 0)
    }
}
