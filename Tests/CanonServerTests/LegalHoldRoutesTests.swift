import Canon
import CasePlatform
import Foundation
import Hummingbird
import Testing

/// Legal hold and retention through the HTTP API, on real SQLite files and a real PostgreSQL
/// server: a hold blocks the purge until it is lifted, the timeline tells both, and a purge
/// within the declared retention period is refused with when it ends.
@Suite struct LegalHoldRoutesTests {
    static func close(_ id: String, _ client: ServerFixture.Client) async throws {
        for step in ["triage", "investigation", "enforcement", "closed"] {
            #expect(try await client.send(.post, "/v1/cases/\(id)/transitions", as: "sam", json: #"{"to":"\#(step)","reason":"r"}"#).status == .ok)
        }
    }

    @Test(arguments: ServerEngine.all)
    func aHoldBlocksThePurgeUntilItIsLiftedAndTheTimelineTellsIt(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase(as: "sam")
            try await Self.close(id, client)
            #expect(try await client.send(.get, "/v1/cases/\(id)/hold", as: "sam").json()["held"] as? Bool == false)

            #expect(try await client.send(.post, "/v1/cases/\(id)/hold", as: "sam", json: #"{"reason":"r"}"#).status == .forbidden)
            #expect(try await client.send(.post, "/v1/cases/\(id)/hold", as: "lena", json: #"{}"#).status == .unprocessableContent)
            #expect(try await client.send(.post, "/v1/cases/\(id)/hold", as: "lena", json: #"{"reason":"  "}"#).status == .unprocessableContent)
            let placed = try await client.send(.post, "/v1/cases/\(id)/hold", as: "lena", json: #"{"reason":"litigation pending"}"#)
            #expect(placed.status == .ok)
            let hold = try await client.send(.get, "/v1/cases/\(id)/hold", as: "sam").json()
            #expect(hold["held"] as? Bool == true)
            let detail = try #require(hold["hold"] as? [String: Any])
            #expect(detail["reason"] as? String == "litigation pending" && detail["placed_by"] as? String == "lena")
            #expect(try await client.send(.post, "/v1/cases/\(id)/hold", as: "ada", json: #"{"reason":"again"}"#).status == .conflict)

            let refused = try await client.send(.post, "/v1/cases/\(id)/purge", as: "lena", json: #"{"reason":"done"}"#)
            #expect(refused.status == .conflict)
            #expect((try refused.json()["detail"] as? String)?.contains("under legal hold") == true)

            let released = try await client.send(.post, "/v1/cases/\(id)/hold/release", as: "lena", json: #"{"reason":"settled"}"#)
            #expect(released.status == .ok)
            #expect(try await client.send(.post, "/v1/cases/\(id)/hold/release", as: "lena", json: #"{"reason":"settled"}"#).status == .conflict)
            let position = try #require(try released.json()["position"] as? Int)
            let timeline = try await client.send(.get, "/v1/cases/\(id)/timeline?min_position=\(position)", as: "sam")
            #expect(timeline.status == .ok)
            let entries = try #require(try timeline.json()["entries"] as? [[String: Any]])
            let holds = entries.filter { $0["kind"] as? String == "legal_hold" }
            #expect(holds.compactMap { $0["summary"] as? String } == ["Legal hold placed: litigation pending", "Legal hold lifted: settled"])
            #expect(holds.compactMap { $0["actor"] as? String } == ["lena", "lena"])

            #expect(try await client.send(.post, "/v1/cases/\(id)/purge", as: "lena", json: #"{"reason":"done"}"#).status == .ok)
            #expect(try await fixture.store.fetchOne("legal_holds", where: ["case_id": .text(id)]) == nil)
        }
    }

    @Test(arguments: ServerEngine.all)
    func aPurgeWithinTheRetentionPeriodIsRefusedWithWhenItEnds(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine, retention: RetentionPolicy(period: .seconds(30 * 86_400)))
        try await fixture.test { client in
            let id = try await client.openCase(as: "sam")
            try await Self.close(id, client)
            let refused = try await client.send(.post, "/v1/cases/\(id)/purge", as: "lena", json: #"{"reason":"done"}"#)
            #expect(refused.status == .conflict)
            #expect((try refused.json()["detail"] as? String)?.contains("within its retention period until") == true)
            #expect(try await client.send(.get, "/v1/cases/\(id)", as: "lena").status == .ok, "the case is still there")
        }
    }
}
