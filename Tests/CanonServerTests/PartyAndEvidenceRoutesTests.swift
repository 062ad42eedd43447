import Canon
import Foundation
import Hummingbird
import Testing

@Suite("Party and evidence routes")
struct PartyAndEvidenceRoutesTests {
    static let sha = String(repeating: "ab", count: 32)

    @Test(arguments: ServerEngine.all)
    func registerLinkAndListParties(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let caseID = try await client.openCase()
            let partyID = try await client.registerParty()
            let linked = try await client.send(.post, "/v1/cases/\(caseID)/parties", as: "ivan", json: #"{"party_id":"\#(partyID)","role":"subject"}"#)
            #expect(linked.status == .created)
            #expect(try linked.json()["version"] as? Int == 2)
            let duplicate = try await client.send(.post, "/v1/cases/\(caseID)/parties", as: "ivan", json: #"{"party_id":"\#(partyID)","role":"subject"}"#)
            #expect(duplicate.status == .conflict)
            let asWitness = try await client.send(.post, "/v1/cases/\(caseID)/parties", as: "ivan", json: #"{"party_id":"\#(partyID)","role":"witness"}"#)
            #expect(asWitness.status == .created)
            let unknown = try await client.send(.post, "/v1/cases/\(caseID)/parties", as: "ivan", json: #"{"party_id":"00000000-0000-4000-8000-000000000000","role":"subject"}"#)
            #expect(unknown.status == .unprocessableContent)
            let badRole = try await client.send(.post, "/v1/cases/\(caseID)/parties", as: "ivan", json: #"{"party_id":"\#(partyID)","role":"bystander"}"#)
            #expect(badRole.status == .unprocessableContent)
            #expect(try badRole.json()["field"] as? String == "role")

            let list = try await client.send(.get, "/v1/cases/\(caseID)/parties", as: "ivan")
            let parties = try #require(try list.json()["parties"] as? [[String: Any]])
            #expect(parties.count == 2)
            #expect(parties.first?["national_id"] as? String == "NI-12345678")
            #expect(Set(parties.compactMap { $0["role"] as? String }) == ["subject", "witness"])
        }
    }

    @Test(arguments: ServerEngine.all)
    func partyPIIIsMaskedForAnalystsAndOtherTeams(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let caseID = try await client.openCase()
            let partyID = try await client.registerParty()
            _ = try await client.send(.post, "/v1/cases/\(caseID)/parties", as: "ivan", json: #"{"party_id":"\#(partyID)","role":"complainant"}"#)
            let analyst = try await client.send(.get, "/v1/parties/\(partyID)", as: "nora")
            #expect(analyst.status == .ok)
            #expect(try analyst.json()["masked"] as? Bool == true)
            #expect(try analyst.json()["national_id"] as? String != "NI-12345678")
            #expect(!String(decoding: analyst.body, as: UTF8.self).contains("maria.rossi@example.org"))
            let otherTeam = try await client.send(.get, "/v1/cases/\(caseID)/parties", as: "olga")
            #expect(!String(decoding: otherTeam.body, as: UTF8.self).contains("NI-12345678"))
            let direct = try await client.send(.get, "/v1/parties/\(partyID)", as: "olga")
            #expect(direct.status == .ok)
            #expect(!String(decoding: direct.body, as: UTF8.self).contains("NI-12345678"), "the party route masks for other teams too")
            #expect(!String(decoding: direct.body, as: UTF8.self).contains("maria.rossi@example.org"))
            let sameTeam = try await client.send(.get, "/v1/parties/\(partyID)", as: "ivan")
            #expect(try sameTeam.json()["national_id"] as? String == "NI-12345678")
            let legal = try await client.send(.get, "/v1/parties/\(partyID)", as: "lena")
            #expect(try legal.json()["email"] as? String == "maria.rossi@example.org")
            #expect(try await client.send(.get, "/v1/parties/00000000-0000-4000-8000-000000000000", as: "lena").status == .notFound)

            // A case ivan may not see (restricted above his clearance) counts as if it did not
            // exist: it does not unmask the party, which would also tell him such a case links it.
            let hidden = try await client.openCase(as: "ivan", title: "Hidden")
            let hiddenParty = try await client.registerParty()
            #expect(try await client.send(.post, "/v1/cases/\(hidden)/parties", as: "ivan", json: #"{"party_id":"\#(hiddenParty)","role":"subject"}"#).status == .created)
            #expect(try await client.send(.get, "/v1/parties/\(hiddenParty)", as: "ivan").json()["masked"] as? Bool == false, "seen through his own case")
            #expect(try await client.send(.post, "/v1/cases/\(hidden)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r","clearance":3}"#).status == .ok)
            let throughHidden = try await client.send(.get, "/v1/parties/\(hiddenParty)", as: "ivan")
            #expect(try throughHidden.json()["masked"] as? Bool == true)
            #expect(!String(decoding: throughHidden.body, as: UTF8.self).contains("NI-12345678"))
        }
    }

    @Test(arguments: ServerEngine.all)
    func partyValidation(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let cases: [(String, String)] = [
                (#"{"kind":"robot","name":"R2"}"#, "kind"),
                (#"{"kind":"person","name":""}"#, "name"),
                (#"{"kind":"person","name":"A","email":"not-an-email"}"#, "email"),
                (#"{"kind":"organisation","name":"Acme","national_id":"NI-1"}"#, "national_id"),
                (#"{"kind":"person"}"#, "name"),
            ]
            for (json, field) in cases {
                let answer = try await client.send(.post, "/v1/parties", as: "ivan", json: json)
                #expect(answer.status == .unprocessableContent, "\(json)")
                #expect(try answer.json()["field"] as? String == field, "\(json)")
            }
        }
        #expect(try await fixture.store.count("parties", filter: [:]) == 0)
    }

    @Test(arguments: ServerEngine.all)
    func addAndListEvidence(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let caseID = try await client.openCase()
            let added = try await client.send(.post, "/v1/cases/\(caseID)/evidence", as: "ivan", json: """
                {"title":"Bank statements","description":"Deposits under threshold","media_type":"application/pdf","size_bytes":52000,"sha256":"\(Self.sha)"}
                """)
            #expect(added.status == .created)
            let body = try added.json()
            #expect(body["case_version"] as? Int == 2)
            let evidenceID = try #require(body["id"] as? String)
            let list = try await client.send(.get, "/v1/cases/\(caseID)/evidence", as: "ivan")
            let evidence = try #require(try list.json()["evidence"] as? [[String: Any]])
            #expect(evidence.count == 1)
            #expect(evidence.first?["id"] as? String == evidenceID)
            #expect(evidence.first?["sha256"] as? String == Self.sha)
            #expect(evidence.first?["version"] as? Int == 1)
        }
    }

    @Test(arguments: ServerEngine.all)
    func evidenceValidationWritesNothing(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let caseID = try await client.openCase()
            let head = try await fixture.store.headPosition()
            let bodies: [(String, String)] = [
                (#"{"title":"t","description":"d","media_type":"application/pdf","size_bytes":1,"sha256":"xyz"}"#, "sha256"),
                (#"{"title":"t","description":"d","media_type":"pdf","size_bytes":1,"sha256":"\#(Self.sha)"}"#, "media_type"),
                (#"{"title":"t","description":"d","media_type":"application/pdf","size_bytes":-5,"sha256":"\#(Self.sha)"}"#, "size_bytes"),
                (#"{"title":"t","description":"d","media_type":"application/pdf","size_bytes":"big","sha256":"\#(Self.sha)"}"#, "size_bytes"),
                (#"{"title":"t","description":"d","media_type":"application/pdf","size_bytes":1.5,"sha256":"\#(Self.sha)"}"#, "size_bytes"),
                (#"{"description":"d","media_type":"application/pdf","size_bytes":1,"sha256":"\#(Self.sha)"}"#, "title"),
            ]
            for (json, field) in bodies {
                let answer = try await client.send(.post, "/v1/cases/\(caseID)/evidence", as: "ivan", json: json)
                #expect(answer.status == .unprocessableContent, "\(json)")
                #expect(try answer.json()["field"] as? String == field, "\(json)")
            }
            #expect(try await fixture.store.headPosition() == head)
        }
        #expect(try await fixture.store.count("evidence", filter: [:]) == 0)
    }

    @Test(arguments: ServerEngine.all)
    func closedCaseRefusesNewEvidence(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let caseID = try await client.openCase()
            for status in ["triage", "investigation", "enforcement", "closed"] {
                _ = try await client.send(.post, "/v1/cases/\(caseID)/transitions", as: "ivan", json: #"{"to":"\#(status)","reason":"r"}"#)
            }
            let answer = try await client.send(.post, "/v1/cases/\(caseID)/evidence", as: "ivan", json: """
                {"title":"late","description":"d","media_type":"application/pdf","size_bytes":1,"sha256":"\(Self.sha)"}
                """)
            #expect(answer.status == .conflict)
        }
    }
}
