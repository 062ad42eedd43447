import Canon
import Foundation
import GRDB
import GRDBSQLite

/// Outbox rows as events, each column read through SQLite's C API where SQLite holds it, inside
/// GRDB's step loop (which keeps its cancellation, error and region bookkeeping), instead of through
/// GRDB's `Row` (a boxed value per column, the payload built as a String and then copied into
/// `Data`). The gain is small (BENCHMARKS.md): stepping SQLite and building each event's Strings
/// and payload are most of the cost. The table is `STRICT`, so each column holds its declared type.
///
/// An event `selection` leaves out is not made at all (nil): its stream and type are compared
/// where SQLite holds them, and only its position and commit time are kept (`through`).
final class OutboxEventCursor: DatabaseCursor {
    typealias Element = EventEnvelope?
    let _statement: Statement
    var _isDone = false
    private let selection: EventSelection
    /// How many rows were read, included or not.
    @exclusivity(unchecked) private(set) var count = 0
    /// The last row read, included or not.
    @exclusivity(unchecked) private(set) var through: Checkpoint?

    init(_ statement: Statement, arguments: StatementArguments, selecting selection: EventSelection = .all) throws {
        _statement = statement
        self.selection = selection
        try statement.setArguments(arguments)
    }

    deinit {
        // As GRDB's own cursors do. (A reset after a failed step repeats the failure's code:
        // the step already threw it.)
        sqlite3_reset(_statement.sqliteStatement)
    }

    /// Texts that repeat from event to event, made into a String once and shared: the stream of
    /// the event before (a case's events come together), and event types and actors, of which
    /// there are few. A catch-up reads a million events; every String it does not make is also
    /// one it does not free, on the writer's path, when the batch is done with.
    /// (The cursor's state is read and written only by `_element`, one row at a time, on the
    /// thread that steps the statement: no dynamic exclusivity check per row.)
    @exclusivity(unchecked) private var lastStream = Interned()
    @exclusivity(unchecked) private var lastCorrelation = Interned()
    @exclusivity(unchecked) private var lastCausation = Interned()
    @exclusivity(unchecked) private var types: [Interned] = []
    @exclusivity(unchecked) private var actors: [Interned] = []
    /// How many distinct types, and actors, one read keeps (the first seen); any others are
    /// made as they come.
    private static let commonLimit = 32

    func _element(sqliteStatement handle: SQLiteStatement) throws -> EventEnvelope? {
        func bytes(_ column: Int32) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(start: sqlite3_column_text(handle, column), count: Int(sqlite3_column_bytes(handle, column)))
        }
        func commonText(_ column: Int32, _ common: inout [Interned]) -> String {
            let text = bytes(column)
            if let known = common.first(where: { $0.matches(text) }) { return known.string }
            let made = Interned(text)
            if common.count < Self.commonLimit { common.append(made) }
            return made.string
        }
        func optionalText(_ column: Int32, _ last: inout Interned) -> String? {
            sqlite3_column_type(handle, column) == SQLITE_NULL ? nil : last.string(for: bytes(column))
        }
        let position = OutboxPosition(sqlite3_column_int64(handle, 0))
        let committedAt = Timestamp.date(microseconds: sqlite3_column_int64(handle, 10))
        count += 1
        through = Checkpoint(position: position, committedAt: committedAt)
        guard selection.includesAll || selection.includes(stream: bytes(1), type: bytes(3)) else { return nil }
        let payload = sqlite3_column_blob(handle, 5).map { Data(bytes: $0, count: Int(sqlite3_column_bytes(handle, 5))) } ?? Data()
        return EventEnvelope(
            position: position, streamID: StreamID(lastStream.string(for: bytes(1))),
            streamVersion: sqlite3_column_int64(handle, 2), type: commonText(3, &types), schemaVersion: Int(sqlite3_column_int64(handle, 4)),
            payload: payload, actor: commonText(6, &actors), correlationID: optionalText(7, &lastCorrelation),
            causationID: optionalText(8, &lastCausation),
            occurredAt: Timestamp.date(microseconds: sqlite3_column_int64(handle, 9)),
            committedAt: committedAt,
            priority: sqlite3_column_int64(handle, 11) != 0)
    }
}

/// A String made from a column, compared with the next column's bytes where each lies, without
/// making a String of them.
private struct Interned {
    private(set) var string = ""

    init() {}

    init(_ text: UnsafeRawBufferPointer) {
        string = String(decoding: text, as: UTF8.self)
    }

    func matches(_ text: UnsafeRawBufferPointer) -> Bool {
        // A String made by `String(decoding:as:)` is native, so its UTF-8 is contiguous (the
        // fallback compares as a sequence). Invalid UTF-8 was repaired in it, so such a column
        // never matches its own String and is made again: right, only slower.
        let utf8 = string.utf8
        guard utf8.count == text.count else { return false }
        return utf8.withContiguousStorageIfAvailable { UnsafeRawBufferPointer($0).elementsEqual(text) } ?? utf8.elementsEqual(text)
    }

    /// `string` when `text` is the same text, else `text` as a String, kept as the new last one.
    mutating func string(for text: UnsafeRawBufferPointer) -> String {
        if !matches(text) { self = Interned(text) }
        return string
    }
}
