import Canon
@testable import CanonPostgres
import CanonTesting
import CasePlatform
import Testing

/// A purged case's words leave the PostgreSQL search schema's spelling vocabulary, unless another
/// document still holds them (as in the SQLite file: `SQLiteSearchVocabularyTests`).
@Suite("PostgreSQL search vocabulary after a purge (real server)", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipMessage)))
struct PostgresSearchVocabularyTests {
    @Test func aPurgedCasesWordsLeaveTheVocabulary() async throws {
        let canonical = try await PostgresCanonicalStore(url: try await PostgresTestServer.createDatabase(), migrations: CasePlatformSchema.migrations)
        let search = try await PostgresSearchStore.open(url: try await PostgresTestServer.createDatabase(), projection: CaseSearchProjection())
        try await VocabularyScenario.run(canonical: canonical, search: search)
        #expect(try await !search.vocabularyContains("zlatkovic"), "the purged case's own word is gone")
        #expect(try await search.vocabularyContains("complaint"), "a word another case holds stays")
        #expect(try await search.vocabularyContains("billing"))
    }
}
