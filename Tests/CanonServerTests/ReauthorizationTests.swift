import Canon
import CanonServer
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Synchronization
import Testing

/// Search results are re-authorized against canonical state before they leave the server, so a
/// projection that lags a restriction never leaks the restricted case.
@Suite("Re-authorization of derived reads")
struct ReauthorizationTests {
    static func mismatches(_ client: ServerFixture.Client) async throws -> Int {
        let text = String(decoding: try await client.send(.get, "/metrics").body, as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix("canon_authorization_mismatch_total") }
        return line.flatMap { Int(Double($0.split(separator: " ").last ?? "0") ?? 0) } ?? 0
    }

    @Test(arguments: ServerEngine.all)
    func aRestrictionTheSearchStoreHasNotAppliedYetIsEnforcedFromCanonicalState(_ engine: ServerEngine) async throws {
        let hold = ProjectionHold()
        // Without the priority path, so the store really shows the stale document.
        let fixture = try await ServerFixture(engine: engine, projectionFaults: hold.injector, priorityPath: false)
        try await fixture.test { client in
            let id = try await client.openCase(as: "ivan", title: "Pension mis-selling")
            let head = try await fixture.store.headPosition()
            let before = try await client.send(.get, "/v1/search/cases?q=pension&min_position=\(head.rawValue)", as: "olga")
            #expect((try before.json()["results"] as? [[String: Any]])?.contains { $0["id"] as? String == id } == true, "unrestricted: everyone sees it")

            // The search store stops applying, then the case is restricted in canonical state.
            hold.held.withLock { $0 = true }
            #expect(try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r"}"#).status == .ok)
            let mismatchesBefore = fixture.services.authorizationMismatches.count
            let metricBefore = try await Self.mismatches(client)
            let lagging = try await client.send(.get, "/v1/search/cases?q=pension", as: "olga")
            #expect(lagging.status == .ok)
            let freshness = try #require(try lagging.json()["freshness"] as? [String: Any])
            #expect((freshness["lag_events"] as? Int ?? 0) >= 1, "the store really lags the restriction")
            #expect((try lagging.json()["results"] as? [[String: Any]])?.contains { $0["id"] as? String == id } == false,
                    "a result the principal may no longer see is dropped")
            #expect(fixture.services.authorizationMismatches.count == mismatchesBefore + 1)
            // The metric is process-wide (other servers in this test run add to it too).
            #expect(try await Self.mismatches(client) >= metricBefore + 1)
            // The team still sees it.
            let team = try await client.send(.get, "/v1/search/cases?q=pension", as: "ivan")
            #expect((try team.json()["results"] as? [[String: Any]])?.contains { $0["id"] as? String == id } == true)

            // Once the agent applies the restriction, the engine itself filters the document.
            hold.held.withLock { $0 = false }
            let applied = try await fixture.store.headPosition()
            let caughtUp = try await client.send(.get, "/v1/search/cases?q=pension&min_position=\(applied.rawValue)", as: "olga")
            #expect(caughtUp.status == .ok)
            #expect((try caughtUp.json()["results"] as? [[String: Any]])?.isEmpty == true)
            #expect(fixture.services.authorizationMismatches.count == mismatchesBefore + 1, "filtered in the engine now, not by re-authorization")
        }
    }

    /// The priority path: with the search agent held behind its backlog, a restriction still
    /// reaches the search engine's filter at once (the agent's checkpoint has not moved).
    @Test(arguments: ServerEngine.all)
    func aRestrictionTakesThePriorityPathAheadOfAHeldAgent(_ engine: ServerEngine) async throws {
        let hold = ProjectionHold()
        let fixture = try await ServerFixture(engine: engine, projectionFaults: hold.injector)
        try await fixture.test { client in
            let id = try await client.openCase(as: "ivan", title: "Dredging permit")
            let head = try await fixture.store.headPosition()
            _ = try await client.send(.get, "/v1/search/cases?q=dredging&min_position=\(head.rawValue)", as: "olga")
            hold.held.withLock { $0 = true }
            for index in 0..<20 { _ = try await client.openCase(as: "sam", title: "Backlog \(index)") }
            let restriction = try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r"}"#)
            #expect(restriction.status == .ok)
            let position = OutboxPosition(Int64(try #require(try restriction.json()["position"] as? Int)))
            let search = try fixture.services.search(for: .searchCases)
            let checkpoint = try await search.checkpoint().position
            #expect(await fixture.coordinator.priorityApplied.wait(until: position, timeout: .seconds(20)), "the priority path handled it")
            let hits = try await search.search(SearchQuery(text: "dredging", limit: 5, visibility: .scoped(teams: ["data-protection"], clearance: 3, supervised: [])))
            #expect(hits.hits.isEmpty, "the engine filters the restricted case ahead of the held agent")
            #expect(try await search.checkpoint().position == checkpoint, "the ordinary agent has not moved")
            let display = try #require(try await search.document(id))
            #expect(display.restricted, "the filter columns carry the restriction")
            hold.held.withLock { $0 = false }
            let caughtUp = try await fixture.store.headPosition()
            let after = try await client.send(.get, "/v1/search/cases?q=dredging&min_position=\(caughtUp.rawValue)", as: "olga")
            #expect((try after.json()["results"] as? [[String: Any]])?.isEmpty == true, "the ordinary path keeps it restricted")
        }
    }
}
