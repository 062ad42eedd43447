import Canon
import CanonPostgres
import CanonTesting
import CasePlatform
import Testing

@Suite("Projection schemas on PostgreSQL", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipMessage)))
struct ProjectionIsolationTests {
    /// A projection's role owns its schema and has no grant on the canonical tables: it cannot
    /// read, let alone join, what it must learn only from events.
    @Test func aProjectionsRoleCannotReadTheCanonicalTables() async throws {
        let url = try await PostgresTestServer.createDatabase()
        let canonical = try await PostgresCanonicalStore(url: url, migrations: CasePlatformSchema.migrations)
        let search = try await PostgresSearchStore.open(url: url, projection: CaseSearchProjection())
        #expect(search.schemaName == "case_search_v1")
        let asProjection = PostgresDatabase(url: url, maximumConnections: 1, settings: [("role", "canon_case_search_v1"), ("search_path", "case_search_v1")])
        defer { asProjection.close() }
        for table in ["public.cases", "public.canon_outbox", "public.parties"] {
            await #expect("\(table)") {
                try await asProjection.execute("SELECT count(*) FROM \(table)")
            } throws: { error in
                "\(error)".contains("permission denied")
            }
        }
        // Its own tables it reads.
        #expect(try await asProjection.integer("SELECT count(*) FROM docs") == 0)
        _ = canonical
    }
}
