import Canon
import CanonEmbedded
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import GRDB
import Synchronization
import Testing

/// Drift injected into real projection files behind the runtime's back is found exactly (key and
/// kind), with no false positives while writes are in flight, and targeted repair converges to 0.
@Suite("Drift detection")
struct DriftTests {
    static let investigator = DemoPlatform.featuredUsers.first { $0.id == "ivan" }!

    static func seeded(_ scratch: TemporaryDirectory, cases: Int) async throws -> EmbeddedPlatform {
        let platform = try EmbeddedPlatform.open(
            scratch.dataDirectory, create: true,
            configuration: .init(
                projections: .init(agent: .init(batchSize: 500, idleWait: .milliseconds(50), heartbeatInterval: .milliseconds(50))), semantic: false))
        _ = try await DemoPlatform(configuration: .init(cases: cases, seed: 11, chunkSize: 250)).seed(into: platform.store)
        return platform
    }

    static func caughtUp(_ platform: EmbeddedPlatform) async throws {
        let head = try await platform.canonical.headPosition()
        for name in ["case-search", "case-timeline"] {
            #expect(try await platform.coordinator.waitUntilApplied(name, position: head, timeout: .seconds(60)), "\(name) caught up")
        }
    }

    static func caseIDs(_ platform: EmbeddedPlatform, count: Int) async throws -> [String] {
        try await platform.canonical.fetchAll("cases", orderBy: [.init("id")], limit: count).map { try $0.string("id") }
    }

    /// Opens and moves cases until told to stop: writes in flight during a check.
    static func writer(_ platform: EmbeddedPlatform, stop: Shared<Bool>) -> Task<Int, any Error> {
        let commands = CaseCommands(store: platform.store)
        return Task {
            var written = 0
            while !stop.withLock({ $0 }) {
                let opened = try await commands.openCase(
                    OpenCaseRequest(title: "In flight \(written)", summary: "written during a drift check", sector: "energy", region: "north", priority: "low"),
                    by: investigator)
                _ = try await commands.transition(opened.id, TransitionRequest(to: "triage", reason: "first look"), by: investigator)
                written += 1
                await Task.yield()
            }
            return written
        }
    }

    @Test func eachKindOfSearchDriftIsFoundExactlyWhileWritingAndRepairConverges() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-drift")
        let platform = try await Self.seeded(scratch, cases: 400)
        let agents = Task { try await platform.coordinator.run() }
        defer { agents.cancel() }
        try await Self.caughtUp(platform)
        let search = try platform.search
        let expectation = try PlatformDrift.expectation(for: search, source: platform.canonical)
        let check = DriftCheck(store: search, expectation: expectation, source: platform.canonical, options: .init(segments: 8, threshold: 16))

        let clean = try await check.run(.full)
        #expect(clean.count == 0, "a clean store: \(clean.differences.prefix(5))")
        #expect(clean.expectedKeys == 400 && clean.storedKeys == 400)

        // Behind the runtime's back: delete a document, add a stray, corrupt one field.
        let ids = try await Self.caseIDs(platform, count: 4)
        let file = try DatabaseQueue(path: search.path)
        try await file.write { db in
            let deleted = try Int64.fetchOne(db, sql: "SELECT id FROM docs WHERE key = ?", arguments: [ids[0]])!
            try db.execute(sql: "DELETE FROM docs_fts WHERE rowid = ?", arguments: [deleted])
            try db.execute(sql: "DELETE FROM doc_display WHERE id = ?", arguments: [deleted])
            try db.execute(sql: "DELETE FROM docs WHERE id = ?", arguments: [deleted])
            let template = try GRDB.Row.fetchOne(db, sql: "SELECT * FROM docs WHERE key = ?", arguments: [ids[1]])!
            try db.execute(
                sql: "INSERT INTO docs (key, team, restricted, clearance, sort_time, last_position, digest) VALUES ('ffffffff-stray', ?, 0, 1, 0, 1, 42)",
                arguments: [template["team"] as String])
            try db.execute(sql: "INSERT INTO docs_fts (rowid, title, parties, summary) VALUES (?, 'stray', '', '')", arguments: [db.lastInsertedRowID])
            let corrupted = try Int64.fetchOne(db, sql: "SELECT id FROM docs WHERE key = ?", arguments: [ids[2]])!
            try db.execute(sql: "UPDATE docs_fts SET title = 'Tampered title' WHERE rowid = ?", arguments: [corrupted])
            // A second row of one key (keys are kept unique by the writer, not by an index): an extra row.
            let original = try Int64.fetchOne(db, sql: "SELECT id FROM docs WHERE key = ?", arguments: [ids[3]])!
            try db.execute(sql: "INSERT INTO docs (key, team, restricted, clearance, sort_time, last_position, digest) SELECT key, team, restricted, clearance, sort_time, last_position, digest FROM docs WHERE id = ?", arguments: [original])
            let copy = db.lastInsertedRowID
            try db.execute(sql: "INSERT INTO docs_fts (rowid, title, parties, summary) SELECT ?, title, parties, summary FROM docs_fts WHERE rowid = ?", arguments: [copy, original])
            try db.execute(sql: "INSERT INTO doc_display (id, display) SELECT ?, display FROM doc_display WHERE id = ?", arguments: [copy, original])
        }
        let expected: [String: DriftKind] = [ids[0]: .missing, "ffffffff-stray": .extra, ids[2]: .stale, ids[3]: .extra]

        // Checked while cases are written and applied: lag is never reported as drift.
        let stop = Shared(false)
        let writes = Self.writer(platform, stop: stop)
        for mode in [DriftMode.full] {
            let report = try await check.run(mode)
            #expect(Dictionary(uniqueKeysWithValues: report.differences.map { ($0.key, $0.kind) }) == expected, "\(report.differences)")
        }
        let repaired = try await check.repair()
        stop.withLock { $0 = true }
        #expect(try await writes.value > 0)
        #expect(Set(repaired.repaired) == Set(expected.keys))
        #expect(repaired.verified.count == 0, "after repair: \(repaired.verified.differences)")

        // Once the writes are applied, the store equals canonical state everywhere, and the
        // repaired document reads as it should.
        try await Self.caughtUp(platform)
        #expect(try await check.run(.full).count == 0)
        #expect(try await search.document(ids[0]) != nil)
        #expect(try await search.document("ffffffff-stray") == nil)
        #expect(try await search.document(ids[2])?.text["title"] != "Tampered title")
        #expect(try await file.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM docs WHERE key = ?", arguments: [ids[3]]) } == 1)
        // Repairing a clean store changes nothing.
        let again = try await check.repair()
        #expect(again.repaired.isEmpty && again.verified.count == 0)
        #expect(try await search.driftSummaries().first { $0.mode == .full }?.differences == 0)
    }

    @Test func timelineDriftIsFoundExactlyAndRepaired() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-drift-timeline")
        let platform = try await Self.seeded(scratch, cases: 200)
        let agents = Task { try await platform.coordinator.run() }
        defer { agents.cancel() }
        try await Self.caughtUp(platform)
        let timeline = try platform.timeline
        let check = DriftCheck(
            store: timeline, expectation: try PlatformDrift.expectation(for: timeline, source: platform.canonical), source: platform.canonical,
            options: .init(segments: 4, threshold: 8))
        #expect(try await check.run(.full).count == 0)

        let ids = try await Self.caseIDs(platform, count: 4)
        let file = try DatabaseQueue(path: timeline.path)
        try await file.write { db in
            try db.execute(sql: "DELETE FROM entries WHERE key = ?", arguments: [ids[0]])
            try db.execute(sql: "INSERT INTO entries (key, position, sequence, at, kind, actor, summary, details, digest) VALUES ('ffffffff-stray', 999999, 0, 0, 'opened', 'x', 'stray', '{}', 7)")
            try db.execute(sql: "UPDATE entries SET summary = 'Tampered' WHERE key = ? AND kind = 'opened'", arguments: [ids[1]])
            // One entry of a case lost (an event that never arrived).
            try db.execute(sql: "DELETE FROM entries WHERE key = ? AND kind != 'opened'", arguments: [ids[2]])
        }
        let expected: [String: DriftKind] = [ids[0]: .missing, "ffffffff-stray": .extra, ids[1]: .stale, ids[2]: .stale]
        let stop = Shared(false)
        let writes = Self.writer(platform, stop: stop)
        let report = try await check.run(.full)
        #expect(Dictionary(uniqueKeysWithValues: report.differences.map { ($0.key, $0.kind) }) == expected, "\(report.differences)")
        // Checking the keys changed since the start finds every key with history; the stray has none.
        let since = try await check.run(.since, since: .start)
        #expect(Set(since.differences.map(\.key)) == Set(expected.keys).subtracting(["ffffffff-stray"]))
        let repaired = try await check.repair()
        stop.withLock { $0 = true }
        _ = try await writes.value
        #expect(repaired.verified.count == 0, "\(repaired.verified.differences)")
        try await Self.caughtUp(platform)
        #expect(try await check.run(.full).count == 0)
        #expect(try await timeline.entries(key: ids[1], limit: 10).first?.summary != "Tampered")
    }

    static let legal = DemoPlatform.featuredUsers.first { $0.role == .legal }!

    /// Moves a case to closed along the state machine, as its team's investigator.
    static func close(_ id: String, in platform: EmbeddedPlatform) async throws {
        let commands = CaseCommands(store: platform.store)
        let item = try #require(try await CaseQueries(store: platform.canonical).cases(ids: [id])[id])
        let path: [CaseStatus] = [.intake, .triage, .investigation, .enforcement, .closed]
        let actor = DemoPlatform.featuredUsers.first { $0.role == .admin }!
        guard var index = path.firstIndex(of: item.status) else { return }
        while index + 1 < path.count {
            index += 1
            _ = try await commands.transition(id, TransitionRequest(to: path[index].rawValue, reason: "towards purge"), by: actor)
        }
    }

    /// A purge reaches every store through the outbox; a purge a store never applied (the
    /// checkpoint moved past it behind the runtime's back) is found as extra by a full check and
    /// listed by the lifecycle audit, and repair removes it.
    @Test func aPurgeReachesEveryStoreAndADroppedPurgeIsFoundAndRepaired() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-purge")
        let platform = try await Self.seeded(scratch, cases: 60)
        let agents = Task { try await platform.coordinator.run() }
        try await Self.caughtUp(platform)
        let ids = try await Self.caseIDs(platform, count: 2)
        let commands = CaseCommands(store: platform.store)
        for id in ids { try await Self.close(id, in: platform) }

        // An open case is refused; a closed one is purged: the rows go, tombstones stay.
        let open = try await commands.openCase(
            OpenCaseRequest(title: "Still open", summary: "", sector: "energy", region: "north", priority: "low"), by: Self.investigator)
        await #expect(throws: DomainError.self) { try await commands.purge(open.id, reason: "too early", by: Self.legal) }
        await #expect(throws: DomainError.self) { try await commands.purge(ids[0], reason: "not mine", by: Self.investigator) }
        let purged = try await commands.purge(ids[0], reason: "retention period over", by: Self.legal)
        #expect(try await CaseQueries(store: platform.canonical).cases(ids: [ids[0]]).isEmpty)
        #expect(try await commands.tombstones(caseID: ids[0]).contains { (try? $0.string("kind")) == "case" })
        for name in ["case-search", "case-timeline"] {
            #expect(try await platform.coordinator.waitUntilApplied(name, position: purged.position, timeout: .seconds(30)))
        }
        #expect(try await platform.search.document(ids[0]) == nil)
        #expect(try await platform.timeline.entries(key: ids[0], limit: 10).isEmpty)
        let audit = LifecycleAudit(source: platform.canonical)
        #expect(try await audit.run(stores: platform.projectionStores).findings.isEmpty)

        // Drop a delete: the search agent is stopped, the purge commits, and the store's
        // checkpoint is moved past it without applying it.
        agents.cancel()
        _ = try? await agents.value
        let dropped = try await commands.purge(ids[1], reason: "retention period over", by: Self.legal)
        try await DatabaseQueue(path: try platform.search.path).write { db in
            try db.execute(sql: "UPDATE canon_checkpoint SET position = ?", arguments: [dropped.position.rawValue])
        }
        let found = try await audit.run(stores: platform.projectionStores)
        #expect(found.violations.map(\.store) == ["case-search"] && found.violations.first?.key == ids[1], "\(found.findings)")
        #expect(found.findings.contains { $0.store == "case-timeline" && $0.pending }, "the timeline has not applied it yet: lag")
        let check = try platform.driftCheck("case-search")
        let report = try await check.run(.full)
        #expect(report.differences == [DriftDifference(key: ids[1], kind: .extra)])
        let repaired = try await check.repair()
        #expect(repaired.verified.count == 0)
        #expect(try await platform.search.document(ids[1]) == nil)
        #expect(try await audit.run(stores: [try platform.search]).findings.isEmpty)
    }

    /// Sampling compares random keys from both sides: a store with drift on every key is found
    /// by any sample, and a clean one never reports any.
    @Test func sampleModeFindsDriftWithoutFalsePositives() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-drift-sample")
        let platform = try await Self.seeded(scratch, cases: 120)
        let agents = Task { try await platform.coordinator.run() }
        defer { agents.cancel() }
        try await Self.caughtUp(platform)
        let search = try platform.search
        let check = DriftCheck(
            store: search, expectation: try PlatformDrift.expectation(for: search, source: platform.canonical), source: platform.canonical,
            options: .init(sampleSize: 20))
        let clean = try await check.run(.sample)
        #expect(clean.count == 0)
        #expect(clean.keysCompared >= 20)
        try await DatabaseQueue(path: search.path).write { db in try db.execute(sql: "UPDATE docs SET f_region = 'nowhere'") }
        let drifted = try await check.run(.sample)
        #expect(drifted.count == drifted.keysCompared && drifted.count >= 20)
        #expect(drifted.differences.allSatisfy { $0.kind == .stale })
    }

    /// Sampling draws canonical keys uniformly over the rows, so documents missing from the
    /// store are found. (Ids are time-ordered: the first key after a random point of the key
    /// space, as it used to draw, was nearly always the oldest, and a store missing half its
    /// documents but not the oldest sampled clean.)
    @Test func sampleModeFindsMissingDocumentsWhateverTheirKeys() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-drift-sample-missing")
        let platform = try await Self.seeded(scratch, cases: 120)
        let agents = Task { try await platform.coordinator.run() }
        try await Self.caughtUp(platform)
        agents.cancel()
        _ = try? await agents.value
        let search = try platform.search
        // Every other document, the oldest kept; the sample of 20 misses them all with odds of
        // about one in a million.
        try await DatabaseQueue(path: search.path).write { db in try db.execute(sql: "DELETE FROM docs WHERE rowid % 2 = 0") }
        let check = DriftCheck(
            store: search, expectation: try PlatformDrift.expectation(for: search, source: platform.canonical), source: platform.canonical,
            options: .init(sampleSize: 20))
        let report = try await check.run(.sample)
        #expect(report.differences.contains { $0.kind == .missing }, "\(report.differences.map(\.kind))")
    }

    /// The continuous sampler records each store's sample result, which its health reads.
    @Test func theSamplerRecordsWhatItFindsAndHealthFollows() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-drift-sampler")
        let platform = try await Self.seeded(scratch, cases: 40)
        let agents = Task { try await platform.coordinator.run() }
        defer { agents.cancel() }
        try await Self.caughtUp(platform)
        let search = try platform.search
        let check = try PlatformDrift.check(search, source: platform.canonical, options: .init(sampleSize: 40))
        let sampler = DriftSampler(interval: .seconds(3600)) { [check] }
        #expect(try #require(await sampler.sampleOnce().first).count == 0)
        try await DatabaseQueue(path: search.path).write { db in try db.execute(sql: "UPDATE docs SET f_sector = 'nowhere'") }
        let report = try #require(await sampler.sampleOnce().first)
        #expect(report.mode == .sample && report.count > 0 && report.differences.allSatisfy { $0.kind == .stale })
        let summary = try #require(try await search.driftSummaries().first)
        #expect(summary.mode == .sample && summary.differences == report.count)
        let statuses = try await platform.coordinator.statuses()
        let health = PortfolioStoreStatus.all(
            in: platform.portfolio, projections: statuses, canonicalHead: try await platform.canonical.headPosition(),
            drift: await NewestDriftChecks.read(platform.projectionStores))
        let searchHealth = try #require(health.first { $0.name == "case-search" })
        #expect(searchHealth.health == .degraded && searchHealth.drift == summary && searchHealth.driftError == nil)

        // A kept check that no longer reads is an error naming the store, and the store shows
        // degraded with why: never as a store with no check.
        try await DatabaseQueue(path: search.path).write { db in try db.execute(sql: "UPDATE canon_drift SET summary = '{\"mode\":'") }
        await #expect(throws: ProjectionError.self) { try await search.driftSummaries() }
        let unreadable = await NewestDriftChecks.read(platform.projectionStores)
        #expect(unreadable.summaries["case-search"] == nil)
        #expect(unreadable.unreadable["case-search"]?.contains("a drift check kept in canon_drift is unreadable") == true)
        let after = PortfolioStoreStatus.all(
            in: platform.portfolio, projections: statuses, canonicalHead: try await platform.canonical.headPosition(), drift: unreadable)
        let corrupt = try #require(after.first { $0.name == "case-search" })
        #expect(corrupt.health == .degraded && corrupt.drift == nil && corrupt.driftError?.contains("canon drift case-search") == true)
    }

    /// The bisection splits and compares ranges key by key only where checksums differ.
    @Test func rangesNarrowToTheDifferingKeys() async throws {
        let keys = (0..<10_000).map { String(format: "k%05d", $0) }
        let base = keys.map { key in
            var digest = DriftDigest()
            digest.add(key)
            return KeyDigest(key: key, digest: digest.value)
        }
        var changed = base
        changed[1234].digest &+= 1
        changed.remove(at: 7000)
        changed.append(KeyDigest(key: "k99999", digest: 5))
        let comparison = try await DriftCheck.compare(InMemoryDriftSide(base), InMemoryDriftSide(changed), options: .init(segments: 16, threshold: 32))
        #expect(comparison.differences == [
            DriftDifference(key: "k01234", kind: .stale), DriftDifference(key: "k07000", kind: .missing), DriftDifference(key: "k99999", kind: .extra),
        ])
        #expect(comparison.storedKeys == 10_000)
        #expect(comparison.keysCompared < 200, "only small ranges were compared key by key: \(comparison.keysCompared)")
    }
}

/// The scale the issue names: a clean store of 100,000 cases reports no drift, by ranges (not
/// key by key), and one changed document among them is found alone.
@Suite("Drift detection at 100,000 cases")
struct DriftAtScaleTests {
    @Test func aCleanStoreOf100000CasesReportsNoDrift() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-drift-100k")
        let platform = try EmbeddedPlatform.open(
            scratch.dataDirectory, create: true, configuration: .init(canonical: .init(synchronous: .normal), semantic: false))
        let investigator = DriftTests.investigator
        _ = try await CaseCommands(store: platform.canonical).registerUser(investigator)
        var random = SeededGenerator(seed: 7)
        let now = Date()
        let cases = 100_000
        for start in stride(from: 0, to: cases, by: 5_000) {
            var batch: [UnitOfWork] = []
            for index in start..<min(cases, start + 5_000) {
                let party = try CaseDecisions.registerParty(
                    RegisterPartyRequest(kind: "organisation", name: "Org \(index % 997)"), id: random.uuid(), by: investigator, at: now, metadata: .system)
                let opened = try CaseDecisions.openCase(
                    OpenCaseRequest(title: "Case \(index)", summary: "Summary \(index)", sector: "energy", region: "north", priority: "low"),
                    id: random.uuid(), by: investigator, at: now, metadata: .system)
                let linked = try CaseDecisions.linkParty(opened.value, party: party.value, role: "subject", existing: [], by: investigator, at: now, metadata: .system)
                batch += [party.work, opened.work, linked.work]
            }
            _ = try await platform.canonical.commit(batch: batch)
        }
        let store = try EmbeddedPlatform.makeStore("case-search", version: 2, in: scratch.dataDirectory) as! SQLiteSearchStore
        while true {
            let checkpoint = try await store.checkpoint()
            let events = try await platform.canonical.events(after: checkpoint.position, limit: 20_000)
            guard let last = events.last else { break }
            try await store.apply(events, from: checkpoint.position, to: Checkpoint(position: last.position, committedAt: last.committedAt))
        }
        let check = try PlatformDrift.check(store, source: platform.canonical)
        let report = try await check.run(.full)
        #expect(report.expectedKeys == cases && report.storedKeys == cases)
        #expect(report.count == 0 && report.lagging == 0)
        #expect(report.keysCompared == 0, "equal checksums settle the whole range at once")

        // One document applied wrong (its digest agrees with it) is found alone, by bisection.
        let key = try #require(try await platform.canonical.fetchAll("cases", orderBy: [.init("id")], limit: 1).first?.string("id"))
        var configuration = GRDB.Configuration()
        configuration.prepareDatabase { db in registerDriftFunctions(db) }
        try await DatabaseQueue(path: store.path, configuration: configuration).write { db in
            try db.execute(sql: "UPDATE docs SET f_priority = 'high' WHERE key = ?", arguments: [key])
            try db.execute(sql: """
                UPDATE docs SET digest = (SELECT \(SQLiteSearchStore.contentDigestSQL(store.schemaForBench)) FROM \(SQLiteSearchStore.contentFrom) WHERE d.key = docs.key)
                WHERE key = ?
                """, arguments: [key])
        }
        let drifted = try await check.run(.full)
        #expect(drifted.differences == [DriftDifference(key: key, kind: .stale)])
        #expect(drifted.keysCompared <= 1_024, "only the last range was compared key by key: \(drifted.keysCompared)")
    }
}
