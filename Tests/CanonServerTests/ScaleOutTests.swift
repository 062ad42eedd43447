import Canon
import CanonPostgres
import CanonTesting
import CasePlatform
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization
import Testing

/// Several `canon` processes on one PostgreSQL database: leases, takeover after SIGKILL, and
/// no duplicate or missing effect afterwards.
@Suite("Scale-out on PostgreSQL", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipMessage)))
struct ScaleOutTests {
    static let ivan = User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2)

    /// Notifications of applied positions from every worker, counted: waits re-check their
    /// condition each time a worker moves a checkpoint.
    final class AppliedSignal: Sendable {
        let moves = PositionWaiters()
        private let count = Mutex<Int64>(0)

        func tick() { moves.advance(to: OutboxPosition(count.withLock { $0 += 1; return $0 })) }
    }

    /// Listens for the workers' `canon_applied` notifications until the returned task is cancelled.
    static func listen(_ url: PostgresURL) -> (AppliedSignal, Task<Void, any Error>) {
        let signal = AppliedSignal()
        let listener = PostgresNotifications(url: url, commits: PositionWaiters()) { _, _ in signal.tick() }
        return (signal, Task { try await listener.run() })
    }

    @Test func whenTheWorkerHoldingTheLeasesIsKilledTheOtherTakesOverAndTheStoresEqualAFreshRebuild() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CLITests.executable.path), "build canon first: swift build --build-tests")
        let url = try await PostgresTestServer.createDatabase()
        let canonical = try await PostgresCanonicalStore(url: url, migrations: CasePlatformSchema.migrations)
        let commands = CaseCommands(store: canonical)
        _ = try await commands.registerUser(Self.ivan)
        let search = try await PostgresSearchStore.open(url: url, projection: CaseSearchProjection())
        let timeline = try await PostgresTimelineStore.open(url: url, projection: CaseTimelineProjection())
        let (applied, listening) = Self.listen(url)
        defer { listening.cancel() }

        let first = try RunningCanon(arguments: ["worker", "--database", url.description])
        let holding = try await first.waitUntil(seconds: 60) { first.errors.contains("case-search@1 [Canon] projection lease taken") }
        try #require(holding, "the first worker takes the leases: \(first.output) \(first.errors)")
        let second = try RunningCanon(arguments: ["worker", "--database", url.description])
        #expect(try await second.waitUntil(seconds: 60) { second.output.contains("is running projections") })

        func write(_ count: Int, from start: Int) async throws {
            for index in start..<(start + count) {
                let id = try await commands.openCase(
                    OpenCaseRequest(title: "Failover case \(index)", summary: "written while workers run", sector: "energy", region: "north", priority: "low"),
                    by: Self.ivan).id
                if index % 2 == 0 { _ = try await commands.transition(id, TransitionRequest(to: "triage", reason: "step"), by: Self.ivan) }
            }
        }
        func caughtUp() async throws -> Bool {
            let head = try await canonical.headPosition()
            let searched = try await search.checkpoint().position
            let timed = try await timeline.checkpoint().position
            return searched == head && timed == head
        }

        try await write(60, from: 0)
        #expect(try await waitUntil(wakingOn: applied.moves, timeout: .seconds(60)) { try await caughtUp() }, "the first worker applies everything")
        let owner = try #require(try await search.heartbeat()?.owner)
        #expect(owner.hasSuffix(":\(first.pid)"), "the lease holder is the one applying: \(owner)")

        // Kill the holder mid-stream: writes go on during and after the kill.
        async let during: Void = write(60, from: 60)
        first.killHard()
        try await during
        #expect(try await first.waitForExit() != 0)
        try await write(30, from: 120)
        // The second worker writes its heartbeat when it takes a lease, before it applies.
        let tookOver = try await waitUntil(wakingOn: applied.moves, timeout: .seconds(60)) {
            let searchOwner = try await search.heartbeat()?.owner ?? ""
            let timelineOwner = try await timeline.heartbeat()?.owner ?? ""
            let caught = try await caughtUp()
            return caught && searchOwner.hasSuffix(":\(second.pid)") && timelineOwner.hasSuffix(":\(second.pid)")
        }
        #expect(tookOver, "the second worker takes both leases over and catches up: \(second.errors)")
        #expect(second.errors.contains("case-search@1 [Canon] projection lease taken"), "the takeover is logged")

        // The projections equal a fresh rebuild of the same events: no duplicate, no gap.
        let freshSearch = try await PostgresSearchStore.open(url: url, projection: CaseSearchProjection(version: 2))
        let freshTimeline = try await PostgresTimelineStore.open(url: url, projection: CaseTimelineProjection(version: 2))
        for store in [freshSearch, freshTimeline] as [any ProjectionStore] {
            while true {
                let checkpoint = try await store.checkpoint()
                let events = try await canonical.events(after: checkpoint.position, limit: 500)
                guard let last = events.last else { break }
                try await store.apply(events, from: checkpoint.position, to: Checkpoint(position: last.position, committedAt: last.committedAt))
            }
        }
        let head = try await canonical.headPosition()
        let live = (try await search.contentSummary(), try await timeline.contentSummary())
        let fresh = (try await freshSearch.contentSummary(), try await freshTimeline.contentSummary())
        #expect(live.0.checkpoint == head && fresh.0.checkpoint == head)
        #expect(live.0.rows == 150 && live.0 == fresh.0, "case search equals a fresh rebuild")
        #expect(live.1.rows == 150 + 75 && live.1 == fresh.1, "case timeline equals a fresh rebuild")
        #expect(try await search.deadLetters().isEmpty)
        #expect(try await timeline.deadLetters().isEmpty)

        // A replay asked from another process (the CLI): the idle holder follows the stored
        // checkpoint back, and re-applies up to the head with nothing new committed.
        let replay = try RunningCanon(arguments: ["replay", "case-timeline", "--from", "0", "--database", url.description])
        #expect(try await replay.waitForExit() == 0, "\(replay.errors)")
        #expect(try await waitUntil(wakingOn: applied.moves, timeout: .seconds(30)) { try await timeline.checkpoint().position == head },
                "the holder re-applies after a replay")
        #expect(try await timeline.contentSummary() == fresh.1, "idempotently")

        second.terminate()
        #expect(try await second.waitForExit() == 0)
        #expect(second.output.contains("canon worker stopped cleanly"))
    }

    /// The operator's path: users and tokens, a server and a worker on one database, a write and
    /// a read of it through the server, status, and clean stops.
    @Test func serveAndWorkerRunTheHTTPContractOnADatabase() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CLITests.executable.path), "build canon first: swift build --build-tests")
        let url = try await PostgresTestServer.createDatabase().description
        let add = try RunningCanon(arguments: ["user", "add", "--database", url, "--id", "ivan", "--name", "Ivan", "--role", "investigator", "--team", "financial-crime"])
        #expect(try await add.waitForExit() == 0, "\(add.errors)")
        let token = try #require(add.output.split(separator: "\n").first { $0.hasPrefix("token: ") }.map { String($0.dropFirst(7)) })

        // Both read the live projection versions every hour only: the rebuild below is followed
        // because it is announced, not found by the timer.
        let server = try RunningCanon(arguments: [
            "serve", "--database", url, "--port", "0", "--no-agents", "--drift-interval", "1", "--log-level", "debug", "--version-poll-interval", "3600",
        ])
        let address = try await server.waitForURL()
        let worker = try RunningCanon(arguments: ["worker", "--database", url, "--event-loops", "3", "--version-poll-interval", "3600"])
        #expect(try await worker.waitUntil(seconds: 60) { worker.output.contains("is running projections") })
        // The server runs its HTTP, its PostgreSQL connections and its tasks on one event loop
        // (`--event-loops`, default 1); the worker on the three it was given (not the default of one per core).
        #expect(server.output.contains("on 1 event-loop thread") && !server.output.contains("Swift's own executor"), "\(server.output)")
        #expect(worker.output.contains("on 3 event-loop threads") && !worker.output.contains("Swift's own executor"), "\(worker.output)")
        #expect(server.threadNames.filter { $0.hasPrefix("NIO-SGLTN") }.count == 1, "\(server.threadNames)")
        #expect(worker.threadNames.filter { $0.hasPrefix("NIO-SGLTN") }.count == 3, "\(worker.threadNames)")
        let opened = try await Self.send("POST", address + "/v1/cases", token: token, json: """
            {"title":"Unlicensed lender","summary":"Loans offered without a licence","sector":"banking","region":"north","priority":"high"}
            """)
        #expect(opened.0 == 201, "\(opened.1)")
        let body = try #require(try JSONSerialization.jsonObject(with: Data(opened.1.utf8)) as? [String: Any])
        let position = try #require(body["position"] as? Int)
        // The worker applies it; the server learns of it through a notification and answers.
        let found = try await Self.send("GET", address + "/v1/search/cases?q=lendr&min_position=\(position)", token: token)
        #expect(found.0 == 200, "\(found.1)")
        #expect(found.1.contains("Unlicensed lender") && found.1.contains("\"corrected_query\":\"lender\""))
        #expect(found.1.contains("\"as_of_position\":\(position)"))
        let semantic = try await Self.send("GET", address + "/v1/evidence/semantic?q=warnings", token: token)
        #expect(semantic.0 == 503, "semantic retrieval says where it runs: \(semantic.1)")
        // The server samples every store for drift (here each second; it logs each sample once
        // the check is recorded): a sample check of case search appears among its last checks.
        #expect(try await server.waitUntil(seconds: 60) { server.errors.split(separator: "\n").contains { $0.contains("drift sampled") && $0.contains("store=case-search") } })
        let drift = try await Self.send("GET", address + "/v1/ops/drift", token: token)
        #expect(drift.0 == 200 && drift.1.contains("\"mode\":\"sample\""), "the server on a database samples for drift: \(drift.1)")

        let status = try RunningCanon(arguments: ["status", "--database", url, "--format", "json"])
        #expect(try await status.waitForExit() == 0, "\(status.errors)")
        #expect(status.output.contains("\"case-search\""))
        // A blue-green rebuild from another process while the server and the worker run: it
        // builds case_search_v2 beside v1 and switches; both follow at once (told over
        // `canon_control`), so the server reads v2 and the worker's agent applies to it.
        let rebuild = try RunningCanon(arguments: ["rebuild", "case-search", "--database", url])
        #expect(try await rebuild.waitForExit() == 0, "\(rebuild.errors)")
        #expect(rebuild.output.contains("case-search@2 is live (was case-search@1)"), "\(rebuild.output)")
        #expect(try await server.waitUntil(seconds: 30) { server.errors.contains("followed a blue-green switch") }, "\(server.errors.suffix(2000))")
        #expect(try await worker.waitUntil(seconds: 30) { worker.errors.contains("followed a blue-green switch") }, "\(worker.errors.suffix(2000))")
        let projections = try await Self.send("GET", address + "/v1/ops/projections", token: token)
        let rows = try #require((try JSONSerialization.jsonObject(with: Data(projections.1.utf8)) as? [String: Any])?["projections"] as? [[String: Any]], "\(projections.1)")
        #expect(rows.first { $0["name"] as? String == "case-search" }?["version"] as? Int == 2, "\(projections.1)")
        let later = try await Self.send("POST", address + "/v1/cases", token: token, json: """
            {"title":"Unregistered broker","summary":"Trades without a registration","sector":"banking","region":"north","priority":"low"}
            """)
        #expect(later.0 == 201, "\(later.1)")
        let laterPosition = try #require((try JSONSerialization.jsonObject(with: Data(later.1.utf8)) as? [String: Any])?["position"] as? Int)
        let rebuilt = try await Self.send("GET", address + "/v1/search/cases?q=unlicensed&min_position=\(laterPosition)", token: token)
        #expect(rebuilt.0 == 200 && rebuilt.1.contains("Unlicensed lender"), "v2 holds the rebuilt case: \(rebuilt.1)")
        let after = try await Self.send("GET", address + "/v1/search/cases?q=unregistered&min_position=\(laterPosition)", token: token)
        #expect(after.0 == 200 && after.1.contains("Unregistered broker"), "and the worker applied the one written after to it: \(after.1)")
        let semanticRebuild = try RunningCanon(arguments: ["rebuild", "evidence-semantic", "--database", url])
        #expect(try await semanticRebuild.waitForExit() != 0)
        #expect(semanticRebuild.errors.contains("not served by the PostgreSQL engine"), "\(semanticRebuild.errors)")
        let badInterval = try RunningCanon(arguments: ["worker", "--database", url, "--version-poll-interval", "0"])
        #expect(try await badInterval.waitForExit() != 0)
        #expect(badInterval.errors.contains("--version-poll-interval must be between 0.001 and 86400 seconds"), "\(badInterval.errors)")
        let noDatabase = try RunningCanon(arguments: ["worker"])
        #expect(try await noDatabase.waitForExit() != 0)
        #expect(noDatabase.errors.contains("canon worker runs against PostgreSQL"))
        let badAddress = try RunningCanon(arguments: ["status", "--database", "mysql://nowhere/db"])
        #expect(try await badAddress.waitForExit() != 0)
        #expect(badAddress.errors.contains("invalid database address"))

        // The server measures its event loop's delay (`EventLoopDelayMonitor`): it probes once at
        // start and says so in its log; from then on `/metrics` has the loop's delay.
        #expect(try await server.waitUntil(seconds: 20) { server.errors.contains("event-loop delay measured") }, "\(server.errors)")
        let metrics = try await Self.send("GET", address + "/metrics", token: token).1
        #expect(metrics.contains("canon_event_loop_delay_seconds_count{loop=\"0\"}"), "\(metrics.prefix(1000))")
        #expect(metrics.contains("canon_rebuild_duration_seconds{store=\"case-search\"}"), "the rebuild's duration, as the server read it with the switch")

        server.terminate()
        worker.terminate()
        #expect(try await server.waitForExit() == 0)
        #expect(try await worker.waitForExit() == 0)
        #expect(server.output.contains("canon stopped cleanly") && worker.output.contains("canon worker stopped cleanly"))
    }

    /// `canon drift`, `canon repair` and `canon lifecycle audit` on a database: a document deleted
    /// behind the store's back is found, repaired, and the check is clean again.
    @Test func driftRepairAndTheLifecycleAuditRunOnADatabase() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CLITests.executable.path), "build canon first: swift build --build-tests")
        let url = try await PostgresTestServer.createDatabase()
        let canonical = try await PostgresCanonicalStore(url: url, migrations: CasePlatformSchema.migrations)
        let commands = CaseCommands(store: canonical)
        _ = try await commands.registerUser(Self.ivan)
        var ids: [String] = []
        for index in 0..<12 {
            ids.append(try await commands.openCase(
                OpenCaseRequest(title: "Drift case \(index)", summary: "s", sector: "energy", region: "north", priority: "low"), by: Self.ivan).id)
        }
        let search = try await PostgresSearchStore.open(url: url, projection: CaseSearchProjection())
        let timeline = try await PostgresTimelineStore.open(url: url, projection: CaseTimelineProjection())
        for store in [search, timeline] as [any ProjectionStore] { try await VocabularyScenario.apply(store, from: canonical) }

        let clean = try RunningCanon(arguments: ["drift", "--all", "--database", url.description])
        #expect(try await clean.waitForExit() == 0, "\(clean.output) \(clean.errors)")
        #expect(clean.output.contains("case-search v1 (full") && clean.output.contains("case-timeline v1 (full"), "\(clean.output)")
        #expect(!clean.output.contains("difference(s)"))

        let admin = PostgresDatabase(url: url, maximumConnections: 1)
        defer { admin.close() }
        try await admin.execute("DELETE FROM case_search_v1.docs WHERE key = '\(ids[4])'")
        let found = try RunningCanon(arguments: ["drift", "case-search", "--database", url.description])
        #expect(try await found.waitForExit() == 1, "drift exits 1: \(found.errors)")
        #expect(found.output.contains("1 difference(s): 1 missing") && found.output.contains(ids[4]), "\(found.output)")
        let repair = try RunningCanon(arguments: ["repair", "case-search", "--database", url.description])
        #expect(try await repair.waitForExit() == 0, "\(repair.output) \(repair.errors)")
        #expect(repair.output.contains("repaired 1 key(s)"), "\(repair.output)")
        #expect(try await search.document(ids[4])?.text["title"] == "Drift case 4")

        let audit = try RunningCanon(arguments: ["lifecycle", "audit", "--database", url.description])
        #expect(try await audit.waitForExit() == 0, "\(audit.errors)")
        #expect(audit.output.contains("checked against case-search, case-timeline") && !audit.output.contains("not checked"), "\(audit.output)")

        // The retention job on a database: a case closed seven years ago is purged.
        let sevenYearsAgo = Date().addingTimeInterval(-7 * 365 * 86_400)
        let past = CaseCommands(store: canonical, clock: { sevenYearsAgo })
        let old = try await past.openCase(
            OpenCaseRequest(title: "Old case", summary: "s", sector: "energy", region: "north", priority: "low"), by: Self.ivan).id
        for step in ["triage", "investigation", "enforcement", "closed"] {
            _ = try await past.transition(old, TransitionRequest(to: step, reason: "r"), by: Self.ivan)
        }
        let expire = try RunningCanon(arguments: ["lifecycle", "expire", "--database", url.description])
        #expect(try await expire.waitForExit() == 0, "\(expire.output) \(expire.errors)")
        #expect(expire.output.contains("1 closed case(s) examined, 1 past the retention period (2190 days): purged 1"), "\(expire.output)")
        #expect(try await canonical.fetchOne("cases", where: ["id": .text(old)]) == nil)
        #expect(try await canonical.fetchAll("tombstones", where: ["case_id": .text(old)]).count == 1)
    }

    static func send(_ method: String, _ url: String, token: String, json: String? = nil) async throws -> (Int, String) {
        var request = URLRequest(url: try #require(URL(string: url)))
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let json {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(json.utf8)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}
