import Canon
import CanonEmbedded
import CanonSQLite
import CanonTesting
import CasePlatform
import Embeddings
import Foundation
import GRDB
import Synchronization
import Testing

@Suite("Blue-green rebuild")
struct BlueGreenRebuildTests {
    /// The demo's investigator (the demo registers it).
    static let investigator = DemoPlatform.featuredUsers.first { $0.id == "ivan" }!

    static func seededPlatform(_ scratch: TemporaryDirectory, cases: Int = 150) async throws -> EmbeddedPlatform {
        let platform = try EmbeddedPlatform.open(
            scratch.dataDirectory, create: true,
            configuration: .init(projections: .init(agent: .init(batchSize: 200, idleWait: .milliseconds(50), heartbeatInterval: .milliseconds(50)))))
        _ = try await DemoPlatform(configuration: .init(cases: cases, seed: 5, chunkSize: 50)).seed(into: platform.store)
        return platform
    }

    @Test func rebuildWhileReadingAndWritingNeverServesAnEmptyIndexAndEndsEqualToAFreshProjection() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-rebuild")
        let platform = try await Self.seededPlatform(scratch)
        let agents = Task { try await platform.coordinator.run() }
        defer { agents.cancel() }
        let seeded = try await platform.canonical.headPosition()
        #expect(try await platform.coordinator.waitUntilApplied("case-search", position: seeded, timeout: .seconds(60)))

        let done = Shared(false)
        let reads = Shared((count: 0, empty: 0, failed: 0))
        // The rebuild starts once both loops are running, however busy the machine is.
        let readsMade = PositionWaiters(), writesMade = PositionWaiters()
        let reader = Task {
            while !done.withLock({ $0 }) {
                do {
                    let store = try platform.coordinator.store(named: "case-search") as! any SearchStore
                    let results = try await store.search(SearchQuery(limit: 5, facets: false))
                    reads.withLock { $0.count += 1; if results.hits.isEmpty { $0.empty += 1 } }
                } catch {
                    reads.withLock { $0.failed += 1 }
                }
                readsMade.advance(to: OutboxPosition(Int64(reads.withLock { $0.count + $0.failed })))
                await Task.yield()
            }
        }
        let commands = CaseCommands(store: platform.store)
        let writer = Task {
            var written = 0
            while !done.withLock({ $0 }) && written < 400 {
                _ = try await commands.openCase(
                    OpenCaseRequest(title: "Written during rebuild \(written)", summary: "", sector: "energy", region: "north", priority: "low"),
                    by: Self.investigator)
                written += 1
                writesMade.advance(to: OutboxPosition(Int64(written)))
            }
            return written
        }
        #expect(await readsMade.wait(until: OutboxPosition(1), timeout: .seconds(30)), "the reader runs")
        #expect(await writesMade.wait(until: OutboxPosition(1), timeout: .seconds(30)), "the writer runs")

        let report = try await platform.rebuild("case-search", chunkSize: 300)
        done.withLock { $0 = true }
        _ = await reader.value
        let written = try await writer.value

        #expect(report.matches)
        #expect(report.projection == ProjectionIdentity(name: "case-search", version: 2))
        #expect(try platform.coordinator.store(named: "case-search").identity.version == 2)
        #expect(try ProjectionCatalog.load(from: scratch.dataDirectory).projections["case-search"] == .init(
            live: 2, previous: 1, building: nil, lastRebuildSeconds: report.seconds))
        let counts = reads.withLock { $0 }
        #expect(counts.count > 0)
        #expect(counts.failed == 0, "no read failed (of \(counts.count + counts.failed))")
        #expect(counts.empty == 0, "no read saw an empty index (of \(counts.count))")
        #expect(written > 0)

        // Afterwards the live version holds exactly what a fresh projection of the canonical state holds.
        let head = try await platform.canonical.headPosition()
        #expect(try await platform.coordinator.waitUntilApplied("case-search", position: head, timeout: .seconds(60)))
        let freshDirectory = try TemporaryDirectory(prefix: "canon-fresh")
        let fresh = try EmbeddedPlatform.makeStore("case-search", version: 1, in: freshDirectory.dataDirectory)
        let built = try await ProjectionRebuild(source: platform.canonical, live: fresh, next: fresh).run(compareAttempts: 1)
        #expect(built.comparedAt == head)
        let liveSummary = try await platform.coordinator.store(named: "case-search").contentSummary()
        let freshSummary = try await fresh.contentSummary()
        #expect(liveSummary == freshSummary)
        #expect(liveSummary.rows == (try await platform.canonical.count("cases", filter: [:])))
    }

    /// Cancelled (as `canon rebuild` is by SIGTERM), a rebuild stops before its next chunk with
    /// the chunk in flight committed, switches nothing, and the next run resumes from there.
    @Test func aCancelledRebuildStopsBetweenChunksAndTheNextRunResumes() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-rebuild-cancel")
        let platform = try await Self.seededPlatform(scratch)
        let head = try await platform.canonical.headPosition()
        let stoppedAt = Mutex<OutboxPosition?>(nil)
        let rebuild = Task {
            try await platform.rebuild("case-timeline", chunkSize: 50) { progress in
                guard progress.phase == .building else { return }
                stoppedAt.withLock { $0 = $0 ?? progress.position }
                withUnsafeCurrentTask { $0?.cancel() }
            }
        }
        await #expect(throws: CancellationError.self) { try await rebuild.value }
        let stopped = try #require(stoppedAt.withLock { $0 })
        #expect(stopped < head)
        #expect(try platform.coordinator.store(named: "case-timeline").identity.version == 1, "nothing was switched")
        #expect(try ProjectionCatalog.load(from: scratch.dataDirectory).projections["case-timeline"]?.building == 2)
        do {
            let partial = try EmbeddedPlatform.makeStore("case-timeline", version: 2, in: scratch.dataDirectory)
            #expect(try await partial.checkpoint().position == stopped, "the chunk in flight committed, and nothing after it")
        }

        let resumedAt = Mutex<OutboxPosition?>(nil)
        let report = try await platform.rebuild("case-timeline", chunkSize: 50) { progress in
            resumedAt.withLock { $0 = $0 ?? progress.position }
        }
        #expect(report.matches)
        #expect(report.projection == ProjectionIdentity(name: "case-timeline", version: 2))
        // Started over, its first chunk would have ended where the first run's did.
        #expect(try #require(resumedAt.withLock { $0 }) > stopped, "the second run resumed from the first one's checkpoint")
        #expect(try platform.coordinator.store(named: "case-timeline").identity.version == 2)
    }

    /// A live store that drifted is what a rebuild repairs: the new version differs from it, a full
    /// drift check finds the new version equal to canonical state, and it is switched in. The
    /// deleted entries are back; nothing else changed.
    @Test func aRebuildReplacesADriftedLiveStoreOnceTheNewVersionMatchesCanonicalState() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-rebuild-drifted")
        let platform = try await Self.seededPlatform(scratch, cases: 40)
        let agents = Task { try await platform.coordinator.run() }
        defer { agents.cancel() }
        let head = try await platform.canonical.headPosition()
        #expect(try await platform.coordinator.waitUntilApplied("case-timeline", position: head, timeout: .seconds(60)))
        let key = try #require(try await platform.canonical.fetchAll("cases", orderBy: [.init("id")], limit: 1).first?.string("id"))
        let entries = try await platform.timeline.entries(key: key, limit: 100).count
        #expect(entries > 0)
        try await DatabaseQueue(path: platform.timeline.path).write { db in try db.execute(sql: "DELETE FROM entries WHERE key = ?", arguments: [key]) }
        #expect(try await platform.timeline.entries(key: key, limit: 100).isEmpty)

        let report = try await platform.rebuild("case-timeline")
        #expect(!report.matches && report.canonicalDifferences == 0)
        #expect(report.liveRows == report.rows - entries)
        #expect(try platform.coordinator.store(named: "case-timeline").identity.version == 2)
        #expect(try await platform.timeline.entries(key: key, limit: 100).count == entries, "the drifted entries are back")
        let check = try PlatformDrift.check(try platform.coordinator.store(named: "case-timeline"), source: platform.canonical)
        #expect(try await check.run(.full).count == 0)
        // How long it took is kept with the switch, for `canon_rebuild_duration_seconds`.
        #expect(EmbeddedPlatform.rebuildSeconds(in: scratch.dataDirectory)["case-timeline"] == report.seconds)
    }

    @Test func rollbackSwitchesBackAndThePreviousVersionCatchesUpAndPruneRemovesIt() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-rollback")
        let platform = try await Self.seededPlatform(scratch, cases: 40)
        let agents = Task { try await platform.coordinator.run() }
        defer { agents.cancel() }
        _ = try await platform.rebuild("case-timeline")
        #expect(try platform.coordinator.store(named: "case-timeline").identity.version == 2)

        let later = try await CaseCommands(store: platform.store).openCase(
            OpenCaseRequest(title: "After the switch", summary: "", sector: "energy", region: "north", priority: "low"), by: Self.investigator)
        let back = try await platform.rollback("case-timeline")
        #expect(back.version == 1)
        #expect(try await platform.coordinator.waitUntilApplied("case-timeline", position: later.position, timeout: .seconds(60)))
        #expect(try await platform.timeline.entries(key: later.id, limit: 10).count == 1, "the old version caught up from its checkpoint")

        let removed = try platform.prune("case-timeline")
        #expect(removed.contains("case-timeline.v2.sqlite"))
        #expect(!FileManager.default.fileExists(atPath: scratch.dataDirectory.databaseFile(for: "case-timeline.v2").path))
        await #expect(throws: EmbeddedPlatformError.self) { try await platform.rollback("case-timeline") }
    }

    /// A previous version whose file is gone (removed by hand, or a prune stopped half-way) is
    /// not rolled back to: that opened an empty store and made it live. And a catalog that exists
    /// but cannot be read is an error, not an empty catalog (every projection at version 1, which
    /// the next rebuild saved).
    @Test func noRollbackToAMissingVersionAndNoEmptyCatalogForAnUnreadableOne() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-rollback-missing")
        let platform = try await Self.seededPlatform(scratch, cases: 10)
        let agents = Task { try await platform.coordinator.run() }
        defer { agents.cancel() }
        _ = try await platform.rebuild("case-timeline")
        let v1 = scratch.dataDirectory.databaseFile(for: "case-timeline.v1")
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: v1.path + suffix) }
        let refused = await #expect(throws: EmbeddedPlatformError.self) { try await platform.rollback("case-timeline") }
        #expect(refused?.message.contains("has no file") == true)
        #expect(try ProjectionCatalog.load(from: scratch.dataDirectory).projections["case-timeline"]?.live == 2, "still live: version 2")
        #expect(!FileManager.default.fileExists(atPath: v1.path), "no empty version 1 was made")

        let catalog = scratch.dataDirectory.url.appendingPathComponent("projections.json")
        try FileManager.default.removeItem(at: catalog)
        try FileManager.default.createDirectory(at: catalog, withIntermediateDirectories: false)
        let unreadable = #expect(throws: EmbeddedPlatformError.self) { try ProjectionCatalog.load(from: scratch.dataDirectory) }
        #expect(unreadable?.message.contains("cannot be read") == true)
    }

    /// A projection file opened as another projection or version (copied or renamed by hand)
    /// is refused, naming what it holds, and so is a file written by a newer Canon: both opened
    /// without a word, and the first was folded into as the wrong store.
    @Test func aProjectionFileOfAnotherIdentityOrANewerCanonIsRefused() throws {
        let scratch = try TemporaryDirectory(prefix: "canon-identity")
        let path = scratch.file("store.sqlite")
        _ = try SQLiteTimelineStore(path: path, projection: CaseTimelineProjection())
        let wrong = #expect(throws: ProjectionError.self) { _ = try SQLiteSearchStore(path: path, projection: CaseSearchProjection()) }
        #expect(wrong?.message.contains("holds projection case-timeline@1") == true, "\(wrong?.message ?? "")")
        _ = try SQLiteTimelineStore(path: path, projection: CaseTimelineProjection())

        let queue = try DatabaseQueue(path: path)
        try queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations VALUES ('canon.projection.v99-future')") }
        try queue.close()
        let newer = #expect(throws: ProjectionError.self) { _ = try SQLiteTimelineStore(path: path, projection: CaseTimelineProjection()) }
        #expect(newer?.message.contains("written by a newer version of Canon") == true, "\(newer?.message ?? "")")
    }

    /// The runtime obeys the portfolio's `embedding` declaration: a model other than the declared
    /// one is not served (the semantic store reports why), and a rebuild with one is refused.
    @Test(.enabled(if: modelInstalled, "run scripts/setup-model to install the model"))
    func aModelOtherThanTheDeclaredOneIsNeitherServedNorRebuiltWith() async throws {
        let declared = PlatformPortfolio.yaml.replacingOccurrences(of: "dimensions: 384", with: "dimensions: 768")
        let portfolio = try Portfolio.load(yaml: declared, file: "portfolio.yaml").requireValid()
        let scratch = try TemporaryDirectory(prefix: "canon-undeclared-model")
        let platform = try EmbeddedPlatform.open(scratch.dataDirectory, create: true, configuration: .init(portfolio: portfolio))
        let reason = try #require(platform.semanticUnavailable)
        #expect(reason.contains("not the one the portfolio declares for evidence-semantic (384 dimensions, declared 768)"), "\(reason)")
        #expect(!platform.coordinator.agents.contains { $0.identity.name == "evidence-semantic" })

        let shipped = try EmbeddedPlatform.open(scratch.dataDirectory, create: false)
        #expect(shipped.semanticUnavailable == nil, "the shipped portfolio declares the installed model")
        #expect(shipped.coordinator.agents.contains { $0.identity.name == "evidence-semantic" })
    }

    static var modelInstalled: Bool { FileManager.default.fileExists(atPath: SentenceEmbedder.defaultDirectory + "/model.safetensors") }

    /// A model change: the semantic store is rebuilt with the model in another directory, beside
    /// the live version, and the catalog records the new version's model for every process.
    @Test(.enabled(if: modelInstalled, "run scripts/setup-model to install the model"))
    func aSemanticRebuildWithAnotherModelDirectoryIsBlueGreenAndRecordedInTheCatalog() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-model-change")
        let platform = try await Self.seededPlatform(scratch, cases: 40)
        // The "new" model: the same files under another directory (a real change would have other weights).
        let other = scratch.url.appendingPathComponent("model-b")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        for file in ["model.safetensors", "vocab.txt"] {
            try FileManager.default.createSymbolicLink(
                atPath: other.appendingPathComponent(file).path, withDestinationPath: SentenceEmbedder.defaultDirectory + "/" + file)
        }
        let report = try await platform.rebuild("evidence-semantic", model: other.path, chunkSize: 500)
        #expect(report.matches)
        #expect(report.projection.version == 2 && report.replacing.version == 1)
        #expect(report.rows > 0, "the demo seeds evidence")
        let catalog = try ProjectionCatalog.load(from: scratch.dataDirectory)
        #expect(catalog.projections["evidence-semantic"]?.live == 2)
        #expect(catalog.projections["evidence-semantic"]?.model(for: 2) == other.path)
        let live = try #require(try platform.coordinator.store(named: "evidence-semantic") as? SQLiteVectorStore)
        #expect(live.identity.version == 2)
        #expect(live.count == report.rows)
        // A missing model directory is a clear error, and nothing is switched.
        await #expect(throws: EmbeddingError.self) {
            _ = try await platform.rebuild("evidence-semantic", model: scratch.file("nowhere"))
        }
        #expect(try ProjectionCatalog.load(from: scratch.dataDirectory).projections["evidence-semantic"]?.live == 2)
    }

    @Test func anInterruptedRebuildResumesTheSameVersionFromItsCheckpoint() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-resume")
        let platform = try await Self.seededPlatform(scratch, cases: 30)
        let head = try await platform.canonical.headPosition()
        let caughtUp = try await ProjectionRebuild(source: platform.canonical, live: platform.search, next: platform.search).run(compareAttempts: 1)
        #expect(caughtUp.comparedAt == head)
        // A rebuild that stopped after its first chunk: version 2 recorded as building, half applied.
        var catalog = ProjectionCatalog()
        catalog.projections["case-search"] = .init(live: 1, previous: nil, building: 2)
        try catalog.save(to: scratch.dataDirectory)
        let partial = try EmbeddedPlatform.makeStore("case-search", version: 2, in: scratch.dataDirectory)
        let firstChunk = try await platform.canonical.events(after: .start, limit: Int(head.rawValue / 2))
        try await partial.apply(firstChunk, from: .start, to: Checkpoint(position: firstChunk.last!.position, committedAt: firstChunk.last!.committedAt))

        let phases = Shared<[OutboxPosition]>([])
        let report = try await platform.rebuild("case-search", chunkSize: 1_000) { progress in
            if progress.phase == .building { phases.withLock { $0.append(progress.position) } }
        }
        #expect(report.projection.version == 2, "the recorded version is resumed, not a new one started")
        #expect(report.matches)
        #expect(phases.withLock { $0.allSatisfy { $0 > firstChunk.last!.position } }, "building continued after the committed chunk")
    }
}

extension BlueGreenRebuildTests {
    /// Case search is built from one snapshot of the canonical tables. A build that stopped after
    /// its first chunk resumes from a newer snapshot for the keys after its cursor; the catch-up
    /// then applies to each key exactly the events its snapshot did not hold.
    @Test func aBuildFromStateThatStoppedResumesFromANewerSnapshotAndEqualsTheWholeOutbox() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-state-build")
        let platform = try await Self.seededPlatform(scratch, cases: 60)
        let admin = try #require(DemoPlatform.featuredUsers.first { $0.role == .admin })
        var catalog = ProjectionCatalog()
        catalog.projections["case-search"] = .init(live: 1, previous: nil, building: 2)
        try catalog.save(to: scratch.dataDirectory)
        let partial = try #require(try EmbeddedPlatform.makeStore("case-search", version: 2, in: scratch.dataDirectory) as? any StateBuildableStore)
        let state = CaseSearchState(projection: CaseSearchProjection(version: 2))
        let snapshot = try await platform.canonical.snapshot()
        try await partial.beginStateBuild(at: snapshot.head)
        let (first, next) = try await state.documents(in: snapshot, after: nil, limit: 20)
        let cursor = try #require(next)
        try await partial.writeState(first, through: cursor)
        #expect(try await partial.checkpoint().position == snapshot.head)
        #expect(try await partial.stateBuild() == StateBuildProgress(cursor: cursor, complete: false))

        // Meanwhile: cases on both sides of the cursor change, a case opens, and a closed case
        // past the cursor is purged.
        let commands = CaseCommands(store: platform.store)
        let ids = try await platform.canonical.fetchAll("cases", orderBy: [.init("id")]).map { try $0.string("id") }
        let early = try #require(ids.first), late = try #require(ids.last { $0 > cursor })
        let party = try #require(try await platform.canonical.fetchAll("parties", limit: 1).first).string("id")
        for id in [early, late] {
            _ = try await commands.linkParty(id, LinkPartyRequest(partyID: party, role: "witness"), by: admin)
            _ = try await commands.restrict(id, RestrictionRequest(restricted: true, reason: "rebuild test", clearance: 3), by: admin)
        }
        let opened = try await commands.openCase(
            OpenCaseRequest(title: "Opened while the build was stopped", summary: "", sector: "energy", region: "north", priority: "low"),
            by: Self.investigator)
        let closed = try await platform.canonical.fetchAll("cases", where: ["status": .text("closed")], orderBy: [.init("id")])
            .map { try $0.string("id") }.filter { $0 > cursor }
        var purged: String?
        for id in closed where purged == nil {
            do {
                _ = try await commands.purge(id, reason: "retention ended", by: admin)
                purged = id
            } catch is DomainError {
                continue  // under legal hold
            }
        }
        #expect(purged != nil, "a closed case past the cursor could be purged")

        let records = Shared<Int>(0)
        let report = try await platform.rebuild("case-search", chunkSize: 50) { progress in
            if let done = progress.records?.done { records.withLock { $0 = done } }
        }
        #expect(report.projection.version == 2, "the recorded build is resumed")
        #expect(report.matches)
        let read = records.withLock { $0 }
        #expect(read > 0 && read <= ids.count - 20 + 1, "the resumed build read only the keys after its cursor (\(read))")

        // What a fold of the whole outbox gives.
        let freshDirectory = try TemporaryDirectory(prefix: "canon-fresh")
        let fresh = try EmbeddedPlatform.makeStore("case-search", version: 1, in: freshDirectory.dataDirectory)
        _ = try await ProjectionRebuild(source: platform.canonical, live: fresh, next: fresh).run(compareAttempts: 1)
        let live = try #require(try platform.coordinator.store(named: "case-search") as? SQLiteSearchStore)
        #expect(try await live.contentSummary() == (try await fresh.contentSummary()))
        #expect(try await live.document(opened.id) != nil)
        #expect(try await live.document(purged ?? "") == nil)
        #expect(try await live.document(late)?.restricted == true)
        let lastKey = (ids + [opened.id]).filter { $0 != purged }.max()
        #expect(try await partial.stateBuild() == StateBuildProgress(cursor: lastKey, complete: true))
    }

    @Test func aStoreThatHoldsEventsAlreadyIsNotBuiltFromState() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-state-refused")
        let platform = try await Self.seededPlatform(scratch, cases: 10)
        let store = try #require(try EmbeddedPlatform.makeStore("case-search", version: 5, in: scratch.dataDirectory) as? any StateBuildableStore)
        let events = try await platform.canonical.events(after: .start, limit: 10)
        try await store.apply(events, from: .start, to: Checkpoint(position: events.last!.position, committedAt: nil))
        await #expect(throws: ProjectionError.self) { try await store.beginStateBuild(at: OutboxPosition(100)) }
        await #expect(throws: ProjectionError.self) { try await store.writeState([], through: "z") }
        #expect(try await store.stateBuild() == nil)
    }
}

/// A value shared between a test and the tasks it starts.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>

    init(_ value: Value) { self.value = Mutex(value) }

    func withLock<Result: Sendable>(_ body: (inout Value) -> Result) -> Result { value.withLock { body(&$0) } }
}
