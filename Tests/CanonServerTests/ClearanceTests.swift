import Canon
import CanonServer
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// Who may see a restricted case: its team members with enough clearance, the supervisors of its
/// team, legal and admin. One policy decides, for canonical reads and inside the search engine.
@Suite("Clearance")
struct ClearanceTests {
    @Test func thePolicyWeighsTeamRoleAndClearance() {
        let item = Case(
            id: "c", title: "t", summary: "s", sector: .banking, region: .north, priority: .high, status: .investigation, team: "financial-crime",
            assignee: nil, restricted: true, clearance: 3, slaDueAt: Date(), version: 2, openedAt: Date(), openedBy: "ivan", updatedAt: Date())
        func user(_ role: Role, team: String?, clearance: Int) -> User { User(id: "u", displayName: "U", role: role, team: team, clearance: clearance) }
        #expect(AccessPolicy.canView(item, as: user(.investigator, team: "financial-crime", clearance: 3)))
        #expect(!AccessPolicy.canView(item, as: user(.investigator, team: "financial-crime", clearance: 2)), "not enough clearance")
        #expect(!AccessPolicy.canView(item, as: user(.analyst, team: "financial-crime", clearance: 2)))
        #expect(AccessPolicy.canView(item, as: user(.supervisor, team: "financial-crime", clearance: 1)), "the team's supervisor, whatever the clearance")
        #expect(!AccessPolicy.canView(item, as: user(.supervisor, team: "data-protection", clearance: 3)), "another team's supervisor")
        #expect(!AccessPolicy.canView(item, as: user(.investigator, team: "data-protection", clearance: 3)))
        #expect(AccessPolicy.canView(item, as: user(.legal, team: nil, clearance: 1)))
        #expect(AccessPolicy.canView(item, as: user(.admin, team: nil, clearance: 1)))
        var open = item
        open.restricted = false
        #expect(AccessPolicy.canView(open, as: user(.analyst, team: "data-protection", clearance: 1)))
    }

    @Test(arguments: ServerEngine.all)
    func aCaseRestrictedAtAHighClearanceIsHiddenFromTeamMembersBelowItEverywhere(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let low = try await client.openCase(as: "ivan", title: "Quarry licence one")
            let high = try await client.openCase(as: "ivan", title: "Quarry licence two")
            let restrict = try await client.send(.post, "/v1/cases/\(high)/restriction", as: "lena", json: #"{"restricted":true,"reason":"informant","clearance":3}"#)
            #expect(restrict.status == .ok)
            #expect(try await client.send(.post, "/v1/cases/\(low)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r","clearance":2}"#).status == .ok)
            let head = try await fixture.store.headPosition()

            // Canonical reads: ivan (investigator, clearance 2) sees the clearance-2 case only.
            #expect(try await client.send(.get, "/v1/cases/\(low)", as: "ivan").status == .ok)
            #expect(try await client.send(.get, "/v1/cases/\(high)", as: "ivan").status == .notFound)
            #expect(try await client.send(.get, "/v1/cases/\(high)", as: "sam").status == .ok)
            #expect(try await client.send(.get, "/v1/cases/\(high)", as: "nora").status == .notFound)
            #expect(try await client.send(.get, "/v1/cases/\(high)/timeline", as: "ivan").status == .notFound)

            // Search, filtered inside the engine: results and facet counts agree with the policy.
            for (user, expected) in [("ivan", [low]), ("nora", []), ("sam", [low, high]), ("lena", [low, high]), ("olga", [])] {
                let answer = try await client.send(.get, "/v1/search/cases?q=quarry&min_position=\(head.rawValue)", as: user)
                let body = try answer.json()
                let ids = Set((body["results"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
                #expect(ids == Set(expected), "\(user)")
                let counted = ((body["facets"] as? [String: [String: Int]])?["status"] ?? [:]).values.reduce(0, +)
                #expect(counted == expected.count, "\(user)'s facet counts count only what \(user) may see")
            }

            // The clearance is validated and changing it alone is a change.
            #expect(try await client.send(.post, "/v1/cases/\(low)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r","clearance":4}"#).status == .unprocessableContent)
            #expect(try await client.send(.post, "/v1/cases/\(low)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r","clearance":2}"#).status == .conflict)
            #expect(try await client.send(.post, "/v1/cases/\(low)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r","clearance":3}"#).status == .ok)
            #expect(try await client.send(.get, "/v1/cases/\(low)", as: "ivan").status == .notFound)
        }
    }

    /// A restricted case handed to another team changes who sees it, in canonical reads and in
    /// search, even while the search agent is held (the team change takes the priority path).
    @Test(arguments: ServerEngine.all)
    func aTeamChangeMovesARestrictedCaseToTheNewTeamEverywhere(_ engine: ServerEngine) async throws {
        let hold = ProjectionHold()
        let fixture = try await ServerFixture(engine: engine, projectionFaults: hold.injector)
        try await fixture.test { client in
            let id = try await client.openCase(as: "ivan", title: "Reservoir leak")
            #expect(try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r"}"#).status == .ok)
            let head = try await fixture.store.headPosition()
            let before = try await client.send(.get, "/v1/search/cases?q=reservoir&min_position=\(head.rawValue)", as: "ivan")
            #expect((try before.json()["results"] as? [[String: Any]])?.count == 1)
            hold.held.withLock { $0 = true }
            #expect(try await client.send(.post, "/v1/cases/\(id)/team", as: "ivan", json: #"{"team":"data-protection","reason":"r"}"#).status == .forbidden)
            #expect(try await client.send(.post, "/v1/cases/\(id)/team", as: "sam", json: #"{"team":"Data Protection!","reason":"r"}"#).status == .unprocessableContent)
            let handover = try await client.send(.post, "/v1/cases/\(id)/team", as: "sam", json: #"{"team":"data-protection","reason":"handover"}"#)
            #expect(handover.status == .ok)
            let position = OutboxPosition(Int64(try #require(try handover.json()["position"] as? Int)))
            #expect(try await client.send(.post, "/v1/cases/\(id)/team", as: "lena", json: #"{"team":"data-protection","reason":"again"}"#).status == .conflict)
            #expect(try await client.send(.get, "/v1/cases/\(id)", as: "olga").status == .ok)
            #expect(try await client.send(.get, "/v1/cases/\(id)", as: "ivan").status == .notFound)
            // The search agent is held; the priority path has already moved the document's team.
            let search = try fixture.services.search(for: .searchCases)
            #expect(await fixture.coordinator.priorityApplied.wait(until: position, timeout: .seconds(20)), "the priority path handled it")
            let olga = try await search.search(SearchQuery(text: "reservoir", visibility: .scoped(teams: ["data-protection"], clearance: 2, supervised: [])))
            let ivan = try await search.search(SearchQuery(text: "reservoir", visibility: .scoped(teams: ["financial-crime"], clearance: 2, supervised: [])))
            #expect(olga.hits.count == 1 && ivan.hits.isEmpty, "the document moved to the new team")
            hold.held.withLock { $0 = false }
            let caughtUp = try await fixture.store.headPosition()
            let timeline = try await client.send(.get, "/v1/cases/\(id)/timeline?min_position=\(caughtUp.rawValue)", as: "olga")
            #expect((try timeline.json()["entries"] as? [[String: Any]])?.contains { $0["kind"] as? String == "team" } == true)
            let after = try await client.send(.get, "/v1/search/cases?q=reservoir&min_position=\(caughtUp.rawValue)", as: "olga")
            let results = try #require(try after.json()["results"] as? [[String: Any]])
            #expect(results.first?["team"] as? String == "data-protection")
            #expect(results.first?["assignee"] == nil || results.first?["assignee"] is NSNull)
        }
    }
}

