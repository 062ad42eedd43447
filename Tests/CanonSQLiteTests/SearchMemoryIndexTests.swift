import Canon
@testable import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import GRDB
import Testing

/// The search store's memory index against FTS5 alone, over one SQLite file: every answer must be
/// the same (hits, bm25 scores to the bit, cursors, facet counts, corrections), before and after
/// another writer changes the file.
@Suite("Memory search index")
struct SearchMemoryIndexTests {
    static let admin = DemoPlatform.featuredUsers.first { $0.role == .admin }!
    static let legal = DemoPlatform.featuredUsers.first { $0.role == .legal }!

    @Test func theMemoryIndexAnswersEveryQueryAsFTS5DoesAndFollowsAnotherWriter() async throws {
        let (scratch, canonical, indexed, plain) = try await Self.stores(cases: 600, seed: 29)
        _ = scratch
        try await Self.applyAll(indexed, from: canonical)
        var random = SeededGenerator(seed: 7)
        let vocabulary = try await Self.vocabulary(canonical)
        #expect(vocabulary.count > 50)

        var compared = try await Self.compare(indexed, plain, queries: 250, vocabulary: vocabulary, &random)
        #expect(indexed.memoryIndexReady, "the index answered")
        #expect(!plain.memoryIndexReady)
        #expect(compared.withHits > 100, "many queries find something (\(compared.withHits) of 250)")
        #expect(compared.secondPages > 20, "cursors were followed (\(compared.secondPages))")

        // The other store writes: transitions, restrictions (also on the priority path), team
        // changes, purges and new cases. The indexed store must see all of it through the file.
        let commands = CaseCommands(store: canonical)
        let cases = try await canonical.fetchAll("cases")
        for (index, row) in cases.prefix(120).enumerated() {
            let id = try row.string("id")
            let status = try #require(CaseStatus(rawValue: try row.string("status")))
            switch index % 4 {
            case 0: _ = try await commands.transition(id, TransitionRequest(to: status.allowedNextStatuses[0].rawValue, reason: "r"), by: Self.admin)
            case 1: _ = try await commands.restrict(id, RestrictionRequest(restricted: true, reason: "r", clearance: 3), by: Self.legal)
            case 2:
                let team = try #require(DemoPlatform.teams.first { $0 != (try? row.string("team")) })
                _ = try await commands.changeTeam(id, TeamChangeRequest(team: team, reason: "r"), by: Self.admin)
            default:
                if status == .closed { _ = try await commands.purge(id, reason: "r", by: Self.legal) }
            }
        }
        let purged = try await cases.prefix(120).asyncFilter { try await canonical.fetchAll("tombstones", where: ["case_id": .text($0.string("id"))]).count > 0 }
        for _ in 0..<40 {
            let words = (0..<4).map { _ in random.pick(vocabulary) }
            _ = try await commands.openCase(
                OpenCaseRequest(title: words.joined(separator: " "), summary: words.reversed().joined(separator: " "), sector: "energy", region: "north", priority: "high", team: "market-integrity"),
                by: Self.admin)
        }
        try await plain.applyPriority(try await canonical.events(after: try await plain.checkpoint().position, limit: 100_000).filter(\.priority))
        try await Self.applyAll(plain, from: canonical)

        compared = try await Self.compare(indexed, plain, queries: 150, vocabulary: vocabulary, &random)
        #expect(indexed.memoryIndexReady, "the index followed the change log instead of being dropped")
        #expect(compared.withHits > 60, "\(compared.withHits) of 150 found something")
        #expect(!purged.isEmpty, "some cases were purged")
        #expect(try await indexed.count() == 600 + 40 - purged.count)
    }

    /// The index follows the log while it can, and asks to be loaded again when it cannot: too
    /// many changes at once, a log pruned past it, or a log that went back. The store meanwhile
    /// answers through FTS5 and then loads the index again.
    @Test func theIndexLoadsAgainWhenTheLogCannotBringItUpToDate() async throws {
        let (scratch, canonical, indexed, plain) = try await Self.stores(cases: 60, seed: 3)
        let file = scratch.file("search.sqlite")
        let events = try await canonical.events(after: .start, limit: 100_000)
        let half = events.count / 2
        try await indexed.apply(Array(events[..<half]), from: .start, to: Checkpoint(position: events[half - 1].position, committedAt: nil))
        let reader = try DatabaseQueue(path: file)
        func onReader<T>(_ body: (Database) throws -> T) throws -> T { try reader.read(body) }
        let schema = CaseSearchProjection().schema

        var index = try #require(SearchMemoryIndex(schema: schema))
        let loaded = try onReader { db in try index.load(db) }
        #expect(loaded)
        let loadedAt = index.sequence
        #expect(loadedAt > 0)
        try await indexed.apply(Array(events[half...]), from: events[half - 1].position, to: Checkpoint(position: events.last!.position, committedAt: nil))
        let head = try onReader { db in try SearchMemoryIndex.head(db) }
        #expect(head > loadedAt)

        // Too many changed documents for one refresh.
        var small = index
        let tooMany = try onReader { db in try small.refresh(to: head, db, maxChanges: 5) }
        #expect(tooMany == .reloadNeeded)
        // A refresh within bounds reaches the head and holds what a fresh load holds.
        let refreshed = try onReader { db in try index.refresh(to: head, db) }
        #expect(refreshed == .refreshed)
        #expect(index.sequence == head)
        var fresh = try #require(SearchMemoryIndex(schema: schema))
        _ = try onReader { db in try fresh.load(db) }
        var compared = 0
        for word in ["market", "tar", "customers", "risk", "con"] {
            let query = SearchQuery(text: word, limit: 50)
            let a = index.search(words: [word], query: query, cursor: nil, limit: 50)
            let b = fresh.search(words: [word], query: query, cursor: nil, limit: 50)
            #expect(a.hits == b.hits && a.facets == b.facets, "\(word)")
            compared += a.hits.count
        }
        #expect(compared > 10)
        // A log that went back (the store emptied and rebuilt) cannot be followed.
        let back = try onReader { db in try index.refresh(to: head - 1, db) }
        #expect(back == .reloadNeeded)

        // A log pruned past the index: the store answers through FTS5, then loads again.
        let probe = SearchQuery(text: "market", limit: 20)
        _ = try await indexed.search(probe)
        #expect(indexed.memoryIndexReady)
        let commands = CaseCommands(store: canonical)
        for title in ["Market abuse in ferry tariffs", "Market sounding leaks"] {
            _ = try await commands.openCase(
                OpenCaseRequest(title: title, summary: "s", sector: "energy", region: "north", priority: "high", team: "market-integrity"), by: Self.admin)
        }
        // One transaction per event, so the log gains several rows.
        var checkpoint = try await plain.checkpoint()
        for event in try await canonical.events(after: checkpoint.position, limit: 100) {
            let next = Checkpoint(position: event.position, committedAt: event.committedAt)
            try await plain.apply([event], from: checkpoint.position, to: next)
            checkpoint = next
        }
        try await DatabaseQueue(path: file).write { db in
            // As if more than `changeLogLength` transactions had passed: only the newest remains.
            try db.execute(sql: "DELETE FROM search_changes WHERE seq < (SELECT max(seq) FROM search_changes)")
        }
        let first = try await indexed.search(probe)
        #expect(!indexed.memoryIndexReady, "dropped, FTS5 answered")
        let second = try await indexed.search(probe)
        #expect(indexed.memoryIndexReady, "loaded again")
        let expected = try await plain.search(probe)
        for answer in [first, second] {
            #expect(answer.hits.map(\.key) == expected.hits.map(\.key) && answer.hits.map(\.score) == expected.hits.map(\.score))
            #expect(answer.facets == expected.facets)
        }
    }

    /// Queries of 0–3 words (whole words and prefixes), with filters, visibilities and page sizes
    /// drawn at random, each followed to its second page; every answer compared.
    static func compare(
        _ indexed: SQLiteSearchStore, _ plain: SQLiteSearchStore, queries: Int, vocabulary: [String], _ random: inout SeededGenerator
    ) async throws -> (withHits: Int, secondPages: Int) {
        let filterValues: [String: [String]] = [
            "status": CaseStatus.allCases.map(\.rawValue), "sector": Sector.allCases.map(\.rawValue), "region": Region.allCases.map(\.rawValue),
            "priority": Priority.allCases.map(\.rawValue), "team": DemoPlatform.teams,
        ]
        let visibilities: [SearchVisibility] = [
            .everything, .unrestrictedAndTeams([]), .unrestrictedAndTeams(["financial-crime", "market-integrity"]),
            .scoped(teams: ["consumer-protection"], clearance: 2, supervised: ["data-protection"]),
            .scoped(teams: ["financial-crime"], clearance: 1, supervised: []),
        ]
        var withHits = 0, secondPages = 0
        for _ in 0..<queries {
            let words = (0..<Int.random(in: 0...3, using: &random)).map { _ in
                let word = random.pick(vocabulary)
                return Bool.random(using: &random) ? String(word.prefix(Int.random(in: 2...max(2, word.count), using: &random))) : word
            }
            var filters: [String: String] = [:]
            for _ in 0..<Int.random(in: 0...2, using: &random) {
                let field = random.pick(Array(filterValues.keys).sorted())
                filters[field] = random.pick(filterValues[field]!)
            }
            var query = SearchQuery(
                text: words.joined(separator: " "), filters: filters, limit: Int.random(in: 1...30, using: &random),
                visibility: random.pick(visibilities), facets: Bool.random(using: &random) || words.isEmpty)
            for page in 0..<2 {
                let a = try await indexed.search(query)
                let b = try await plain.search(query)
                let context = "query \(query.text ?? "") filters \(filters) page \(page)"
                #expect(a.hits.map(\.key) == b.hits.map(\.key), "\(context)")
                #expect(a.hits.map(\.score) == b.hits.map(\.score), "\(context)")
                #expect(a.facets == b.facets, "\(context)")
                #expect(a.nextCursor == b.nextCursor, "\(context)")
                #expect(a.correctedQuery == b.correctedQuery, "\(context)")
                #expect(a.hits.map(\.display) == b.hits.map(\.display), "\(context)")
                if !words.isEmpty, a.correctedQuery == nil {
                    for hit in a.hits { #expect(hit.snippet?.contains("<mark>") == true, "\(context): \(hit.snippet ?? "no snippet")") }
                }
                if page == 0, !a.hits.isEmpty { withHits += 1 }
                if page == 1 { secondPages += 1 }
                guard let next = a.nextCursor else { break }
                query.cursor = next
            }
        }
        return (withHits, secondPages)
    }

    /// The words of the cases' titles and summaries.
    static func vocabulary(_ canonical: SQLiteCanonicalStore) async throws -> [String] {
        var words = Set<String>()
        for row in try await canonical.fetchAll("cases") {
            words.formUnion(SearchText.words(try row.string("title")).filter { $0.count >= 3 })
            words.formUnion(SearchText.words(try row.string("summary")).filter { $0.count >= 3 })
        }
        return words.sorted()
    }

    /// Demo cases in a canonical store, and two search stores on one file: one with a memory
    /// index, and one without (the reference, and the other writer).
    static func stores(cases: Int, seed: UInt64) async throws
        -> (TemporaryDirectory, SQLiteCanonicalStore, indexed: SQLiteSearchStore, plain: SQLiteSearchStore) {
        let scratch = try TemporaryDirectory(prefix: "canon-memory-index")
        let canonical = try SQLiteCanonicalStore(path: scratch.file("canonical.sqlite"), migrations: CasePlatformSchema.migrations)
        _ = try await DemoPlatform(configuration: .init(cases: cases, seed: seed, chunkSize: 200)).seed(into: canonical)
        let file = scratch.file("search.sqlite")
        return (
            scratch, canonical, try SQLiteSearchStore(path: file, projection: CaseSearchProjection(), memoryIndex: .inline),
            try SQLiteSearchStore(path: file, projection: CaseSearchProjection(), memoryIndex: .off)
        )
    }

    static func applyAll(_ store: SQLiteSearchStore, from canonical: SQLiteCanonicalStore) async throws {
        var checkpoint = try await store.checkpoint()
        while true {
            let events = try await canonical.events(after: checkpoint.position, limit: 1000)
            guard let last = events.last else { return }
            let next = Checkpoint(position: last.position, committedAt: last.committedAt)
            try await store.apply(events, from: checkpoint.position, to: next)
            checkpoint = next
        }
    }
}

extension Sequence {
    func asyncFilter(_ keep: (Element) async throws -> Bool) async rethrows -> [Element] {
        var kept: [Element] = []
        for element in self where try await keep(element) { kept.append(element) }
        return kept
    }
}
