import Foundation
import GRDB
import GRDBSQLite

/// Runs a cached GRDB statement through SQLite's C API: values are bound as they are, without
/// GRDB's boxing of each argument, and rows are read where SQLite holds them. For the statements
/// a catch-up runs once per document, and for content scans.
struct RawStatement {
    /// Kept so the handle outlives any eviction from GRDB's statement cache.
    private let statement: Statement
    private let handle: OpaquePointer
    private let db: Database
    private let sql: String

    init(_ db: Database, _ sql: String) throws {
        statement = try db.cachedStatement(sql: sql)
        handle = statement.sqliteStatement
        self.db = db
        self.sql = sql
        sqlite3_reset(handle)
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    func bind(_ index: Int32, _ value: String?) {
        guard var text = value else {
            sqlite3_bind_null(handle, index)
            return
        }
        text.withUTF8 { bytes in
            _ = bytes.withMemoryRebound(to: CChar.self) { characters in
                if let base = characters.baseAddress {
                    sqlite3_bind_text(handle, index, base, Int32(characters.count), Self.transient)
                } else {
                    sqlite3_bind_text(handle, index, "", 0, Self.transient)
                }
            }
        }
    }

    /// Binds UTF-8 bytes as text.
    func bind(_ index: Int32, utf8 value: Data) {
        value.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress {
                sqlite3_bind_text(handle, index, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), Self.transient)
            } else {
                sqlite3_bind_text(handle, index, "", 0, Self.transient)
            }
        }
    }

    func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(handle, index, value) }

    func bind(_ index: Int32, _ value: Int) { sqlite3_bind_int64(handle, index, Int64(value)) }

    /// Steps the statement to its end and resets it.
    func run() throws {
        defer { sqlite3_reset(handle) }
        guard try !step() else { throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "a write statement returned a row", sql: sql) }
    }

    /// Steps once: true with a row to read, false at the end (the statement is reset then).
    func step() throws -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW:
            return true
        case SQLITE_DONE:
            sqlite3_reset(handle)
            return false
        default:
            let connection = db.sqliteConnection
            let error = DatabaseError(
                resultCode: ResultCode(rawValue: sqlite3_extended_errcode(connection)), message: String(cString: sqlite3_errmsg(connection)), sql: sql)
            sqlite3_reset(handle)
            throw error
        }
    }

    /// Ends reading rows before the last one.
    func reset() { sqlite3_reset(handle) }

    var columnCount: Int { Int(sqlite3_column_count(handle)) }

    /// Column `index` of the current row as an integer.
    func int64(_ index: Int) -> Int64 { sqlite3_column_int64(handle, Int32(index)) }

    /// Column `index` of the current row as text, where SQLite holds it (valid until the next step).
    func text(_ index: Int) -> UnsafeRawBufferPointer {
        let text = sqlite3_column_text(handle, Int32(index))
        return UnsafeRawBufferPointer(start: text, count: text == nil ? 0 : Int(sqlite3_column_bytes(handle, Int32(index))))
    }
}
