import Canon
@testable import CanonPostgres
import CanonTesting
import CasePlatform
import Foundation
import PostgresNIO
import Testing

/// Drift injected into real PostgreSQL projection schemas behind the runtime's back is found
/// exactly (key and kind) and repaired, as in the SQLite files (`DriftTests`); the snapshot a check
/// reads holds one state while the agent applies.
@Suite("PostgreSQL drift detection (real server)", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipMessage)))
struct PostgresDriftTests {
    struct Platform {
        let url: PostgresURL
        let canonical: PostgresCanonicalStore
        let search: PostgresSearchStore
        let timeline: PostgresTimelineStore
        /// The connecting (owning) user, for changes behind the stores' back.
        let admin: CanonPostgres.PostgresDatabase
    }

    /// `cases` demo cases committed and applied to both stores.
    static func seeded(cases: Int) async throws -> Platform {
        let url = try await PostgresTestServer.createDatabase()
        let canonical = try await PostgresCanonicalStore(url: url, migrations: CasePlatformSchema.migrations)
        _ = try await DemoPlatform(configuration: .init(cases: cases, seed: 11, chunkSize: 100)).seed(into: canonical)
        let search = try await PostgresSearchStore.open(url: url, projection: CaseSearchProjection())
        let timeline = try await PostgresTimelineStore.open(url: url, projection: CaseTimelineProjection())
        for store in [search, timeline] as [any ProjectionStore] { try await VocabularyScenario.apply(store, from: canonical) }
        return Platform(url: url, canonical: canonical, search: search, timeline: timeline, admin: CanonPostgres.PostgresDatabase(url: url, maximumConnections: 1))
    }

    static func caseIDs(_ canonical: any CanonicalStore, count: Int) async throws -> [String] {
        try await canonical.fetchAll("cases", orderBy: [.init("id")], limit: count).map { try $0.string("id") }
    }

    static func kinds(_ report: DriftReport) -> [String: DriftKind] {
        Dictionary(uniqueKeysWithValues: report.differences.map { ($0.key, $0.kind) })
    }

    @Test func eachKindOfSearchDriftIsFoundExactlyAndRepairConverges() async throws {
        let platform = try await Self.seeded(cases: 120)
        defer { platform.admin.close() }
        let check = try PlatformDrift.check(platform.search, source: platform.canonical, options: .init(segments: 4, threshold: 8, sampleSize: 500))

        let clean = try await check.run(.full)
        #expect(clean.count == 0, "a clean store: \(clean.differences.prefix(5))")
        #expect(clean.expectedKeys == 120 && clean.storedKeys == 120)
        #expect(clean.rangesCompared == 1, "equal checksums settle the whole key range at once")

        // Behind the runtime's back: a document deleted, a stray one, a field changed in place
        // (its kept digest left as it was), and a kept digest that no longer matches.
        let ids = try await Self.caseIDs(platform.canonical, count: 4)
        let docs = "case_search_v1.docs"
        try await platform.admin.execute("DELETE FROM \(docs) WHERE key = '\(ids[0])'")
        let columns = "team, restricted, clearance, sort_time, last_position, digest, display, tsv, t_title, t_parties, t_summary"
        try await platform.admin.execute("INSERT INTO \(docs) (key, \(columns)) SELECT 'ffffffff-stray', \(columns) FROM \(docs) WHERE key = '\(ids[1])'")
        try await platform.admin.execute("UPDATE \(docs) SET t_title = 'Tampered title' WHERE key = '\(ids[2])'")
        try await platform.admin.execute("UPDATE \(docs) SET digest = digest # 1 WHERE key = '\(ids[3])'")
        let expected: [String: DriftKind] = [ids[0]: .missing, "ffffffff-stray": .extra, ids[2]: .stale, ids[3]: .stale]

        let full = try await check.run(.full)
        #expect(Self.kinds(full) == expected, "\(full.differences)")
        #expect(full.differences.first { $0.key == ids[2] }?.detail == "stored content changed after it was applied")
        #expect(full.rangesCompared > 1 && full.keysCompared < 120, "mismatching ranges narrow: \(full.rangesCompared) ranges, \(full.keysCompared) keys")
        // Sampling every key compares content with what canonical state says: the kept digest
        // alone (ids[3]) is the full check's business.
        let sampled = try await check.run(.sample)
        #expect(Self.kinds(sampled) == [ids[0]: .missing, "ffffffff-stray": .extra, ids[2]: .stale], "\(sampled.differences)")
        let since = try await check.run(.since, since: .start)
        #expect(Self.kinds(since) == [ids[0]: .missing, ids[2]: .stale], "every case's key, compared by content: \(since.differences)")

        let repaired = try await check.repair()
        #expect(Set(repaired.repaired) == Set(expected.keys))
        #expect(repaired.verified.count == 0, "after repair: \(repaired.verified.differences)")
        #expect(try await platform.search.document(ids[0]) != nil)
        #expect(try await platform.search.document("ffffffff-stray") == nil)
        #expect(try await platform.search.document(ids[2])?.text["title"] != "Tampered title")
        let again = try await check.repair()
        #expect(again.repaired.isEmpty && again.verified.count == 0, "repairing a clean store changes nothing")
        let summaries = try await platform.search.driftSummaries()
        #expect(summaries.first { $0.mode == .full }?.differences == 0)
        #expect(summaries.first { $0.mode == .sample }?.differences == 3, "each mode's last result is kept")
    }

    @Test func timelineDriftIsFoundExactlyAndRepaired() async throws {
        let platform = try await Self.seeded(cases: 60)
        defer { platform.admin.close() }
        let check = try PlatformDrift.check(platform.timeline, source: platform.canonical, options: .init(segments: 4, threshold: 8))
        #expect(try await check.run(.full).count == 0)

        let entries = "case_timeline_v1.entries"
        // Cases with more than one entry: one of them deleted leaves the key, changed.
        let ids = try await platform.admin.rows("SELECT key FROM \(entries) GROUP BY key HAVING count(*) > 1 ORDER BY key LIMIT 3").map {
            try $0.decode(String.self)
        }
        try #require(ids.count == 3)
        // One entry of a case gone, one entry's summary changed in place, a stray key's entry.
        try await platform.admin.execute(
            "DELETE FROM \(entries) WHERE (position, sequence) = (SELECT position, sequence FROM \(entries) WHERE key = '\(ids[0])' ORDER BY position LIMIT 1)")
        try await platform.admin.execute("UPDATE \(entries) SET summary = 'Rewritten' WHERE key = '\(ids[1])'")
        try await platform.admin.execute(
            "INSERT INTO \(entries) SELECT 'ffffffff-stray', 999999, 0, at, kind, actor, summary, details, digest FROM \(entries) WHERE key = '\(ids[2])' LIMIT 1")
        let expected: [String: DriftKind] = [ids[0]: .stale, ids[1]: .stale, "ffffffff-stray": .extra]
        let found = try await check.run(.full)
        #expect(Self.kinds(found) == expected, "\(found.differences)")

        let repaired = try await check.repair()
        #expect(Set(repaired.repaired) == Set(expected.keys))
        #expect(repaired.verified.count == 0, "after repair: \(repaired.verified.differences)")
        let rows = try await platform.admin.integer("SELECT count(*) FROM \(entries) WHERE key = 'ffffffff-stray' OR summary = 'Rewritten'")
        #expect(rows == 0)
    }

    /// Expected digests are kept between checks in `canon_drift_cache`, apart from the store: a
    /// second check recomputes only the keys whose canonical version moved, and the projection's
    /// role cannot read or write the cache.
    @Test func theCacheKeepsExpectedDigestsApartFromTheStore() async throws {
        let platform = try await Self.seeded(cases: 40)
        defer { platform.admin.close() }
        let cache = PostgresDigestCache(url: platform.url, identity: platform.search.identity)
        let check = try PlatformDrift.check(platform.search, source: platform.canonical, cache: cache)
        let cold = try await check.run(.full)
        #expect(cold.count == 0 && cold.expectedRecomputed == 40)
        let warm = try await check.run(.full)
        #expect(warm.count == 0 && warm.expectedRecomputed == 0, "every expected digest from the cache")

        let id = try await Self.caseIDs(platform.canonical, count: 1)[0]
        let ada = try #require(DemoPlatform.featuredUsers.first { $0.id == "ada" })
        let current = try #require(try await CaseQueries(store: platform.canonical).cases(ids: [id])[id])
        let team = current.team == "financial-crime" ? "consumer-protection" : "financial-crime"
        _ = try await CaseCommands(store: platform.canonical).changeTeam(id, TeamChangeRequest(team: team, reason: "moved"), by: ada)
        try await VocabularyScenario.apply(platform.search, from: platform.canonical)
        let moved = try await check.run(.full)
        #expect(moved.count == 0 && moved.expectedRecomputed == 1, "only the changed case is recomputed")

        // Outside the projection's schema, where its role (the store's connections) cannot reach.
        #expect(cache.table == "canon_drift_cache.case_search_v1")
        await #expect(throws: (any Error).self) {
            try await platform.admin.transaction { transaction in
                try await transaction.execute("SET LOCAL ROLE canon_case_search_v1")
                _ = try await transaction.rows("SELECT count(*) FROM \(cache.table)")
            }
        }
        #expect(try await platform.admin.integer("SELECT count(*) FROM \(cache.table)") == 40)
    }

    /// Every range of one check reads one state: writes the agent applies after the snapshot is
    /// taken are not seen by it (they are lag to the check), and a closed snapshot answers with
    /// an error instead of waiting.
    @Test func aSnapshotReadsOneStateWhileTheAgentApplies() async throws {
        let platform = try await Self.seeded(cases: 30)
        defer { platform.admin.close() }
        let snapshot = try await platform.search.driftSnapshot()
        let before = try await snapshot.checksum(.all)
        #expect(before.count == 30)

        let commands = CaseCommands(store: platform.canonical)
        let ivan = DemoPlatform.featuredUsers.first { $0.id == "ivan" }!
        for index in 0..<5 {
            _ = try await commands.openCase(
                OpenCaseRequest(title: "After the snapshot \(index)", summary: "s", sector: "energy", region: "north", priority: "low"), by: ivan)
        }
        try await VocabularyScenario.apply(platform.search, from: platform.canonical)
        #expect(try await platform.search.count() == 35)

        // A document changed in place after the snapshot: the snapshot's content scan (on a
        // connection of its own, importing the snapshot) does not see it; a new snapshot does.
        let changed = try await Self.caseIDs(platform.canonical, count: 1)[0]
        try await platform.admin.execute("UPDATE case_search_v1.docs SET t_title = 'Changed later' WHERE key = '\(changed)'")
        #expect(try await snapshot.checksum(.all) == before, "the snapshot still reads the state it was taken at")
        #expect(try await snapshot.digests(.all).count == 30)
        #expect(try await snapshot.tampered().isEmpty)
        let applied = try await platform.search.checkpoint().position
        #expect(snapshot.checkpoint < applied)
        snapshot.close()
        await #expect(throws: ProjectionError.self) { _ = try await snapshot.checksum(.all) }

        let later = try await platform.search.driftSnapshot()
        defer { later.close() }
        #expect(try await later.checksum(.all).count == 35)
        #expect(try await later.tampered() == [changed])
    }
}
