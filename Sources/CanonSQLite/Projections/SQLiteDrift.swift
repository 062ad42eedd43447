import Canon
import Foundation
import GRDB
import GRDBSQLite

/// The SQLite side of drift detection: `canon_digest(...)`, which computes a `DriftDigest` of
/// stored columns with exactly the rules of the Swift one, `canon_sum(x)`, the wrapping 64-bit
/// sum that combines a key's several rows, and a read snapshot that answers range checksums.
enum SQLiteDrift {
    /// `canon_digest(...)` through SQLite's C API: it runs once per stored row in a content scan,
    /// so it reads each argument's bytes in place (no String per argument). Same rules as
    /// `DriftDigest`: text and blobs by their bytes, integers in decimal, NULL as a marker, each
    /// followed by the separator.
    static func registerDigest(_ db: Database) {
        sqlite3_create_function_v2(
            db.sqliteConnection, "canon_digest", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil,
            { context, count, arguments in
                var digest = DriftDigest()
                for index in 0..<Int(count) {
                    let argument = arguments![index]
                    switch sqlite3_value_type(argument) {
                    case SQLITE_NULL:
                        digest.addMissing()
                    case SQLITE_INTEGER:
                        digest.add(sqlite3_value_int64(argument))
                    case SQLITE_FLOAT:
                        digest.add(String(sqlite3_value_double(argument)))
                    case SQLITE_BLOB:
                        digest.add(bytes: UnsafeRawBufferPointer(start: sqlite3_value_blob(argument), count: Int(sqlite3_value_bytes(argument))))
                    default:
                        let text = sqlite3_value_text(argument)
                        digest.add(bytes: UnsafeRawBufferPointer(start: text, count: text == nil ? 0 : Int(sqlite3_value_bytes(argument))))
                    }
                }
                sqlite3_result_int64(context, digest.stored)
            },
            nil, nil, nil)
    }

    struct WrappingSum: DatabaseAggregate {
        var sum: UInt64 = 0
        init() {}
        mutating func step(_ values: [DatabaseValue]) {
            if let value = Int64.fromDatabaseValue(values[0]) { sum &+= UInt64(bitPattern: value) }
        }
        func finalize() -> (any DatabaseValueConvertible)? { Int64(bitPattern: sum) }
    }

    static let sum = DatabaseFunction("canon_sum", argumentCount: 1, pure: true, aggregate: WrappingSum.self)

    static func register(_ db: Database) {
        registerDigest(db)
        db.add(function: sum)
    }
}

/// Registers `canon_digest(...)` and `canon_sum(x)` on a connection opened outside a store (a
/// benchmark or a tool writing rows with their digests).
public func registerDriftFunctions(_ db: Database) {
    SQLiteDrift.register(db)
}

/// How one store exposes its keys and digests to a drift check, as SQL over its own tables.
struct DriftQueries: Sendable {
    /// `key, digest` rows (the digests kept at apply) for keys matching a WHERE fragment on `key`.
    var stored: @Sendable (_ whereSQL: String) -> String
    /// `key, digest` rows computed from stored content for keys matching a WHERE fragment on `key`.
    var content: @Sendable (_ whereSQL: String) -> String
    /// The keys (one column, possibly repeated) whose stored content no longer matches its digest.
    var tampered: String
    /// The distinct keys, for sampling.
    var keys: String
}

/// One read snapshot of a projection file: every range checksum of a check reads the same state.
final class SQLiteDriftSnapshot: DriftSnapshot, @unchecked Sendable {
    private let snapshot: DatabaseSnapshot
    let checkpoint: OutboxPosition
    private let queries: DriftQueries
    private let name: String

    init(_ database: SQLiteProjectionDatabase, queries: DriftQueries) throws {
        do {
            snapshot = try database.pool.makeSnapshot()
            checkpoint = try snapshot.read { db in try SQLiteProjectionDatabase.checkpoint(db).position }
        } catch let error as DatabaseError {
            throw ProjectionError.storage("\(database.identity): \(error.message ?? error.description)")
        }
        self.queries = queries
        self.name = database.identity.description
    }

    private static func bounds(_ range: KeyRange) -> (String, [String]) {
        var conditions: [String] = []
        var arguments: [String] = []
        if let lower = range.lower {
            conditions.append("key >= ?")
            arguments.append(lower)
        }
        if let upper = range.upper {
            conditions.append("key < ?")
            arguments.append(upper)
        }
        return (conditions.isEmpty ? "1" : conditions.joined(separator: " AND "), arguments)
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await snapshot.read(body)
        } catch let error as DatabaseError {
            throw ProjectionError.storage("\(name): \(error.message ?? error.description)")
        }
    }

    func checksum(_ range: KeyRange) async throws -> RangeChecksum {
        let (condition, arguments) = Self.bounds(range)
        let sql = "SELECT count(*), ifnull(sum(digest & 4294967295), 0), ifnull(sum((digest >> 32) & 4294967295), 0) FROM (\(queries.stored(condition)))"
        return try await read { db in
            let row = try GRDB.Row.fetchOne(db, sql: sql, arguments: StatementArguments(arguments))!
            return RangeChecksum(count: row[0], low: row[1], high: row[2])
        }
    }

    func digests(_ range: KeyRange) async throws -> [KeyDigest] {
        let (condition, arguments) = Self.bounds(range)
        let sql = "SELECT key, digest FROM (\(queries.stored(condition))) ORDER BY key"
        return try await read { db in
            try GRDB.Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map {
                KeyDigest(key: $0[0], digest: UInt64(bitPattern: $0[1] as Int64? ?? 0))
            }
        }
    }

    func splitPoints(_ range: KeyRange, parts: Int) async throws -> [String] {
        let (condition, arguments) = Self.bounds(range)
        let stored = queries.stored(condition)
        return try await read { db in
            let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM (\(stored))", arguments: StatementArguments(arguments)) ?? 0
            guard parts > 1, count > 1 else { return [] }
            let step = max(1, count / parts)
            return try String.fetchAll(
                db, sql: "SELECT key FROM (SELECT key, row_number() OVER (ORDER BY key) - 1 AS n FROM (\(stored))) WHERE n > 0 AND n % ? = 0 ORDER BY key LIMIT ?",
                arguments: StatementArguments(arguments) + [step, parts - 1])
        }
    }

    func tampered() async throws -> [String] {
        let sql = "SELECT DISTINCT key FROM (\(queries.tampered)) ORDER BY key"
        return try await read { db in try String.fetchAll(db, sql: sql) }
    }

    func contentDigests(_ keys: [String]) async throws -> [String: UInt64] {
        guard !keys.isEmpty else { return [:] }
        let sql = "SELECT key, digest FROM (\(queries.content("key IN (\(keys.map { _ in "?" }.joined(separator: ", ")))")))"
        return try await read { db in
            var digests: [String: UInt64] = [:]
            for row in try GRDB.Row.fetchAll(db, sql: sql, arguments: StatementArguments(keys)) {
                digests[row[0]] = UInt64(bitPattern: row[1] as Int64? ?? 0)
            }
            return digests
        }
    }

    func sampleKeys(_ count: Int) async throws -> [String] {
        let sql = "SELECT key FROM (\(queries.keys)) ORDER BY random() LIMIT ?"
        return try await read { db in try String.fetchAll(db, sql: sql, arguments: [count]) }
    }

    func close() {}
}

extension SQLiteProjectionDatabase {
    func recordDrift(_ summary: DriftSummary) async throws {
        let json = try summary.storedJSON()
        try await write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO canon_drift (mode, summary) VALUES (?, ?)", arguments: [summary.mode.rawValue, json])
        }
    }

    func driftSummaries() async throws -> [DriftSummary] {
        let rows = try await mapped { try await pool.read { db in try String.fetchAll(db, sql: "SELECT summary FROM canon_drift") } }
        return try DriftSummary.stored(rows, of: identity)
    }
}
