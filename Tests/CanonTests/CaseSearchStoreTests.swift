import Canon
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// The case search store on a generated dataset, compared with the canonical rows it derives from.
///
/// One suite for every engine: SQLite (FTS5, bm25) and PostgreSQL (tsvector, GIN, pg_trgm) must
/// answer the same queries the same way. The dataset (400 demo cases, seed 11) is seeded once per
/// engine for the suite and applied to the search store directly (no agents); tests that change
/// data use their own stores.
@Suite(.seededSearchDataset)
struct CaseSearchStoreTests {
    func dataset(_ engine: ProjectionEngine) throws -> SearchDataset {
        try #require(SeededSearchDataset.current[engine.name], "the suite trait seeds the dataset of \(engine.name)")
    }

    // MARK: - Ranking, prefix, typos, highlights

    @Test(arguments: ProjectionEngine.searchEngines)
    func titleMatchesRankAboveSummaryOnlyMatches(_ engine: ProjectionEngine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-search-rank")
        let platform = try await SearchPlatform(engine, scratch)
        let commands = CaseCommands(store: platform.canonical)
        let ivan = User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2)
        _ = try await commands.registerUser(ivan)
        func open(_ title: String, _ summary: String) async throws -> String {
            try await commands.openCase(
                OpenCaseRequest(title: title, summary: summary, sector: "energy", region: "north", priority: "medium"), by: ivan
            ).id
        }
        // Summary-only cases are opened first, so they have lower row ids: an engine that ignored
        // field weights (equal scores, ties broken by id) would list them first.
        let summaryOnly1 = try await open("Routine inspection of a depot", "The inspector noted zephyrine residue near the loading bay.")
        let summaryOnly2 = try await open("Quarterly return filed late", "Mentions zephyrine in passing among other substances stored.")
        let unrelated = try await open("Unrelated billing complaint", "Nothing about the rare mineral at all.")
        let inTitle = try await open("Zephyrine contamination at the refinery", "Samples were taken from the outflow and sent for analysis.")
        try await applyAll(platform.search, from: platform.canonical)

        let results = try await platform.search.search(SearchQuery(text: "zephyrine", limit: 20))
        let keys = results.hits.map(\.key)
        #expect(keys.first == inTitle, "title match ranks first: \(keys)")
        #expect(Set(keys) == [inTitle, summaryOnly1, summaryOnly2])
        #expect(!keys.contains(unrelated))
        #expect(results.correctedQuery == nil)
        let scores = results.hits.compactMap(\.score)
        #expect(scores.count == 3)
        #expect(scores == scores.sorted(), "hits come in score order (bm25: lower is better)")
        if scores.count == 3 { #expect(scores[0] < scores[1], "the title hit scores strictly better than summary-only hits") }
    }

    @Test(arguments: ProjectionEngine.searchEngines)
    func prefixOfTitleWordsFindsTheCase(_ engine: ProjectionEngine) async throws {
        let dataset = try dataset(engine)
        let target = try #require(dataset.cases.first { $0.titleWords.contains { $0.count >= 8 } })
        let word = try #require(target.titleWords.filter { $0.count >= 8 }.max { $0.count < $1.count })
        for length in [4, 6] {
            let prefix = String(word.prefix(length))
            let results = try await dataset.search.search(SearchQuery(text: prefix, limit: 200, facets: false))
            let keys = results.hits.map(\.key)
            #expect(keys.contains(target.id), "prefix \(prefix) of \(word) finds \(target.title)")
            #expect(results.correctedQuery == nil)
            // Every hit has a word starting with the prefix, and every case with such a word is found.
            let expected = dataset.cases.filter { $0.searchWords.contains { $0.hasPrefix(prefix) } }
            try #require(expected.count <= 200, "one page holds every match")
            #expect(Set(keys) == Set(expected.map(\.id)), "prefix \(prefix): \(keys.count) hits, \(expected.count) expected")
        }
    }

    /// Both kinds of typo (a substituted and a deleted letter) of two title words.
    @Test(arguments: ProjectionEngine.searchEngines, ["manipulation", "roaming"])
    func oneLetterTypoOfATitleWordStillFindsTheCase(_ engine: ProjectionEngine, _ word: String) async throws {
        for kind in [TypoKind.substitution, .deletion] { try await typoFindsTheCase(engine, kind, word) }
    }

    func typoFindsTheCase(_ engine: ProjectionEngine, _ kind: TypoKind, _ word: String) async throws {
        let dataset = try dataset(engine)
        // A title word of 6+ letters from actual case titles ("market manipulation through
        // spoofing", "excessive roaming fees"): 8+ letters allow two edits, shorter words one.
        let withWord = dataset.cases.filter { $0.titleWords.contains(word) }
        let target = try #require(withWord.first, "some case title has \(word)")
        let typo = kind.apply(to: word)
        #expect(typo != word && typo.count >= word.count - 1)
        #expect(!dataset.cases.contains { $0.searchWords.contains { $0.hasPrefix(typo) } }, "the typo \(typo) is no word of the data")

        let results = try await dataset.search.search(SearchQuery(text: typo, limit: 200))
        let keys = Set(results.hits.map(\.key))
        #expect(results.correctedQuery != nil, "\(kind) typo \(typo) of \(word) is corrected")
        #expect(results.correctedQuery == word)
        #expect(keys.contains(target.id), "\(typo) still finds \(target.title)")
        #expect(keys == Set(dataset.cases.filter { $0.searchWords.contains { $0.hasPrefix(word) } }.map(\.id)))
        // The correct spelling is not corrected.
        let exact = try await dataset.search.search(SearchQuery(text: word, limit: 200))
        #expect(exact.correctedQuery == nil)
        #expect(Set(exact.hits.map(\.key)) == keys)
    }

    /// After a purge, spelling correction still works for the words other cases hold, and never
    /// suggests the purged case's. (The vocabulary's own rows are checked per engine:
    /// `SQLiteSearchVocabularyTests`, `PostgresSearchVocabularyTests`.)
    @Test(arguments: ProjectionEngine.searchEngines)
    func afterAPurgeCorrectionSuggestsOnlyWordsOtherCasesHold(_ engine: ProjectionEngine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-search-purge")
        let platform = try await SearchPlatform(engine, scratch)
        try await VocabularyScenario.run(canonical: platform.canonical, search: platform.search)
        #expect(try await platform.search.search(SearchQuery(text: "zlatkovix")).correctedQuery == nil, "the purged name is not suggested")
        #expect(try await platform.search.search(SearchQuery(text: "complaimt")).correctedQuery == "complaint", "a word another case holds is")
    }

    /// Following `nextCursor` of a corrected query, with the same text, continues the corrected
    /// results: the pages together are the corrected single-page result.
    @Test(arguments: ProjectionEngine.searchEngines)
    func pagingACorrectedQueryContinuesTheCorrectedResults(_ engine: ProjectionEngine) async throws {
        let dataset = try dataset(engine)
        let store = dataset.search
        let typo = TypoKind.substitution.apply(to: "manipulation")
        let single = try await store.search(SearchQuery(text: typo, limit: 200, facets: false))
        try #require(single.correctedQuery == "manipulation" && single.hits.count > 4)

        var query = SearchQuery(text: typo, limit: 2, facets: false)
        var pages: [[String]] = []
        repeat {
            let results = try await store.search(query)
            pages.append(results.hits.map(\.key))
            query.cursor = results.nextCursor
        } while query.cursor != nil && pages.count < 100
        #expect(pages.count > 1)
        #expect(pages.dropFirst().allSatisfy { !$0.isEmpty }, "pages after the first are not empty: \(pages.map(\.count))")
        #expect(pages.flatMap { $0 } == single.hits.map(\.key), "pages: \(pages.map(\.count)), single page: \(single.hits.count)")
    }

    @Test(arguments: ProjectionEngine.searchEngines)
    func snippetMarksTheMatchedWord(_ engine: ProjectionEngine) async throws {
        let dataset = try dataset(engine)
        let word = "manipulation"
        try #require(dataset.cases.contains { $0.titleWords.contains(word) })
        let results = try await dataset.search.search(SearchQuery(text: word, limit: 5, facets: false))
        try #require(!results.hits.isEmpty)
        for hit in results.hits {
            let snippet = try #require(hit.snippet)
            #expect(snippet.lowercased().contains("<mark>\(word)</mark>"), "snippet: \(snippet)")
        }
        // A query with two words marks both.
        let two = try await dataset.search.search(SearchQuery(text: "market manipulation", limit: 3, facets: false))
        for hit in two.hits {
            let snippet = try #require(hit.snippet).lowercased()
            #expect(snippet.contains("<mark>market</mark>") && snippet.contains("<mark>manipulation</mark>"), "snippet: \(snippet)")
        }
    }

    // MARK: - Facets and filters

    @Test(arguments: ProjectionEngine.searchEngines)
    func facetCountsMatchCanonicalCountsAndIgnoreOnlyTheirOwnFilter(_ engine: ProjectionEngine) async throws {
        let dataset = try dataset(engine)
        let cases = dataset.cases
        // Unfiltered: every facet equals the canonical counts.
        let all = try await dataset.search.search(SearchQuery(limit: 1))
        #expect(all.facets["status"] == counts(cases, \.status))
        #expect(all.facets["sector"] == counts(cases, \.sector))
        #expect(all.facets["region"] == counts(cases, \.region))
        #expect(all.facets["priority"] == counts(cases, \.priority))

        let sector = try #require(cases.first { $0.status == "closed" }?.sector)
        let filters = ["status": "closed", "sector": sector]
        let results = try await dataset.search.search(SearchQuery(filters: filters, limit: 200))
        let both = cases.filter { $0.status == "closed" && $0.sector == sector }
        // Each facet honours the other filters but not its own.
        #expect(results.facets["status"] == counts(cases.filter { $0.sector == sector }, \.status))
        #expect(results.facets["sector"] == counts(cases.filter { $0.status == "closed" }, \.sector))
        #expect(results.facets["region"] == counts(both, \.region))
        #expect(results.facets["priority"] == counts(both, \.priority))
        #expect(Set(results.hits.map(\.key)) == Set(both.map(\.id)))

        // With a text query too: the facets count only matching documents.
        let word = "customers"
        let text = try await dataset.search.search(SearchQuery(text: word, filters: ["status": "closed"], limit: 200))
        let matching = cases.filter { $0.searchWords.contains { $0.hasPrefix(word) } }
        #expect(text.facets["status"] == counts(matching, \.status))
        #expect(text.facets["sector"] == counts(matching.filter { $0.status == "closed" }, \.sector))
    }

    @Test(arguments: ProjectionEngine.searchEngines)
    func everyHitMatchesEveryFilter(_ engine: ProjectionEngine) async throws {
        let dataset = try dataset(engine)
        let cases = dataset.cases
        let sample = try #require(cases.first { $0.status == "investigation" && $0.assignee != nil })
        let combinations: [[String: String]] = [
            ["status": "investigation"],
            ["region": sample.region, "priority": sample.priority],
            ["sector": sample.sector, "status": sample.status, "region": sample.region],
            ["team": sample.team, "status": "closed"],
            ["assignee": sample.assignee!],
        ]
        for filters in combinations {
            let hits = try await allPages(dataset.search, SearchQuery(filters: filters, limit: 50, facets: false))
            let expected = cases.filter { $0.matches(filters) }
            #expect(!expected.isEmpty)
            #expect(hits.count == expected.count, "\(filters)")
            #expect(Set(hits.map(\.key)) == Set(expected.map(\.id)), "\(filters)")
            for hit in hits {
                let display = try decodeDisplay(hit)
                #expect(display.matches(filters), "\(display.id) matches \(filters)")
            }
        }
        // With text: hits still match every filter.
        let text = try await dataset.search.search(SearchQuery(text: "customers", filters: ["status": "closed", "priority": "high"], limit: 200))
        #expect(!text.hits.isEmpty)
        for hit in text.hits {
            #expect(try decodeDisplay(hit).matches(["status": "closed", "priority": "high"]))
        }
    }

    // MARK: - Pagination

    @Test(arguments: ProjectionEngine.searchEngines)
    func pagesFollowCursorsDisjointAndInTheSameOrderAsOnePage(_ engine: ProjectionEngine) async throws {
        let dataset = try dataset(engine)
        let store = dataset.search
        let queries = [
            SearchQuery(text: "customers", limit: 7, facets: false),
            SearchQuery(filters: ["status": "investigation"], limit: 7, facets: false),
        ]
        for query in queries {
            var full = query
            full.limit = 200
            let single = try await store.search(full)
            #expect(single.nextCursor == nil, "the whole result fits one page of 200")
            #expect(single.hits.count > 3 * query.limit, "a broad query: \(single.hits.count) hits")

            var pages: [[String]] = []
            var page = query
            repeat {
                let results = try await store.search(page)
                #expect(results.hits.count <= query.limit)
                pages.append(results.hits.map(\.key))
                page.cursor = results.nextCursor
            } while page.cursor != nil && pages.count < 200
            let keys = pages.flatMap { $0 }
            #expect(Set(keys).count == keys.count, "pages are disjoint")
            #expect(keys == single.hits.map(\.key), "paged order equals the single page's order")
            #expect(pages.dropLast().allSatisfy { $0.count == query.limit })
            #expect(pages.count == (single.hits.count + query.limit - 1) / query.limit)

            // Stable: paging again gives the same pages.
            var again: [String] = []
            page = query
            repeat {
                let results = try await store.search(page)
                again += results.hits.map(\.key)
                page.cursor = results.nextCursor
            } while page.cursor != nil && again.count < 1000
            #expect(again == keys)
        }
    }

    @Test(arguments: ProjectionEngine.searchEngines)
    func invalidCursorAndUnknownFilterAreSearchErrors(_ engine: ProjectionEngine) async throws {
        let store = try self.dataset(engine).search
        for cursor in ["not-a-cursor", Data("x:1:2".utf8).base64EncodedString(), Data("r:abc:2".utf8).base64EncodedString(), ""] {
            let error = await #expect(throws: SearchError.self) {
                _ = try await store.search(SearchQuery(text: "customers", cursor: cursor))
            }
            #expect(error?.field == "cursor", "cursor \(cursor)")
        }
        let error = await #expect(throws: SearchError.self) {
            _ = try await store.search(SearchQuery(filters: ["colour": "blue"]))
        }
        #expect(error?.field == "colour")
    }

    /// A cursor belongs to the kind of query that issued it (ranked by text, or newest first).
    /// Sent with the other kind it is a bad cursor: a `SearchError` for the field "cursor",
    /// never an engine failure (which the HTTP layer reports as 503 "storage").
    @Test(arguments: ProjectionEngine.searchEngines)
    func cursorOfTheOtherQueryKindIsASearchError(_ engine: ProjectionEngine) async throws {
        let store = try self.dataset(engine).search
        let ranked = try #require(try await store.search(SearchQuery(text: "customers", limit: 2)).nextCursor)
        let rankedWithoutText = await #expect(throws: SearchError.self) {
            _ = try await store.search(SearchQuery(limit: 2, cursor: ranked))
        }
        #expect(rankedWithoutText?.field == "cursor")

        let recent = try #require(try await store.search(SearchQuery(limit: 2)).nextCursor)
        let recentWithText = await #expect(throws: SearchError.self) {
            _ = try await store.search(SearchQuery(text: "customers", limit: 2, cursor: recent))
        }
        #expect(recentWithText?.field == "cursor")

        // A ranked cursor belongs to its query's words too: sent with another q it is refused
        // (it was answered for the cursor's words, whatever q said); with the same q it pages on.
        let otherText = await #expect(throws: SearchError.self) {
            _ = try await store.search(SearchQuery(text: "regulator", limit: 2, cursor: ranked))
        }
        #expect(otherText?.field == "cursor")
        #expect(otherText?.message.contains("q=customers") == true)
        let next = try await store.search(SearchQuery(text: "Customers!", limit: 2, cursor: ranked))
        let first = try await store.search(SearchQuery(text: "customers", limit: 2))
        #expect(!next.hits.isEmpty)
        #expect(Set(next.hits.map(\.key)).isDisjoint(with: first.hits.map(\.key)))
    }

    // MARK: - Visibility

    @Test(arguments: ProjectionEngine.searchEngines)
    func restrictedCasesOfOtherTeamsAreFilteredFromHitsAndFacets(_ engine: ProjectionEngine) async throws {
        let dataset = try dataset(engine)
        let cases = dataset.cases
        let team = "financial-crime"
        let hidden = cases.filter { $0.restricted && $0.team != team }
        try #require(!hidden.isEmpty, "the dataset has restricted cases of other teams")
        try #require(cases.contains { $0.restricted && $0.team == team }, "and restricted cases of the reader's team")
        let visible = cases.filter { !$0.restricted || $0.team == team }

        let restricted = SearchQuery(limit: 100, visibility: .unrestrictedAndTeams([team]))
        let hits = try await allPages(dataset.search, restricted)
        #expect(Set(hits.map(\.key)) == Set(visible.map(\.id)))
        #expect(Set(hits.map(\.key)).isDisjoint(with: hidden.map(\.id)))
        for hit in hits {
            let display = try decodeDisplay(hit)
            #expect(!display.restricted || display.team == team)
        }
        let first = try await dataset.search.search(restricted)
        #expect(first.facets["status"]?.values.reduce(0, +) == visible.count)
        #expect(first.facets["status"] == counts(visible, \.status))
        #expect(first.facets["sector"] == counts(visible, \.sector))

        // With text too.
        let word = try #require(hidden.first?.titleWords.first { $0.count >= 6 })
        let text = try await dataset.search.search(SearchQuery(text: word, limit: 200, visibility: .unrestrictedAndTeams([team])))
        let matching = visible.filter { $0.searchWords.contains { $0.hasPrefix(word) } }
        #expect(Set(text.hits.map(\.key)) == Set(matching.map(\.id)))
        #expect(text.facets["status"] == counts(matching, \.status))

        // No teams: only unrestricted cases.
        let none = try await dataset.search.search(SearchQuery(limit: 1, visibility: .unrestrictedAndTeams([])))
        #expect(none.facets["status"] == counts(cases.filter { !$0.restricted }, \.status))

        // Everything: restricted cases appear and are counted.
        let everything = try await allPages(dataset.search, SearchQuery(limit: 100, visibility: .everything))
        #expect(Set(everything.map(\.key)) == Set(cases.map(\.id)))
        #expect(Set(hidden.map(\.id)).isSubset(of: everything.map(\.key)))
        let all = try await dataset.search.search(SearchQuery(limit: 1, visibility: .everything))
        #expect(all.facets["status"]?.values.reduce(0, +) == cases.count)
    }

    // MARK: - Idempotency

    @Test(arguments: ProjectionEngine.searchEngines)
    func reapplyingAfterRewindLeavesIdenticalDocuments(_ engine: ProjectionEngine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-search-idem")
        let platform = try await SearchPlatform(engine, scratch)
        _ = try await DemoPlatform(configuration: .init(cases: 400, seed: 11, chunkSize: 200)).seed(into: platform.canonical)
        let batches = try await applyAll(platform.search, from: platform.canonical)
        try #require(batches.count >= 2, "several batches of 1000")
        let keys = try await platform.canonical.fetchAll("cases").map { try $0.string("id") }
        let store = platform.search

        func snapshot() async throws -> [String: SearchDocument] {
            var documents: [String: SearchDocument] = [:]
            for key in keys { documents[key] = try await store.document(key) }
            return documents
        }
        let before = try await snapshot()
        let countBefore = try await store.count()
        let searchBefore = try await store.search(SearchQuery(text: "customers", limit: 200))
        #expect(countBefore == keys.count)
        #expect(before.count == keys.count)
        let head = try await store.checkpoint()

        // The last batch again.
        let last = try #require(batches.last)
        try await store.rewind(to: last.from)
        try await store.apply(last.events, from: last.from, to: last.to)
        #expect(try await snapshot() == before)
        #expect(try await store.count() == countBefore)
        #expect(try await store.checkpoint() == head)

        // Everything again from the start.
        try await store.rewind(to: .start)
        #expect(try await store.checkpoint().position == .start)
        _ = try await applyAll(store, from: platform.canonical)
        #expect(try await snapshot() == before)
        #expect(try await store.count() == countBefore)
        #expect(try await store.checkpoint() == head)
        let searchAfter = try await store.search(SearchQuery(text: "customers", limit: 200))
        #expect(searchAfter.hits.map(\.key) == searchBefore.hits.map(\.key))
        #expect(searchAfter.hits.map(\.score) == searchBefore.hits.map(\.score))
        #expect(searchAfter.facets == searchBefore.facets)

        // A checkpoint that is not where the store is: refused, nothing written.
        let error = await #expect(throws: ProjectionError.self) {
            try await store.apply(last.events, from: last.from, to: last.to)
        }
        #expect(error?.code == .checkpointConflict)
    }
}

// MARK: - Dataset

/// Applies every outbox event to `store` in batches of 1000, through `apply` (no agents).
@discardableResult
func applyAll(_ store: any ProjectionStore, from source: any CanonicalStore) async throws -> [AppliedBatch] {
    var checkpoint = try await store.checkpoint()
    var batches: [AppliedBatch] = []
    while true {
        let events = try await source.events(after: checkpoint.position, limit: 1000)
        guard let last = events.last else { return batches }
        let next = Checkpoint(position: last.position, committedAt: last.committedAt)
        try await store.apply(events, from: checkpoint.position, to: next)
        batches.append(AppliedBatch(events: events, from: checkpoint.position, to: next))
        checkpoint = next
    }
}

struct AppliedBatch: Sendable {
    var events: [EventEnvelope]
    var from: OutboxPosition
    var to: Checkpoint
}

/// One canonical case row, as the comparisons need it.
struct CanonicalCase: Hashable, Sendable {
    var id: String
    var title: String
    var summary: String
    var status: String
    var sector: String
    var region: String
    var priority: String
    var team: String
    var assignee: String?
    var restricted: Bool
    var parties: [String]

    var titleWords: [String] { words(title) }
    /// Every word the search document indexes (title, summary, party names).
    var searchWords: [String] { words(title) + words(summary) + parties.flatMap(words) }

    func matches(_ filters: [String: String]) -> Bool {
        filters.allSatisfy { field, value in
            switch field {
            case "status": status == value
            case "sector": sector == value
            case "region": region == value
            case "priority": priority == value
            case "team": team == value
            case "assignee": assignee == value
            default: false
            }
        }
    }
}

func words(_ text: String) -> [String] {
    text.folding(options: [.diacriticInsensitive, .caseInsensitive], locale: nil).lowercased()
        .split { !($0.isLetter || $0.isNumber) }.map(String.init)
}

func counts(_ cases: [CanonicalCase], _ field: KeyPath<CanonicalCase, String>) -> [String: Int] {
    Dictionary(grouping: cases, by: { $0[keyPath: field] }).mapValues(\.count)
}

func decodeDisplay(_ hit: SearchResults.Hit) throws -> CaseSearchProjection.Display {
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = Timestamp.decodingStrategy
    return try decoder.decode(CaseSearchProjection.Display.self, from: hit.display)
}

extension CaseSearchProjection.Display {
    func matches(_ filters: [String: String]) -> Bool {
        filters.allSatisfy { field, value in
            switch field {
            case "status": status.rawValue == value
            case "sector": sector.rawValue == value
            case "region": region.rawValue == value
            case "priority": priority.rawValue == value
            case "team": team == value
            case "assignee": assignee == value
            default: false
            }
        }
    }
}

/// Every hit of `query`, following `nextCursor` to the end.
func allPages(_ store: any SearchStore, _ query: SearchQuery) async throws -> [SearchResults.Hit] {
    var query = query
    var hits: [SearchResults.Hit] = []
    var pages = 0
    repeat {
        let results = try await store.search(query)
        hits += results.hits
        query.cursor = results.nextCursor
        pages += 1
    } while query.cursor != nil && pages < 1000
    return hits
}

enum TypoKind: String, Sendable, CustomTestStringConvertible {
    case substitution, deletion

    var testDescription: String { rawValue }

    /// The word with one letter in its middle replaced or removed.
    func apply(to word: String) -> String {
        var letters = Array(word)
        let middle = letters.count / 2
        switch self {
        case .substitution: letters[middle] = letters[middle] == "x" ? "q" : "x"
        case .deletion: letters.remove(at: middle)
        }
        return String(letters)
    }
}

/// A canonical store and a case search store of one engine.
struct SearchPlatform: Sendable {
    let canonical: any CanonicalStore
    let search: any SearchStore

    init(_ engine: ProjectionEngine, _ scratch: TemporaryDirectory) async throws {
        canonical = try await engine.canonical(in: scratch)
        search = try await engine.search(in: scratch, slot: "case-search")
    }
}

/// The seeded stores the suite shares (one set per engine): read-only for its tests.
struct SearchDataset: Sendable {
    let scratch: TemporaryDirectory
    let canonical: any CanonicalStore
    let search: any SearchStore
    let cases: [CanonicalCase]

    static func make(_ engine: ProjectionEngine) async throws -> SearchDataset {
        let scratch = try TemporaryDirectory(prefix: "canon-search")
        let platform = try await SearchPlatform(engine, scratch)
        _ = try await DemoPlatform(configuration: .init(cases: 400, seed: 11, chunkSize: 200)).seed(into: platform.canonical)
        try await applyAll(platform.search, from: platform.canonical)
        let head = try await platform.canonical.headPosition()
        #expect(try await platform.search.checkpoint().position == head)

        var parties: [String: [String]] = [:]
        let names = try await platform.canonical.fetchAll("parties").reduce(into: [String: String]()) {
            $0[try $1.string("id")] = try $1.string("name")
        }
        for link in try await platform.canonical.fetchAll("case_parties") {
            parties[try link.string("case_id"), default: []].append(names[try link.string("party_id")] ?? "")
        }
        let cases = try await platform.canonical.fetchAll("cases").map { row in
            let id = try row.string("id")
            return CanonicalCase(
                id: id, title: try row.string("title"), summary: try row.string("summary"), status: try row.string("status"),
                sector: try row.string("sector"), region: try row.string("region"), priority: try row.string("priority"),
                team: try row.string("team"), assignee: try row.optionalString("assignee"), restricted: try row.bool("restricted"),
                parties: parties[id] ?? [])
        }
        #expect(cases.count == 400)
        return SearchDataset(scratch: scratch, canonical: platform.canonical, search: platform.search, cases: cases.sorted { $0.id < $1.id })
    }
}

/// Seeds the dataset once for the suite and hands it to its tests.
struct SeededSearchDataset: SuiteTrait, TestScoping {
    @TaskLocal static var current: [String: SearchDataset] = [:]

    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        var datasets: [String: SearchDataset] = [:]
        for engine in ProjectionEngine.searchEngines { datasets[engine.name] = try await SearchDataset.make(engine) }
        try await Self.$current.withValue(datasets) { try await function() }
    }
}

extension Trait where Self == SeededSearchDataset {
    static var seededSearchDataset: Self { SeededSearchDataset() }
}

