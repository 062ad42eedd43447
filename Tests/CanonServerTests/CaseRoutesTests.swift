import Canon
import CasePlatform
import Foundation
import Hummingbird
import Testing

@Suite("Case routes")
struct CaseRoutesTests {
    @Test(arguments: ServerEngine.all)
    func openCaseAnswersCreatedWithPositionAndWritesItsEvent(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        let before = try await fixture.store.headPosition()
        try await fixture.test { client in
            let answer = try await client.send(.post, "/v1/cases", as: "ivan", json: """
                {"title":"Unlicensed lender","summary":"Loans offered without a licence","sector":"banking","region":"north","priority":"high"}
                """)
            #expect(answer.status == .created)
            let body = try answer.json()
            let id = try #require(body["id"] as? String)
            #expect(body["version"] as? Int == 1)
            #expect(body["status"] as? String == "intake")
            #expect(body["position"] as? Int == Int(before.rawValue) + 1)
            #expect(answer.headers[.location] == "/v1/cases/\(id)")
            #expect(answer.headers[.eTag] == "\"1\"")
        }
        let events = try await fixture.store.events(after: before, limit: 10)
        #expect(events.map(\.type) == ["case.opened"])
        #expect(events.first?.actor == "ivan")
        #expect(events.first?.correlationID != nil)
    }

    @Test(arguments: ServerEngine.all)
    func readCaseHasETagAndFields(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase()
            let answer = try await client.send(.get, "/v1/cases/\(id)", as: "nora")
            #expect(answer.status == .ok)
            #expect(answer.headers[.eTag] == "\"1\"")
            let body = try answer.json()
            #expect(body["id"] as? String == id)
            #expect(body["team"] as? String == "financial-crime")
            #expect(body["status"] as? String == "intake")
            #expect(body["restricted"] as? Bool == false)
            #expect(body["sla_due_at"] is String)
        }
    }

    @Test(arguments: ServerEngine.all)
    func unknownAndMalformedCaseIDsAreNotFound(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            for id in ["00000000-0000-4000-8000-000000000000", "not-a-uuid", "%27%3B%20DROP%20TABLE%20cases"] {
                let answer = try await client.send(.get, "/v1/cases/\(id)", as: "ivan")
                #expect(answer.status == .notFound)
                #expect(answer.problemType == "urn:canon:problem:not-found")
            }
            let write = try await client.send(.post, "/v1/cases/00000000-0000-4000-8000-000000000000/transitions", as: "ivan", json: #"{"to":"triage","reason":"x"}"#)
            #expect(write.status == .notFound)
        }
    }

    @Test(arguments: ServerEngine.all)
    func allowedTransitionAnswersVersionAndPosition(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase()
            let answer = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "ivan", json: #"{"to":"triage","reason":"initial review"}"#)
            #expect(answer.status == .ok)
            let body = try answer.json()
            #expect(body["version"] as? Int == 2)
            #expect(body["status"] as? String == "triage")
            #expect(body["position"] is Int)
            #expect(answer.headers[.eTag] == "\"2\"")
        }
    }

    @Test(arguments: ServerEngine.all)
    func refusedTransitionIs409AndWritesNothing(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase()
            let head = try await fixture.store.headPosition()
            let answer = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "ivan", json: #"{"to":"closed","reason":"skip ahead"}"#)
            #expect(answer.status == .conflict)
            #expect(answer.problemType == "urn:canon:problem:transition-refused")
            #expect((try answer.json()["detail"] as? String)?.contains("allowed from intake: triage") == true)
            #expect(try await fixture.store.headPosition() == head)
        }
    }

    @Test(arguments: ServerEngine.all)
    func staleIfMatchIs412AndCurrentIfMatchSucceeds(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase()
            let stale = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "ivan", json: #"{"to":"triage","reason":"r"}"#, headers: [.ifMatch: "\"7\""])
            #expect(stale.status == .preconditionFailed)
            #expect(stale.problemType == "urn:canon:problem:version-mismatch")
            let current = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "ivan", json: #"{"to":"triage","reason":"r"}"#, headers: [.ifMatch: "\"1\""])
            #expect(current.status == .ok)
            let replay = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "ivan", json: #"{"to":"investigation","reason":"r"}"#, headers: [.ifMatch: "\"1\""])
            #expect(replay.status == .preconditionFailed)
            let garbage = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "ivan", json: #"{"to":"investigation","reason":"r"}"#, headers: [.ifMatch: "yesterday"])
            #expect(garbage.status == .badRequest)
        }
    }

    @Test(arguments: ServerEngine.all)
    func assignmentBySupervisorAndItsRefusals(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase()
            let ok = try await client.send(.post, "/v1/cases/\(id)/assignment", as: "sam", json: #"{"investigator":"ivan"}"#)
            #expect(ok.status == .ok)
            #expect(try ok.json()["version"] as? Int == 2)
            let read = try await client.send(.get, "/v1/cases/\(id)", as: "sam")
            #expect(try read.json()["assignee"] as? String == "ivan")

            let byInvestigator = try await client.send(.post, "/v1/cases/\(id)/assignment", as: "ivan", json: #"{"investigator":"ivan"}"#)
            #expect(byInvestigator.status == .forbidden)
            let otherTeam = try await client.send(.post, "/v1/cases/\(id)/assignment", as: "sam", json: #"{"investigator":"olga"}"#)
            #expect(otherTeam.status == .unprocessableContent)
            #expect(try otherTeam.json()["field"] as? String == "investigator")
            let notInvestigator = try await client.send(.post, "/v1/cases/\(id)/assignment", as: "sam", json: #"{"investigator":"nora"}"#)
            #expect(notInvestigator.status == .unprocessableContent)
            let nobody = try await client.send(.post, "/v1/cases/\(id)/assignment", as: "sam", json: #"{"investigator":"ghost"}"#)
            #expect(nobody.status == .unprocessableContent)
            let again = try await client.send(.post, "/v1/cases/\(id)/assignment", as: "sam", json: #"{"investigator":"ivan"}"#)
            #expect(again.status == .conflict)
        }
    }

    @Test(arguments: ServerEngine.all)
    func restrictionHidesTheCaseFromOtherTeamsAndIsAPriorityEvent(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase()
            let byInvestigator = try await client.send(.post, "/v1/cases/\(id)/restriction", as: "ivan", json: #"{"restricted":true,"reason":"whistleblower"}"#)
            #expect(byInvestigator.status == .forbidden)
            let ok = try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":true,"reason":"whistleblower"}"#)
            #expect(ok.status == .ok)
            let position = try #require(try ok.json()["position"] as? Int)
            let event = try #require(try await fixture.store.events(after: OutboxPosition(Int64(position - 1)), limit: 1).first)
            #expect(event.type == CaseEvents.caseRestrictionChanged)
            #expect(event.priority)

            #expect(try await client.send(.get, "/v1/cases/\(id)", as: "olga").status == .notFound)
            #expect(try await client.send(.get, "/v1/cases/\(id)/history", as: "olga").status == .notFound)
            #expect(try await client.send(.get, "/v1/cases/\(id)", as: "ivan").status == .ok)
            #expect(try await client.send(.get, "/v1/cases/\(id)", as: "ada").status == .ok)
            let again = try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":true,"reason":"again"}"#)
            #expect(again.status == .conflict)
        }
    }

    @Test(arguments: ServerEngine.all)
    func historyListsEveryTransitionOldestFirst(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase()
            for status in ["triage", "investigation", "enforcement", "closed", "investigation"] {
                let answer = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "ivan", json: #"{"to":"\#(status)","reason":"step to \#(status)"}"#)
                #expect(answer.status == .ok)
            }
            let answer = try await client.send(.get, "/v1/cases/\(id)/history", as: "ivan")
            #expect(answer.status == .ok)
            let entries = try #require(try answer.json()["entries"] as? [[String: Any]])
            #expect(entries.compactMap { $0["to"] as? String } == ["intake", "triage", "investigation", "enforcement", "closed", "investigation"])
            #expect(entries.compactMap { $0["case_version"] as? Int } == [1, 2, 3, 4, 5, 6])
            #expect(entries.last?["from"] as? String == "closed")
            #expect(entries.allSatisfy { $0["actor"] as? String == "ivan" })
        }
    }

    @Test(arguments: ServerEngine.all)
    func caseWorkStaysInsideTheTeam(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let foreign = try await client.send(.post, "/v1/cases", as: "ivan", json: #"{"title":"x","summary":"","sector":"banking","region":"north","priority":"low","team":"data-protection"}"#)
            #expect(foreign.status == .forbidden)
            let id = try await client.openCase()
            let otherTeam = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "olga", json: #"{"to":"triage","reason":"r"}"#)
            #expect(otherTeam.status == .forbidden)
            let legal = try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r"}"#)
            #expect(legal.status == .ok)
        }
        #expect(try await fixture.store.count("cases", filter: [:]) == 1)
    }

    @Test(arguments: ServerEngine.all)
    func analystCannotWrite(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let answer = try await client.send(.post, "/v1/cases", as: "nora", json: """
                {"title":"x","summary":"","sector":"banking","region":"north","priority":"low"}
                """)
            #expect(answer.status == .forbidden)
        }
        #expect(try await fixture.store.count("cases", filter: [:]) == 0)
    }
}
