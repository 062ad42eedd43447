import Canon
import CanonEmbedded
import CanonPostgres
import CanonTesting
import CasePlatform
import Foundation
import Synchronization
import Testing

/// Blue-green rebuilds on PostgreSQL: the next version is built in a schema of its own while the
/// live one serves and its agent applies, and the switch reaches every process on the database.
/// Three platforms on one database stand for three processes: a worker that runs the agents, a
/// server that runs none, and `canon rebuild`.
@Suite("Blue-green rebuild on PostgreSQL", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipMessage)))
struct PostgresRebuildTests {
    static let investigator = User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2)

    static var fast: ProjectionCoordinator.Configuration {
        var projections = PostgresPlatform.Configuration.defaultProjections
        projections.agent.heartbeatInterval = .milliseconds(50)
        projections.agent.idleWait = .milliseconds(50)
        projections.leaseInterval = .milliseconds(50)
        return projections
    }

    struct Processes {
        let worker: PostgresPlatform
        let server: PostgresPlatform
        let running: [Task<Void, any Error>]

        func stop() async {
            for task in running { task.cancel() }
            for task in running { _ = await task.result }
            for platform in [worker, server] { await platform.leases.close() }
        }
    }

    static func start(_ url: PostgresURL) async throws -> Processes {
        // They read the live versions only when a switch is announced: the test sees the
        // announcement arrive, not the timer.
        var workerConfiguration = PostgresPlatform.Configuration(projections: fast)
        workerConfiguration.versionPollInterval = .seconds(3600)
        var serverConfiguration = PostgresPlatform.Configuration(runAgents: false)
        serverConfiguration.versionPollInterval = .seconds(3600)
        let worker = try await PostgresPlatform.open(url: url, configuration: workerConfiguration)
        let server = try await PostgresPlatform.open(url: url, configuration: serverConfiguration)
        let running = worker.backgroundServices.map { service in Task { try await service.run() } }
            + server.backgroundServices.map { service in Task { try await service.run() } }
        return Processes(worker: worker, server: server, running: running)
    }

    /// Runs `body` with a worker and a server on a new database, and stops them on every path.
    static func withProcesses(_ body: (PostgresURL, Processes) async throws -> Void) async throws {
        let url = try await PostgresTestServer.createDatabase()
        let processes = try await start(url)
        do {
            try await body(url, processes)
        } catch {
            await processes.stop()
            throw error
        }
        await processes.stop()
    }

    /// Waits until `platform` (one process) shows `condition`, re-checking each time its
    /// follower has read the versions, at most 30 s.
    static func eventually(_ what: String, following platform: PostgresPlatform, _ condition: () async throws -> Bool) async throws {
        guard try await waitUntil(wakingOn: platform.follower.activity, timeout: .seconds(30), condition) else {
            Issue.record("timed out waiting until \(what)")
            throw CancellationError()
        }
    }

    /// The investigator and `count` cases, applied by both projections.
    static func seed(_ count: Int, on server: PostgresPlatform) async throws -> CaseCommands {
        let commands = CaseCommands(store: server.store)
        _ = try await commands.registerUser(investigator)
        try await openCases(count, commands, title: "Seeded")
        let head = try await server.canonical.headPosition()
        for name in PostgresPlatform.projectionNames {
            #expect(try await server.coordinator.waitUntilApplied(name, position: head, timeout: .seconds(60)), "\(name) applies the seeded cases")
        }
        return commands
    }

    static func openCases(_ count: Int, _ commands: CaseCommands, title: String) async throws {
        for index in 0..<count {
            _ = try await commands.openCase(
                OpenCaseRequest(title: "\(title) \(index)", summary: "", sector: "energy", region: "north", priority: "low"), by: investigator)
        }
    }

    @Test func aRebuildWhileReadingAndWritingSwitchesEveryProcessAndEndsEqualToAFreshProjection() async throws {
        try await Self.withProcesses(Self.rebuildWhileReadingAndWriting)
    }

    static func rebuildWhileReadingAndWriting(_ url: PostgresURL, _ processes: Processes) async throws {
        let (worker, server) = (processes.worker, processes.server)
        let commands = CaseCommands(store: server.store)
        _ = try await commands.registerUser(investigator)
        try await openCases(120, commands, title: "Seeded")
        let seeded = try await server.canonical.headPosition()
        #expect(try await server.coordinator.waitUntilApplied("case-search", position: seeded, timeout: .seconds(60)))

        let done = Mutex(false)
        let reads = Mutex((count: 0, empty: 0, failed: 0))
        let reader = Task {
            while !done.withLock({ $0 }) {
                do {
                    let store = try server.coordinator.store(named: "case-search") as! any SearchStore
                    let results = try await store.search(SearchQuery(limit: 5, facets: false))
                    reads.withLock { $0.count += 1; if results.hits.isEmpty { $0.empty += 1 } }
                } catch {
                    reads.withLock { $0.failed += 1 }
                }
            }
        }
        // Writes go on until the rebuild has switched (at least 80), so they overlap every phase.
        let rebuilt = Mutex(false)
        let writer = Task {
            var written = 0
            while written < 80 || !rebuilt.withLock({ $0 }) {
                try await openCases(1, commands, title: "Written during the rebuild \(written)")
                written += 1
            }
            return written
        }

        // The writer and the reader stop on every path, a failure too.
        defer {
            rebuilt.withLock { $0 = true }
            done.withLock { $0 = true }
        }
        let rebuilder = try await PostgresPlatform.open(url: url, configuration: .init(runAgents: false))
        let report = try await rebuilder.rebuild("case-search", chunkSize: 40)
        rebuilt.withLock { $0 = true }
        let written = try await writer.value
        #expect(report.matches, "\(report)")
        #expect(report.projection == ProjectionIdentity(name: "case-search", version: 2))
        #expect(report.replacing == ProjectionIdentity(name: "case-search", version: 1))
        #expect(try await rebuilder.versions.entry("case-search") == .init(live: 2, previous: 1, building: nil, lastRebuildSeconds: report.seconds))
        #expect(try await rebuilder.versions.entry("case-timeline") == nil, "a projection never rebuilt has no row and is live at 1")

        // The server (reads) and the worker (its agent) follow the switch.
        try await eventually("the server follows the switch", following: server) { try server.coordinator.store(named: "case-search").identity.version == 2 }
        try await eventually("the worker follows the switch", following: worker) { try worker.coordinator.store(named: "case-search").identity.version == 2 }
        done.withLock { $0 = true }
        _ = await reader.value
        let counts = reads.withLock { $0 }
        #expect(counts.count > 0)
        #expect(counts.failed == 0, "no read failed (of \(counts.count + counts.failed))")
        #expect(counts.empty == 0, "no read saw an empty index (of \(counts.count))")

        // The worker applies what comes after to version 2, and version 2 equals a fresh projection.
        try await openCases(5, commands, title: "Written after the switch")
        let head = try await server.canonical.headPosition()
        #expect(try await server.coordinator.waitUntilApplied("case-search", position: head, timeout: .seconds(60)))
        let fresh = try await PostgresPlatform.makeStore("case-search", version: 90, url: url)
        let built = try await ProjectionRebuild(source: server.canonical, live: fresh, next: fresh).run(compareAttempts: 1)
        #expect(built.comparedAt == head)
        let live = try await server.coordinator.store(named: "case-search").contentSummary()
        #expect(live == (try await fresh.contentSummary()))
        #expect(live.rows == 125 + written)
        #expect(try await rebuilder.versions.schemas(of: "case-search").keys.sorted() == [1, 2, 90])
    }

    /// Interrupted, a rebuild resumes into the same schema; a rollback switches back and every
    /// process follows; prune drops every other version's schema; and a live version that lost a
    /// row is replaced by one that equals canonical state.
    @Test func anInterruptedRebuildResumesARollbackIsFollowedAndPruneDropsTheOtherSchemas() async throws {
        try await Self.withProcesses(Self.resumeRollBackAndPrune)
    }

    static func resumeRollBackAndPrune(_ url: PostgresURL, _ processes: Processes) async throws {
        let server = processes.server
        _ = try await seed(60, on: server)
        let head = try await server.canonical.headPosition()
        let rebuilder = try await PostgresPlatform.open(url: url, configuration: .init(runAgents: false))

        // Cancelled after its first chunk (as SIGTERM stops `canon rebuild`), nothing is switched.
        let stoppedAt = Mutex<OutboxPosition?>(nil)
        let first = Task {
            try await rebuilder.rebuild("case-timeline", chunkSize: 10) { progress in
                guard progress.phase == .building else { return }
                stoppedAt.withLock { $0 = $0 ?? progress.position }
                withUnsafeCurrentTask { $0?.cancel() }
            }
        }
        await #expect(throws: CancellationError.self) { try await first.value }
        let stopped = try #require(stoppedAt.withLock { $0 })
        #expect(stopped < head)
        #expect(try await rebuilder.versions.entry("case-timeline") == .init(live: 1, building: 2))
        #expect(try server.coordinator.store(named: "case-timeline").identity.version == 1)
        let resumedAt = Mutex<OutboxPosition?>(nil)
        let report = try await rebuilder.rebuild("case-timeline", chunkSize: 10) { progress in
            resumedAt.withLock { $0 = $0 ?? progress.position }
        }
        #expect(report.projection.version == 2 && report.matches)
        #expect(try #require(resumedAt.withLock { $0 }) > stopped, "the second run went on from the first one's checkpoint")
        try await eventually("the server follows to version 2", following: server) { try server.coordinator.store(named: "case-timeline").identity.version == 2 }

        // Rolled back, every process follows to version 1 again; pruned, version 2's schema goes.
        #expect(try await rebuilder.rollback("case-timeline") == ProjectionIdentity(name: "case-timeline", version: 1))
        #expect(try await rebuilder.versions.entry("case-timeline") == .init(live: 1, previous: 2), "a rollback keeps the version it left, and no rebuild made the live one")
        try await eventually("the server follows the rollback", following: server) { try server.coordinator.store(named: "case-timeline").identity.version == 1 }
        try await eventually("the worker follows the rollback", following: processes.worker) {
            try processes.worker.coordinator.store(named: "case-timeline").identity.version == 1
        }
        #expect(try await rebuilder.prune("case-timeline") == ["case_timeline_v2"])
        #expect(try await rebuilder.versions.schemas(of: "case-timeline").keys.sorted() == [1])
        await #expect(throws: PostgresPlatformError.self) { try await rebuilder.rollback("case-timeline") }
        await #expect(throws: ProjectionError.self) { try await rebuilder.rebuild("evidence-semantic") }

        // A live version that lost a row differs from the rebuilt one; the rebuilt one equals
        // canonical state (a full drift check), so it is switched to.
        let admin = PostgresDatabase(url: url, maximumConnections: 1)
        defer { admin.close() }
        try await admin.execute("DELETE FROM case_search_v1.docs WHERE key = (SELECT min(key) FROM case_search_v1.docs)")
        let repaired = try await rebuilder.rebuild("case-search")
        #expect(!repaired.matches)
        #expect(repaired.rows == repaired.liveRows + 1)
        #expect(repaired.canonicalDifferences == 0)
        #expect(try await rebuilder.versions.entry("case-search")?.live == 2)
    }

    /// Rebuild, rollback and prune of one projection run one at a time across processes (a prune
    /// would drop the schema a rebuild elsewhere is building); a switch is conditional on the
    /// version it replaces; a new build never reuses a schema left behind; and no process opens a
    /// live version whose schema is gone (it would be created empty and served).
    @Test func versionChangesAreExclusiveConditionalAndNeverServeAMissingSchema() async throws {
        try await Self.withProcesses(Self.exclusiveAndConditional)
    }

    static func exclusiveAndConditional(_ url: PostgresURL, _ processes: Processes) async throws {
        let server = processes.server
        _ = try await seed(20, on: server)
        let one = try await PostgresPlatform.open(url: url, configuration: .init(runAgents: false))
        let other = try await PostgresPlatform.open(url: url, configuration: .init(runAgents: false))

        // While one process holds the versions of case-search, the other's changes are refused at
        // once, and its changes to another projection are not.
        let (holding, held) = AsyncStream.makeStream(of: Void.self)
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let holder = Task {
            try await one.versions.exclusively("case-search") {
                held.yield()
                for await _ in released { break }
            }
        }
        for await _ in holding { break }
        // The holder lets go on every path, a failure too.
        defer { release.yield() }
        let busy = await #expect(throws: PostgresProjectionVersions.Busy.self) { try await other.rebuild("case-search") }
        #expect(busy?.holder != nil, "it names the server process that holds the lock: \(String(describing: busy))")
        await #expect(throws: PostgresProjectionVersions.Busy.self) { try await other.prune("case-search") }
        await #expect(throws: PostgresProjectionVersions.Busy.self) { try await other.rollback("case-search") }
        #expect(try await other.prune("case-timeline") == [])
        release.yield()
        try await holder.value
        #expect(try await other.prune("case-search") == [], "free again once the holder is done")

        // A switch from a version that is no longer live changes nothing.
        await #expect(throws: PostgresProjectionVersions.Conflict.self) {
            try await other.versions.switchLive("case-search", to: 3, previous: 2)
        }
        #expect(try await other.versions.entry("case-search") == nil)

        // A schema left behind (version 7) is not built into again: the next version is 8.
        _ = try await PostgresPlatform.makeStore("case-search", version: 7, url: url)
        let report = try await other.rebuild("case-search")
        #expect(report.projection == ProjectionIdentity(name: "case-search", version: 8) && report.matches)
        try await eventually("the server follows to version 8", following: server) { try server.coordinator.store(named: "case-search").identity.version == 8 }

        // A live version without a schema (the table changed by hand) is not followed.
        let admin = PostgresDatabase(url: url, maximumConnections: 1)
        defer { admin.close() }
        try await admin.execute("UPDATE canon_projection_versions SET live = 5, previous = 8 WHERE name = 'case-search'")
        #expect(try await server.follower.follow() == [], "nothing to switch to")
        #expect(try server.coordinator.store(named: "case-search").identity.version == 8)
        #expect(try await server.versions.schemas(of: "case-search")[5] == nil, "and no empty schema was made for it")
        // A rebuild says so before it builds anything (it would build beside a version the table
        // does not have live, and its switch would fail).
        let missing = await #expect(throws: PostgresPlatformError.self) { try await other.rebuild("case-search") }
        #expect(missing?.message.contains("schema case_search_v5 is gone") == true, "\(String(describing: missing))")
    }

    /// Case search declares canonical state as its rebuild source: on PostgreSQL the build reads
    /// one `REPEATABLE READ` snapshot of the canonical tables, then catches up from the outbox.
    /// Interrupted in its state phase, the next run starts that phase again from a newer snapshot
    /// (and drops what the older one wrote); `fromOutbox` folds the outbox instead. Each ends
    /// equal to the live version.
    @Test func caseSearchIsRebuiltFromASnapshotOfCanonicalState() async throws {
        try await Self.withProcesses(Self.fromCanonicalState)
    }

    static func fromCanonicalState(_ url: PostgresURL, _ processes: Processes) async throws {
        let server = processes.server
        let commands = CaseCommands(store: server.store)
        _ = try await commands.registerUser(investigator)
        try await openCases(40, commands, title: "Seeded")
        let rebuilder = try await PostgresPlatform.open(url: url, configuration: .init(runAgents: false))

        // Stopped after its first chunk of state: nothing is switched, the build is recorded.
        let first = Task {
            try await rebuilder.rebuild("case-search", stateChunkSize: 10) { progress in
                guard progress.phase == .buildingFromState else { return }
                withUnsafeCurrentTask { $0?.cancel() }
            }
        }
        await #expect(throws: CancellationError.self) { try await first.value }
        #expect(try await rebuilder.versions.entry("case-search") == .init(live: 1, building: 2))
        let partial = try await PostgresPlatform.makeStore("case-search", version: 2, url: url)
        let begun = try #require(try await (partial as! PostgresSearchStore).stateBuild())
        #expect(!begun.complete)
        #expect(try await partial.checkpoint().position == (try await server.canonical.headPosition()), "begun at the snapshot's head")
        #expect(try await (partial as! PostgresSearchStore).count() == 10, "the first chunk was written")
        // Folding the outbox over a build from state begun would leave the other documents out.
        let begunFromState = await #expect(throws: ProjectionError.self) { try await rebuilder.rebuild("case-search", fromOutbox: true) }
        #expect(begunFromState?.message.contains("begun from canonical state and not finished") == true, "\(String(describing: begunFromState))")
        // A document of the older snapshot that the newer one has not (a case purged between the
        // runs): the state phase that starts again must not keep it.
        let admin = PostgresDatabase(url: url, maximumConnections: 1)
        defer { admin.close() }
        try await admin.execute("UPDATE case_search_v2.docs SET key = 'case-purged-meanwhile' WHERE key = (SELECT min(key) FROM case_search_v2.docs)")

        // More cases, then the rebuild again: its state phase reads a newer snapshot with all 50.
        try await openCases(10, commands, title: "Written between the runs")
        let records = Mutex<(done: Int, total: Int)?>(nil)
        let phases = Mutex<Set<ProjectionRebuild.Progress.Phase>>([])
        let report = try await rebuilder.rebuild("case-search", stateChunkSize: 10) { progress in
            phases.withLock { _ = $0.insert(progress.phase) }
            if let done = progress.records { records.withLock { $0 = done } }
        }
        #expect(report.matches, "\(report)")
        #expect(report.projection == ProjectionIdentity(name: "case-search", version: 2))
        #expect(records.withLock { $0 }.map { $0.done == 50 && $0.total == 50 } == true, "\(String(describing: records.withLock { $0 }))")
        #expect(!phases.withLock { $0.contains(.building) }, "nothing was folded from the outbox to build it")
        #expect(try await (partial as! PostgresSearchStore).stateBuild()?.complete == true)
        try await eventually("the server follows to version 2", following: server) { try server.coordinator.store(named: "case-search").identity.version == 2 }

        // The agent applies what comes after to the version built from state.
        try await openCases(3, commands, title: "Written after the switch")
        let head = try await server.canonical.headPosition()
        #expect(try await server.coordinator.waitUntilApplied("case-search", position: head, timeout: .seconds(60)))
        let fresh = try await PostgresPlatform.makeStore("case-search", version: 90, url: url)
        _ = try await ProjectionRebuild(source: server.canonical, live: fresh, next: fresh).run(compareAttempts: 1)
        #expect(try await server.coordinator.store(named: "case-search").contentSummary() == (try await fresh.contentSummary()))

        // From the outbox on request: no state phase.
        let folded = Mutex<Set<ProjectionRebuild.Progress.Phase>>([])
        let again = try await rebuilder.rebuild("case-search", fromOutbox: true) { progress in folded.withLock { _ = $0.insert(progress.phase) } }
        #expect(again.matches && again.projection.version == 91, "above the fresh store's schema (version 90) left in the database")
        #expect(!folded.withLock { $0.contains(.buildingFromState) } && folded.withLock { $0.contains(.building) })
    }
}
