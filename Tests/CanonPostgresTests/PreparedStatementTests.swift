import Canon
@testable import CanonPostgres
import CanonTesting
import PostgresNIO
import Testing

/// Prepared statements on a real server: postgres-nio remembers a failed preparation for the
/// connection and gives every later call of that name the same error, so a statement whose
/// preparation failed once (a table not there yet, a lock timeout, a cancelled query) would fail
/// on that connection for good. Canon names prepared statements by generation and moves to the
/// next one after such an error.
@Suite("Prepared statements on PostgreSQL", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipMessage)))
struct PreparedStatementTests {
    @Test func aStatementWhosePreparationFailedIsPreparedAfreshNextTime() async throws {
        let url = try await PostgresTestServer.createDatabase()
        // One connection: every call below meets the same connection's prepared statements.
        let database = PostgresDatabase(url: url, maximumConnections: 1)
        defer { database.close() }
        await #expect(throws: CanonicalStoreError.self) { try await database.rows("SELECT n FROM created_later ORDER BY n", prepared: true) }
        #expect(database.preparedGeneration.load(ordering: .relaxed) == 1)
        try await database.execute("CREATE TABLE created_later (n BIGINT)")
        try await database.execute("INSERT INTO created_later VALUES (7)")
        let rows = try await database.rows("SELECT n FROM created_later ORDER BY n", prepared: true)
        #expect(try rows.map { try $0.decode(Int64.self) } == [7])
    }

    @Test func anErrorOfRunningAStatementKeepsItPrepared() async throws {
        let url = try await PostgresTestServer.createDatabase()
        let database = PostgresDatabase(url: url, maximumConnections: 1)
        defer { database.close() }
        let sql = "SELECT 100 / $1::bigint"
        #expect(try await database.rows(sql, [.integer(4)], prepared: true).first?.decode(Int64.self) == 25)
        await #expect(throws: CanonicalStoreError.self) { try await database.rows(sql, [.integer(0)], prepared: true) }
        #expect(database.preparedGeneration.load(ordering: .relaxed) == 0)
        #expect(try await database.rows(sql, [.integer(5)], prepared: true).first?.decode(Int64.self) == 20)
    }
}
