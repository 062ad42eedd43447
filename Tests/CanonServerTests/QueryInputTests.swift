import Canon
import CasePlatform
import Foundation
import Hummingbird
import Testing

/// Query strings and preconditions that a route used to take without a word (a misspelt filter
/// searched unfiltered, an `If-Match` was ignored, a position no write has had was waited for):
/// each is refused with a typed problem naming the field, and writes nothing.
@Suite("Query input and preconditions")
struct QueryInputTests {
    @Test(arguments: ServerEngine.all)
    func filtersAndParametersAreCheckedNotIgnored(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase()
            let cases: [(String, String, String)] = [
                ("/v1/search/cases?status=bogus", "status", "status must be one of intake,"),
                ("/v1/search/cases?priority=urgent", "priority", "priority must be one of"),
                ("/v1/search/cases?sector=%00", "sector", "sector must be one of"),
                ("/v1/search/cases?team=Financial%20Crime", "team", "team must be 1 to 64 lower-case letters"),
                ("/v1/search/cases?assignee=%00", "assignee", "assignee must be 1 to 64"),
                ("/v1/search/cases?state=open", "state", "unknown query parameter state"),
                ("/v1/search/cases?status=", "status", "status is empty"),
                ("/v1/search/cases?status=intake&status=closed", "status", "status is given more than once"),
                ("/v1/cases/\(id)/timeline?page=2", "page", "unknown query parameter page"),
                ("/v1/ops/audit?user=ada", "user", "unknown query parameter user"),
                ("/v1/ops/audit?action=asign-investigator", "action", "action must be an operation: "),
            ]
            for (uri, field, detail) in cases {
                let answer = try await client.send(.get, uri, as: uri.hasPrefix("/v1/ops/") ? "ada" : "ivan")
                #expect(answer.status == .unprocessableContent, "\(uri)")
                #expect(try answer.json()["field"] as? String == field, "\(uri)")
                let said = try answer.json()["detail"] as? String ?? ""
                #expect(said.contains(detail), "\(uri): \(said)")
            }
            // Routes that take no parameters refuse any, before they do anything: a misspelt
            // drift mode is not a full check of every key, and a write with a stray query writes nothing.
            let head = try await fixture.store.headPosition()
            let noParameters: [(HTTPRequest.Method, String, String?)] = [
                (.post, "/v1/ops/drift/case-search?mdoe=sample", nil),
                (.post, "/v1/ops/drift/case-search/repair?sampel=5", nil),
                (.get, "/v1/ops/projections?verbose=1", nil),
                (.get, "/v1/ops/portfolio?store=canonical", nil),
                (.get, "/v1/ops/drift?store=case-search", nil),
                (.get, "/v1/ops/lifecycle/audit?store=x", nil),
                (.get, "/v1/cases/\(id)?fields=title", nil),
                (.get, "/v1/cases/\(id)/hold?x=1", nil),
                (.post, "/v1/cases?dry_run=1", #"{"title":"t","summary":"s","sector":"banking","region":"north","priority":"low"}"#),
                (.post, "/v1/cases/\(id)/transitions?force=true", #"{"to":"triage","reason":"r"}"#),
            ]
            for (method, uri, body) in noParameters {
                let answer = try await client.send(method, uri, as: "ada", json: body)
                #expect(answer.status == .unprocessableContent, "\(uri): \(answer.status)")
                #expect((try answer.json()["detail"] as? String)?.contains("unknown query parameter") == true, "\(uri)")
            }
            #expect(try await fixture.store.headPosition() == head, "nothing was written")
            #expect(try await client.send(.post, "/v1/ops/drift/case-search?mode=sample&sample=5", as: "ada").status == .ok)
            // The valid forms still answer.
            #expect(try await client.send(.get, "/v1/search/cases?status=intake&priority=high&team=financial-crime", as: "ivan").status == .ok)
            #expect(try await client.send(.get, "/v1/search/cases?status=intake&status=intake", as: "ivan").status == .ok)
        }
    }

    /// A `min_position` beyond the outbox head names a write that has not happened: retrying
    /// cannot help, so it is a 422, not the 503 "retry shortly" of a store still catching up.
    @Test(arguments: ServerEngine.all)
    func aMinPositionBeyondTheHeadIs422(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine, readWait: .milliseconds(200))
        try await fixture.test { client in
            let id = try await client.openCase()
            let head = try await fixture.store.headPosition().rawValue
            for uri in ["/v1/search/cases?min_position=\(head + 1_000)", "/v1/cases/\(id)/timeline?min_position=\(Int64.max)"] {
                let answer = try await client.send(.get, uri, as: "ivan")
                #expect(answer.status == .unprocessableContent, "\(uri)")
                #expect(try answer.json()["field"] as? String == "min_position", "\(uri)")
                #expect((try answer.json()["detail"] as? String)?.contains("beyond the outbox head") == true, "\(uri)")
            }
        }
    }

    /// A timeline read with a bad parameter is refused before the access audit: a restricted
    /// case's audit gets no "allowed" row for a read that read nothing.
    @Test func aBadTimelineRequestWritesNoAuditEntry() async throws {
        let fixture = try await ServerFixture(runAgents: false)
        try await fixture.test { client in
            let id = try await client.openCase(as: "ivan", title: "Whistleblower report")
            #expect(try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":true,"reason":"whistleblower"}"#).status == .ok)
            let before = try await fixture.store.count(CasePlatformSchema.accessAudit.name, filter: [:])
            for uri in ["/v1/cases/\(id)/timeline?limit=0", "/v1/cases/\(id)/timeline?min_position=soon", "/v1/cases/\(id)/timeline?page=2"] {
                #expect(try await client.send(.get, uri, as: "ivan").status == .unprocessableContent, "\(uri)")
            }
            #expect(try await fixture.store.count(CasePlatformSchema.accessAudit.name, filter: [:]) == before)
            // A well-formed read of the restricted case is audited: the count above could move.
            #expect(try await client.send(.get, "/v1/cases/\(id)/timeline?limit=10", as: "ivan").status == .ok)
            #expect(try await fixture.store.count(CasePlatformSchema.accessAudit.name, filter: [:]) == before + 1)
        }
    }

    /// A body field the request does not have is refused, not ignored: a misspelt `clearance`
    /// would otherwise restrict a case with the clearance unchanged, and say nothing.
    @Test(arguments: ServerEngine.all)
    func aBodyFieldTheRequestDoesNotHaveIs422(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase()
            let head = try await fixture.store.headPosition()
            let cases: [(String, String, String, String)] = [
                ("/v1/cases/\(id)/restriction", "lena", #"{"restricted":true,"reason":"x","clearence":3}"#, "clearence"),
                ("/v1/cases", "ivan", #"{"title":"t","summary":"s","sector":"energy","region":"north","priority":"low","prioritee":"high"}"#, "prioritee"),
                ("/v1/cases/\(id)/transitions", "ivan", #"{"to":"triage","reason":"r","reasno":"r"}"#, "reasno"),
                ("/v1/parties", "ivan", #"{"kind":"person","name":"Ann","e_mail":"ann@example.org"}"#, "e_mail"),
            ]
            for (uri, user, body, field) in cases {
                let answer = try await client.send(.post, uri, as: user, json: body)
                #expect(answer.status == .unprocessableContent, "\(uri)")
                #expect(try answer.json()["field"] as? String == field, "\(uri)")
            }
            #expect(try await fixture.store.headPosition() == head, "nothing was written")
            // A null optional field is no unknown field; the well-formed bodies still go through.
            let opened = try await client.send(.post, "/v1/cases", as: "ivan", json: #"{"title":"t","summary":"s","sector":"energy","region":"north","priority":"low","team":null}"#)
            #expect(opened.status == .created)
            let restricted = try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":true,"reason":"x","clearance":3}"#)
            #expect(restricted.status == .ok)
        }
    }

    /// `If-Match` holds on every change to a case: linking a party and adding evidence too. A
    /// stale one is a 412 and writes nothing; the current one goes through.
    @Test(arguments: ServerEngine.all)
    func ifMatchHoldsWhenLinkingPartiesAndAddingEvidence(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let caseID = try await client.openCase()
            let partyID = try await client.registerParty()
            let head = try await fixture.store.headPosition()
            let link = #"{"party_id":"\#(partyID)","role":"subject"}"#
            let evidence = """
                {"title":"Memo","description":"d","media_type":"application/pdf","size_bytes":10,"sha256":"\(PartyAndEvidenceRoutesTests.sha)"}
                """
            let staleLink = try await client.send(.post, "/v1/cases/\(caseID)/parties", as: "ivan", json: link, headers: [.ifMatch: "\"5\""])
            #expect(staleLink.status == .preconditionFailed)
            #expect(staleLink.problemType == "urn:canon:problem:version-mismatch")
            let staleEvidence = try await client.send(.post, "/v1/cases/\(caseID)/evidence", as: "ivan", json: evidence, headers: [.ifMatch: "\"5\""])
            #expect(staleEvidence.status == .preconditionFailed)
            let garbage = try await client.send(.post, "/v1/cases/\(caseID)/evidence", as: "ivan", json: evidence, headers: [.ifMatch: "yesterday"])
            #expect(garbage.status == .badRequest)
            #expect(try await fixture.store.headPosition() == head, "nothing was written")

            let linked = try await client.send(.post, "/v1/cases/\(caseID)/parties", as: "ivan", json: link, headers: [.ifMatch: "\"1\""])
            #expect(linked.status == .created)
            #expect(try linked.json()["version"] as? Int == 2)
            let added = try await client.send(.post, "/v1/cases/\(caseID)/evidence", as: "ivan", json: evidence, headers: [.ifMatch: "\"2\""])
            #expect(added.status == .created)
            #expect(try added.json()["case_version"] as? Int == 3)
        }
    }
}
