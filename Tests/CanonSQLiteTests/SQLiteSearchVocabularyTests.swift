import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import GRDB
import Testing

/// A purged case's words leave the search file's spelling vocabulary (`terms` and its trigram
/// index), unless another document still holds them: personal data such as a party's surname
/// must not outlive the purge in a derived store.
@Suite("SQLite search vocabulary after a purge")
struct SQLiteSearchVocabularyTests {
    @Test func aPurgedCasesWordsLeaveTheVocabulary() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-vocabulary")
        let canonical = try SQLiteCanonicalStore(path: scratch.file("canonical.sqlite"), migrations: CasePlatformSchema.migrations)
        let search = try SQLiteSearchStore(path: scratch.file("search.sqlite"), projection: CaseSearchProjection())
        try await VocabularyScenario.run(canonical: canonical, search: search)
        let queue = try DatabaseQueue(path: search.path)
        let (terms, trigrams) = try await queue.read { db in
            (try String.fetchAll(db, sql: "SELECT term FROM terms"), try String.fetchAll(db, sql: "SELECT term FROM terms_trigram"))
        }
        #expect(!terms.contains("zlatkovic") && !trigrams.contains("zlatkovic"), "the purged case's own word is gone")
        #expect(terms.contains("complaint") && trigrams.contains("complaint"), "a word another case holds stays")
        #expect(terms.contains("billing"))
    }
}
