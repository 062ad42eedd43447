import Canon
import CanonServer
import CanonTesting
import CasePlatform
import Foundation
import Synchronization
import Testing

/// Search results are re-authorized against canonical state before they leave the server, so a
/// projection that lags a restriction never leaks the restricted case.
@Suite("Re-authorization of derived reads")
struct ReauthorizationTests {
    /// Fails every projection commit while held: the agents retry and the stores lag.
    final class Hold: Sendable {
        let held = Mutex(false)
        var injector: FaultInjector {
            { [self] point in
                if point == .beforeCommit, self.held.withLock({ $0 }) { throw CanonicalStoreError.injectedFault(point) }
            }
        }
    }

    static func mismatches(_ client: ServerFixture.Client) async throws -> Int {
        let text = String(decoding: try await client.send(.get, "/metrics").body, as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix("canon_authorization_mismatch_total") }
        return line.flatMap { Int(Double($0.split(separator: " ").last ?? "0") ?? 0) } ?? 0
    }

    @Test func aRestrictionTheSearchStoreHasNotAppliedYetIsEnforcedFromCanonicalState() async throws {
        let hold = Hold()
        let fixture = try await ServerFixture(projectionFaults: hold.injector)
        try await fixture.test { client in
            let id = try await client.openCase(as: "ivan", title: "Pension mis-selling")
            let head = try await fixture.store.headPosition()
            let before = try await client.send(.get, "/v1/search/cases?q=pension&min_position=\(head.rawValue)", as: "olga")
            #expect((try before.json()["results"] as? [[String: Any]])?.contains { $0["id"] as? String == id } == true, "unrestricted: everyone sees it")

            // The search store stops applying, then the case is restricted in canonical state.
            hold.held.withLock { $0 = true }
            #expect(try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r"}"#).status == .ok)
            let mismatchesBefore = try await Self.mismatches(client)
            let lagging = try await client.send(.get, "/v1/search/cases?q=pension", as: "olga")
            #expect(lagging.status == .ok)
            let freshness = try #require(try lagging.json()["freshness"] as? [String: Any])
            #expect((freshness["lag_events"] as? Int ?? 0) >= 1, "the store really lags the restriction")
            #expect((try lagging.json()["results"] as? [[String: Any]])?.contains { $0["id"] as? String == id } == false,
                    "a result the principal may no longer see is dropped")
            #expect(try await Self.mismatches(client) == mismatchesBefore + 1)
            // The team still sees it.
            let team = try await client.send(.get, "/v1/search/cases?q=pension", as: "ivan")
            #expect((try team.json()["results"] as? [[String: Any]])?.contains { $0["id"] as? String == id } == true)

            // Once the agent applies the restriction, the engine itself filters the document.
            hold.held.withLock { $0 = false }
            let applied = try await fixture.store.headPosition()
            let caughtUp = try await client.send(.get, "/v1/search/cases?q=pension&min_position=\(applied.rawValue)", as: "olga")
            #expect(caughtUp.status == .ok)
            #expect((try caughtUp.json()["results"] as? [[String: Any]])?.isEmpty == true)
            #expect(try await Self.mismatches(client) == mismatchesBefore + 1, "filtered in the engine now, not by re-authorization")
        }
    }
}
