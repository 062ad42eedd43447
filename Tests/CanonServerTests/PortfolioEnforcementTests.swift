import Canon
import CanonEmbedded
import CanonServer
import CanonTesting
import CasePlatform
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// The runtime obeys the portfolio: it opens only declared stores, refuses bad wiring, reads
/// canonical state for never-stale operations, and judges health by the freshness contracts.
@Suite("Portfolio enforcement")
struct PortfolioEnforcementTests {
    static let sha = String(repeating: "cd", count: 32)

    /// The shipped portfolio with `old` replaced by `new` (which must still be a valid portfolio).
    static func platformPortfolio(replacing old: String, with new: String) throws -> Portfolio {
        let text = PlatformPortfolio.yaml
        #expect(text.contains(old))
        return try Portfolio.load(yaml: text.replacingOccurrences(of: old, with: new), file: "edited.yaml").requireValid()
    }

    // MARK: - Undeclared stores

    @Test(arguments: [
        ("  - name: case-timeline\n    status: live\n", "  - name: case-timeline\n    status: planned\n"),
        ("  - name: case-search\n    status: live\n    role: projection\n", "  - name: case-search\n    status: live\n    role: cache\n"),
    ])
    func theEmbeddedPlatformRefusesToOpenAStoreThePortfolioDoesNotDeclareLive(_ edit: (String, String)) throws {
        let portfolio = try Self.platformPortfolio(replacing: edit.0, with: edit.1)
        let scratch = try TemporaryDirectory(prefix: "canon-portfolio")
        #expect(throws: PortfolioError.self) {
            _ = try EmbeddedPlatform.open(scratch.dataDirectory, create: true, configuration: .init(portfolio: portfolio))
        }
        // Refused before any store file was created.
        #expect(!FileManager.default.fileExists(atPath: scratch.dataDirectory.databaseFile(for: "canonical").path))
    }

    @Test func aPortfolioWithoutTheStoreAtAllIsRefusedWithItsName() throws {
        var portfolio = try PlatformPortfolio.load().requireValid()
        portfolio.stores.removeAll { $0.name.value == "case-timeline" }
        let scratch = try TemporaryDirectory(prefix: "canon-portfolio")
        do {
            _ = try EmbeddedPlatform.open(scratch.dataDirectory, create: true, configuration: .init(portfolio: portfolio))
            Issue.record("opened a store the portfolio does not declare")
        } catch let error as PortfolioError {
            #expect(error.message.contains("case-timeline"))
        }
    }

    // MARK: - Read policy

    @Test func aNeverStaleOperationWiredToADerivedStoreFailsWithATypedError() async throws {
        let policy = ReadPolicy(try PlatformPortfolio.load().requireValid())
        for operation in PlatformOperation.allCases where policy.portfolio.operation(named: operation.rawValue)?.staleness?.value == .never {
            for store in ["case-search", "case-timeline"] {
                do {
                    try policy.admit(operation, reads: store)
                    Issue.record("\(operation.rawValue) was let read \(store)")
                } catch {
                    #expect(error.code == .neverStaleReadsDerived)
                }
            }
        }
        // Even a portfolio that (wrongly) declares the read cannot make the runtime do it.
        let edited = Portfolio.load(yaml: PlatformPortfolio.yaml.replacingOccurrences(
            of: "  - name: assign-investigator\n    staleness: never\n    sensitive: true\n    reads: [canonical]",
            with: "  - name: assign-investigator\n    staleness: never\n    sensitive: true\n    reads: [canonical, case-search]"))
        #expect(edited.findings.map(\.rule) == [.neverStaleReadsDerived], "canon check catches it too")
        let wrongPolicy = ReadPolicy(try #require(edited.portfolio))
        #expect(throws: ReadPolicyViolation.self) { try wrongPolicy.admit(.assignInvestigator, reads: "case-search") }
    }

    @Test func theServerDoesNotStartWhenAnOperationItServesIsDeclaredNeverStaleButReadsADerivedStore() async throws {
        // The timeline route reads the timeline projection; declaring it never-stale makes that wiring illegal.
        let text = PlatformPortfolio.yaml.replacingOccurrences(
            of: "  - name: view-case-timeline\n    staleness: allowed-with-freshness\n", with: "  - name: view-case-timeline\n    staleness: never\n")
        let portfolio = try #require(Portfolio.load(yaml: text).portfolio)
        let scratch = try TemporaryDirectory(prefix: "canon-portfolio")
        let platform = try EmbeddedPlatform.open(scratch.dataDirectory, create: true)
        await #expect(throws: ReadPolicyViolation.self) {
            _ = try await PlatformServices(store: platform.store, projections: platform.coordinator, readPolicy: ReadPolicy(portfolio))
        }
    }

    @Test(arguments: ServerEngine.all)
    func routesReachDerivedStoresOnlyForOperationsAllowedToReadThem(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        #expect(throws: ReadPolicyViolation.self) { try fixture.services.search(for: .assignInvestigator) }
        #expect(throws: ReadPolicyViolation.self) { try fixture.services.timeline(for: .generateEnforcementNotice) }
        #expect(throws: ReadPolicyViolation.self) { try fixture.services.search(for: .viewCaseTimeline) }
        _ = try fixture.services.search(for: .searchCases)
        _ = try fixture.services.timeline(for: .viewCaseTimeline)
    }

    /// Every operation of the platform, run through HTTP with a recording policy: never-stale
    /// operations read canonical state and nothing else, and no write touches a derived store.
    @Test(arguments: ServerEngine.all)
    func eachNeverStaleOperationReadsCanonicalState(_ engine: ServerEngine) async throws {
        let recorder = ReadRecorder()
        let portfolio = try PlatformPortfolio.load().requireValid()
        let fixture = try await ServerFixture(engine: engine, readPolicy: ReadPolicy(portfolio, recorder: recorder))
        try await fixture.test { client in
            let id = try await client.openCase(as: "sam")
            let party = try await client.registerParty(as: "sam")
            for operation in Self.served(on: engine) {
                let answer = try await Self.run(operation, caseID: id, partyID: party, client: client)
                #expect(answer.status.code < 300, "\(operation.rawValue): \(answer.status.code) \(String(decoding: answer.body, as: UTF8.self))")
            }
        }
        for operation in Self.served(on: engine) {
            let declared = try #require(portfolio.operation(named: operation.rawValue))
            let read = recorder.stores(readBy: operation.rawValue)
            #expect(!read.isEmpty, "\(operation.rawValue) read nothing through the policy")
            #expect(read.isSubset(of: Set(operation.reads)), "\(operation.rawValue) read \(read), wired for \(operation.reads)")
            if declared.staleness?.value == .never {
                #expect(read == [PlatformPortfolio.Store.canonical], "\(operation.rawValue) is never-stale but read \(read)")
            }
        }
    }

    /// The operations an engine serves: semantic evidence retrieval runs on the embedded engine
    /// only (on PostgreSQL its route answers 503 saying so, tested in `ScaleOutTests`).
    static func served(on engine: ServerEngine) -> [PlatformOperation] {
        engine == .sqlite ? PlatformOperation.allCases : PlatformOperation.allCases.filter { $0 != .findSimilarEvidence }
    }

    /// One successful request per operation; the switch is exhaustive, so a new operation needs a case here.
    static func run(_ operation: PlatformOperation, caseID id: String, partyID party: String, client: ServerFixture.Client) async throws -> ServerFixture.Client.Answer {
        switch operation {
        case .openCase:
            return try await client.send(.post, "/v1/cases", as: "ivan", json: #"{"title":"t","summary":"s","sector":"banking","region":"north","priority":"low"}"#)
        case .viewCase: return try await client.send(.get, "/v1/cases/\(id)", as: "sam")
        case .viewCaseHistory: return try await client.send(.get, "/v1/cases/\(id)/history", as: "sam")
        case .transitionCase:
            for step in ["triage", "investigation"] {
                _ = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "sam", json: #"{"to":"\#(step)","reason":"r"}"#)
            }
            return try await client.send(.post, "/v1/cases/\(id)/transitions", as: "sam", json: #"{"to":"enforcement","reason":"r"}"#)
        case .assignInvestigator: return try await client.send(.post, "/v1/cases/\(id)/assignment", as: "sam", json: #"{"investigator":"ivan"}"#)
        case .restrictCase: return try await client.send(.post, "/v1/cases/\(id)/restriction", as: "sam", json: #"{"restricted":true,"reason":"r"}"#)
        case .purgeCase:
            // A case of its own, closed, then purged by legal.
            let other = try await client.openCase(as: "sam")
            for step in ["triage", "investigation", "enforcement", "closed"] {
                _ = try await client.send(.post, "/v1/cases/\(other)/transitions", as: "sam", json: #"{"to":"\#(step)","reason":"r"}"#)
            }
            return try await client.send(.post, "/v1/cases/\(other)/purge", as: "lena", json: #"{"reason":"retention period over"}"#)
        case .placeLegalHold: return try await client.send(.post, "/v1/cases/\(id)/hold", as: "lena", json: #"{"reason":"litigation pending"}"#)
        case .releaseLegalHold: return try await client.send(.post, "/v1/cases/\(id)/hold/release", as: "lena", json: #"{"reason":"settled"}"#)
        case .viewLegalHold: return try await client.send(.get, "/v1/cases/\(id)/hold", as: "sam")
        case .changeTeam:
            // Hand over and back, so the later operations still run in sam's team.
            _ = try await client.send(.post, "/v1/cases/\(id)/team", as: "lena", json: #"{"team":"data-protection","reason":"r"}"#)
            return try await client.send(.post, "/v1/cases/\(id)/team", as: "lena", json: #"{"team":"financial-crime","reason":"back"}"#)
        case .linkParty: return try await client.send(.post, "/v1/cases/\(id)/parties", as: "sam", json: #"{"party_id":"\#(party)","role":"subject"}"#)
        case .viewCaseParties: return try await client.send(.get, "/v1/cases/\(id)/parties", as: "sam")
        case .registerParty: return try await client.send(.post, "/v1/parties", as: "sam", json: #"{"kind":"organisation","name":"Acme"}"#)
        case .viewParty: return try await client.send(.get, "/v1/parties/\(party)", as: "sam")
        case .addEvidence:
            return try await client.send(.post, "/v1/cases/\(id)/evidence", as: "sam", json: """
                {"title":"Ledger","description":"d","media_type":"application/pdf","size_bytes":10,"sha256":"\(sha)"}
                """)
        case .viewRestrictedEvidence: return try await client.send(.get, "/v1/cases/\(id)/evidence", as: "sam")
        case .generateEnforcementNotice: return try await client.send(.post, "/v1/cases/\(id)/enforcement-notice", as: "sam")
        case .searchCases: return try await client.send(.get, "/v1/search/cases?q=t", as: "sam")
        case .viewCaseTimeline: return try await client.send(.get, "/v1/cases/\(id)/timeline", as: "sam")
        case .findSimilarEvidence: return try await client.send(.get, "/v1/evidence/semantic?q=ledger&min_position=1", as: "sam")
        }
    }

    @Test(arguments: ServerEngine.all)
    func derivedReadRoutesRefuseEveryWritingMethod(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase()
            for path in ["/v1/search/cases", "/v1/cases/\(id)/timeline"] {
                for method in [HTTPRequest.Method.post, .put, .patch, .delete] {
                    let answer = try await client.send(method, path, as: "ada", json: "{}")
                    #expect(answer.status == .methodNotAllowed, "\(method) \(path)")
                    #expect(answer.headers[.allow] == "GET")
                }
            }
        }
    }

    // MARK: - Enforcement notice

    @Test(arguments: ServerEngine.all)
    func theEnforcementNoticeIsBuiltFromCanonicalStateOnlyInEnforcement(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine, runAgents: false)
        try await fixture.test { client in
            let id = try await client.openCase(as: "sam")
            let early = try await client.send(.post, "/v1/cases/\(id)/enforcement-notice", as: "sam")
            #expect(early.status == .conflict)
            for step in ["triage", "investigation", "enforcement"] {
                _ = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "sam", json: #"{"to":"\#(step)","reason":"r"}"#)
            }
            let withoutEvidence = try await client.send(.post, "/v1/cases/\(id)/enforcement-notice", as: "sam")
            #expect(withoutEvidence.status == .conflict, "a notice relies on at least one piece of evidence")
            _ = try await client.send(.post, "/v1/cases/\(id)/evidence", as: "sam", json: """
                {"title":"Ledger","description":"d","media_type":"application/pdf","size_bytes":10,"sha256":"\(Self.sha)"}
                """)
            // The projections are not running, so a notice built from them would be stale; it is not.
            let notice = try await client.send(.post, "/v1/cases/\(id)/enforcement-notice", as: "sam")
            #expect(notice.status == .ok)
            #expect(try notice.json()["case_version"] as? Int == 5)
            #expect(try notice.json()["reference"] as? String == "EN-\(id)-v5")
            #expect((try notice.json()["evidence"] as? [[String: Any]])?.count == 1)
            let analyst = try await client.send(.post, "/v1/cases/\(id)/enforcement-notice", as: "nora")
            #expect(analyst.status == .forbidden)
        }
    }

    // MARK: - Batch windows

    /// Each agent lingers for the batch window its store declares, and for none when it declares
    /// none; an edited portfolio changes it, and a configuration that sets a linger wins.
    @Test func agentsLingerForTheBatchWindowsThePortfolioDeclares() throws {
        let shipped = try PlatformPortfolio.load().requireValid()
        let scratch = try TemporaryDirectory(prefix: "canon-batch-window")
        let platform = try EmbeddedPlatform.open(scratch.dataDirectory, create: true, configuration: .init(portfolio: shipped, semantic: false))
        let declared = shipped.batchWindows
        #expect(declared["case-search"] == nil, "case search applies every commit at once")
        #expect(declared["case-timeline"] == .milliseconds(25))
        #expect(declared["evidence-semantic"] == .milliseconds(50))
        #expect(declared["sla-dashboard"] == nil, "a planned store runs no agent")
        #expect(platform.coordinator.agents.count == 2)
        for agent in platform.coordinator.agents {
            #expect(agent.linger == declared[agent.identity.name] ?? .zero, "\(agent.identity.name)")
        }

        let edited = try Self.platformPortfolio(
            replacing: "      alert_after: 30s\n      metric: canon_projection_lag_seconds\n    authority:\n      executes_commands: false\n      rehydrate_before_sensitive_action: true\n    rebuild:\n      supported: true\n      source: canonical state",
            with: "      alert_after: 30s\n      metric: canon_projection_lag_seconds\n      batch_window: 25ms\n    authority:\n      executes_commands: false\n      rehydrate_before_sensitive_action: true\n    rebuild:\n      supported: true\n      source: canonical state")
        #expect(edited.batchWindows["case-search"] == .milliseconds(25))
        let again = try TemporaryDirectory(prefix: "canon-batch-window")
        let editedPlatform = try EmbeddedPlatform.open(
            again.dataDirectory, create: true,
            configuration: .init(projections: .init(lingers: ["case-timeline": .milliseconds(7)]), portfolio: edited, semantic: false))
        #expect(try editedPlatform.coordinator.agent(named: "case-search").linger == .milliseconds(25))
        #expect(try editedPlatform.coordinator.agent(named: "case-timeline").linger == .milliseconds(7))
    }

    // MARK: - Health from freshness contracts

    @Test func healthFollowsTheFreshnessContract() throws {
        let portfolio = try PlatformPortfolio.load().requireValid()
        func status(lag: Int64, state: String = "idle") -> StoreHealth {
            let projection = ProjectionStatus(
                name: "case-search", version: 1, position: OutboxPosition(5), lagEvents: lag > 0 ? 3 : 0, lagMilliseconds: lag, state: state,
                heartbeatAgeMilliseconds: 10, stalled: state == "stalled", deadLetters: 0, lastError: nil, owner: nil)
            let all = PortfolioStoreStatus.all(in: portfolio, projections: [projection], canonicalHead: OutboxPosition(8))
            return all.first { $0.name == "case-search" }!.health
        }
        // case-search: p95 1s, alert after 30s.
        #expect(status(lag: 0) == .ok)
        #expect(status(lag: 1000) == .ok)
        #expect(status(lag: 1001) == .lagging)
        #expect(status(lag: 30_000) == .lagging)
        #expect(status(lag: 30_001) == .degraded)
        #expect(status(lag: 0, state: "paused") == .degraded)
        #expect(status(lag: 0, state: "stalled") == .degraded)
        #expect(status(lag: 0, state: "retrying") == .lagging)
        let all = PortfolioStoreStatus.all(in: portfolio, projections: [], canonicalHead: OutboxPosition(8))
        #expect(all.first { $0.name == "sla-dashboard" }?.health == .planned)
        #expect(all.first { $0.name == "case-timeline" }?.health == .degraded, "a live projection with no agent is degraded")
        #expect(all.first { $0.name == "canonical" }?.position == OutboxPosition(8))
    }

    @Test(arguments: ServerEngine.all)
    func opsPortfolioAndMetricsShowAStorePastItsAlertThresholdAsDegraded(_ engine: ServerEngine) async throws {
        // The agents do not run and the clock reads an hour ahead: the backlog is an hour old.
        let fixture = try await ServerFixture(engine: engine, runAgents: false, now: { Date().addingTimeInterval(3600) })
        try await fixture.test { client in
            _ = try await client.openCase()
            let answer = try await client.send(.get, "/v1/ops/portfolio", as: "nora")
            #expect(answer.status == .ok)
            let stores = try #require(try answer.json()["stores"] as? [[String: Any]])
            #expect(stores.count == 8)
            let search = try #require(stores.first { $0["name"] as? String == "case-search" })
            #expect(search["health"] as? String == "degraded")
            #expect(search["status"] as? String == "live")
            #expect(search["version"] as? Int == 1)
            #expect(search["alert_after_ms"] as? Int == 30_000)
            let lag = try #require((search["freshness"] as? [String: Any])?["lag_ms"] as? Int)
            #expect(lag >= 3_600_000 - 60_000)
            let planned = try #require(stores.first { $0["name"] as? String == "relationship-graph" })
            #expect(planned["health"] as? String == "planned")
            let canonical = try #require(stores.first { $0["name"] as? String == "canonical" })
            #expect(canonical["health"] as? String == "ok")
            // Each store names the engine it runs on here: the scale-out one on PostgreSQL.
            #expect(canonical["engine"] as? String == (engine == .postgres ? "postgresql" : "sqlite"))
            #expect((search["engine"] as? String)?.hasPrefix(engine == .postgres ? "postgresql (tsvector" : "sqlite-fts5") == true, "\(search["engine"] ?? "none")")
            #expect((canonical["position"] as? Int ?? 0) >= 1)

            let metrics = String(decoding: try await client.send(.get, "/metrics").body, as: UTF8.self)
            #expect(metrics.contains(#"canon_store_health{store="case-search",role="projection"} 2"#) || metrics.contains(#"canon_store_health{role="projection",store="case-search"} 2"#), "\(metrics.split(separator: "\n").filter { $0.contains("canon_store_health") })")
        }
    }

    /// A canonical store that stops answering: `/metrics` still answers, with every live store
    /// degraded and `canon_store_status_readable 0`, not the last good health.
    @Test func metricsShowEveryLiveStoreDegradedWhenHealthCannotBeJudged() async throws {
        let failing = FailingHead.Switch()
        let fixture = try await ServerFixture(runAgents: false, wrapServicesStore: { FailingHead(base: $0, failing: failing) })
        try await fixture.test { client in
            /// The `canon_store_health` value of each (store, role) and whether the status was readable, from one scrape.
            func scrape() async throws -> (health: [String: Double], readable: Bool) {
                let answer = try await client.send(.get, "/metrics")
                #expect(answer.status == .ok)
                let lines = String(decoding: answer.body, as: UTF8.self).split(separator: "\n")
                func value(_ line: Substring) -> Double? { line.split(separator: " ").last.flatMap { Double($0) } }
                var health: [String: Double] = [:]
                for line in lines where line.hasPrefix("canon_store_health{") {
                    for store in ["canonical", "case-search", "relationship-graph"] where line.contains(#"store="\#(store)""#) {
                        health[store] = value(line)
                    }
                }
                return (health, lines.first { $0.hasPrefix("canon_store_status_readable ") }.flatMap(value) == 1)
            }
            let before = try await scrape()
            #expect(before.health["canonical"] == 0 && before.readable)
            failing.set(true)
            let failed = try await scrape()
            #expect(failed.health == ["canonical": 2, "case-search": 2, "relationship-graph": -1], "live stores degraded, planned ones planned")
            #expect(!failed.readable)
            failing.set(false)
            let after = try await scrape()
            #expect(after.health["canonical"] == 0 && after.readable)
        }
    }

    struct FailingHead: CanonicalStoreWrapper {
        final class Switch: Sendable {
            private let on = Mutex(false)
            func set(_ value: Bool) { on.withLock { $0 = value } }
            var isOn: Bool { on.withLock { $0 } }
        }
        let base: any CanonicalStore
        let failing: Switch
        func headPosition() async throws -> OutboxPosition {
            if failing.isOn { throw CanonicalStoreError.storage("the canonical store does not answer (test)") }
            return try await base.headPosition()
        }
    }

    @Test(arguments: ServerEngine.all)
    func aFreshStoreIsHealthy(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase()
            _ = id
            let created = try await client.send(.get, "/v1/ops/portfolio", as: "ada")
            let position = try #require((try created.json()["stores"] as? [[String: Any]])?.first { $0["name"] as? String == "canonical" }?["position"] as? Int)
            // Read-your-writes on search, then the portfolio reports the store ok.
            #expect(try await client.send(.get, "/v1/search/cases?min_position=\(position)", as: "ada").status == .ok)
            let answer = try await client.send(.get, "/v1/ops/portfolio", as: "ada")
            let search = try #require((try answer.json()["stores"] as? [[String: Any]])?.first { $0["name"] as? String == "case-search" })
            #expect(search["health"] as? String == "ok")
        }
    }
}
