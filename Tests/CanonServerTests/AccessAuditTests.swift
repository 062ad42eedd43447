import Canon
import CanonServer
import CanonTesting
import CasePlatform
import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Testing

/// Tokens that expire and the access audit: every read of restricted data and every sensitive
/// action, allowed or denied, is in the canonical store's append-only audit.
@Suite("Access audit and tokens")
struct AccessAuditTests {
    static let sha = String(repeating: "ab", count: 32)

    @Test(arguments: ServerEngine.all)
    func tamperedAndExpiredTokensGet401WithTheReason(_ engine: ServerEngine) async throws {
        // The server's clock reads two days ahead: a 24-hour token has expired.
        let later = try await ServerFixture(engine: engine, runAgents: false, now: { Date().addingTimeInterval(48 * 3600) })
        try await later.test { client in
            let token = later.services.tokens.token(for: "ivan")
            let expired = try await client.client.execute(uri: "/v1/me", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(expired.status == .unauthorized)
            #expect(String(buffer: expired.body).contains("expired"))
        }
        let fixture = try await ServerFixture(engine: engine, runAgents: false)
        try await fixture.test { client in
            let token = fixture.token("ivan")
            let fresh = try await client.client.execute(uri: "/v1/me", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(fresh.status == .ok)
            var parts = token.split(separator: ".").map(String.init)
            parts[1] = "ada"   // claim to be the admin with ivan's signature
            let tampered = try await client.client.execute(uri: "/v1/me", method: .get, headers: [.authorization: "Bearer \(parts.joined(separator: "."))"])
            #expect(tampered.status == .unauthorized)
            #expect(String(buffer: tampered.body).contains("not signed by this installation"))
        }
    }

    /// A search that returns a restricted case is a read of restricted data: one audit entry per
    /// restricted case returned, none for the others.
    @Test func aSearchThatReturnsARestrictedCaseIsAudited() async throws {
        let fixture = try await ServerFixture()
        try await fixture.test { client in
            _ = try await client.openCase(as: "ivan", title: "Wombat levies")
            let restricted = try await client.openCase(as: "ivan", title: "Wombat whistleblower")
            let restriction = try await client.send(.post, "/v1/cases/\(restricted)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r","clearance":2}"#)
            let position = try #require(try restriction.json()["position"] as? Int)
            let before = try await fixture.services.audit.entries(action: "search-cases")
            let search = try await client.send(.get, "/v1/search/cases?q=wombat&min_position=\(position)", as: "ivan")
            #expect((try search.json()["results"] as? [[String: Any]])?.count == 2)
            let after = try await fixture.services.audit.entries(action: "search-cases")
            #expect(after.count == before.count + 1)
            #expect(after.first?.target == "case/\(restricted)" && after.first?.principal == "ivan" && after.first?.decision == .allowed)
        }
    }

    @Test func everySensitiveActionAndEveryDeniedAttemptHasOneAuditEntry() async throws {
        let fixture = try await ServerFixture(runAgents: false)
        try await fixture.test { client in
            let open = try await client.openCase(as: "ivan")
            let restricted = try await client.openCase(as: "ivan", title: "Whistleblower report")
            let added = try await client.send(.post, "/v1/cases/\(restricted)/evidence", as: "ivan", json: """
                {"title":"Memo","description":"d","media_type":"application/pdf","size_bytes":10,"sha256":"\(Self.sha)"}
                """)
            let evidenceID = try #require(try added.json()["id"] as? String)
            // Before any restriction: an ordinary read of an unrestricted case is not audited.
            #expect(try await client.send(.get, "/v1/cases/\(open)", as: "ivan").status == .ok)

            #expect(try await client.send(.post, "/v1/cases/\(restricted)/restriction", as: "lena", json: #"{"restricted":true,"reason":"whistleblower"}"#).status == .ok)
            #expect(try await client.send(.post, "/v1/cases/\(open)/assignment", as: "sam", json: #"{"investigator":"ivan"}"#).status == .ok)
            #expect(try await client.send(.post, "/v1/cases/\(open)/assignment", as: "ivan", json: #"{"investigator":"ivan"}"#).status == .forbidden)
            #expect(try await client.send(.get, "/v1/cases/\(restricted)", as: "ivan").status == .ok)
            #expect(try await client.send(.get, "/v1/cases/\(restricted)", as: "olga").status == .notFound)
            #expect(try await client.send(.get, "/v1/cases/\(restricted)/evidence/\(evidenceID)", as: "ivan").status == .ok)
            #expect(try await client.send(.get, "/v1/cases/\(restricted)/evidence/\(evidenceID)", as: "olga").status == .notFound)
            #expect(try await client.send(.post, "/v1/cases/\(open)/enforcement-notice", as: "nora").status == .forbidden)
            let party = try await client.registerParty(as: "ivan")
            #expect(try await client.send(.get, "/v1/parties/\(party)", as: "nora").status == .ok)

            let audit = try await client.send(.get, "/v1/ops/audit?limit=100", as: "lena")
            #expect(audit.status == .ok)
            let entries = try #require(try audit.json()["entries"] as? [[String: Any]])
            func count(_ action: String, _ decision: String, _ principal: String) -> Int {
                entries.filter { $0["action"] as? String == action && $0["decision"] as? String == decision && $0["principal"] as? String == principal }.count
            }
            #expect(count("restrict-case", "allowed", "lena") == 1)
            #expect(count("assign-investigator", "allowed", "sam") == 1)
            #expect(count("assign-investigator", "denied", "ivan") == 1)
            #expect(count("view-case", "allowed", "ivan") == 1, "the restricted read, not the unrestricted one")
            #expect(count("view-case", "denied", "olga") == 1)
            #expect(count("view-restricted-evidence", "allowed", "ivan") == 1)
            #expect(count("view-restricted-evidence", "denied", "olga") == 1)
            #expect(count("generate-enforcement-notice", "denied", "nora") == 1)
            #expect(count("view-party", "allowed", "nora") == 1, "viewing a party's (masked) identity is a sensitive read")
            #expect(entries.first { $0["action"] as? String == "view-party" }?["target"] as? String == "party/\(party)")
            #expect(entries.count == 9, "\(entries.map { "\($0["action"] ?? "") \($0["decision"] ?? "") \($0["principal"] ?? "")" })")
            let denied = entries.first { $0["decision"] as? String == "denied" && $0["principal"] as? String == "ivan" }
            #expect((denied?["reason"] as? String)?.contains("may not") == true)
            #expect((denied?["target"] as? String) == "case/\(open)")

            // Filters, and who may read the audit.
            let onlyDenied = try await client.send(.get, "/v1/ops/audit?decision=denied", as: "ada")
            #expect((try onlyDenied.json()["entries"] as? [[String: Any]])?.count == 4)
            #expect(try await client.send(.get, "/v1/ops/audit", as: "ivan").status == .forbidden)
            #expect(try await client.send(.get, "/v1/ops/audit?decision=maybe", as: "ada").status == .unprocessableContent)
            #expect(try await client.send(.get, "/v1/ops/audit?limit=0", as: "ada").status == .unprocessableContent)
        }
        // A probe with a very long id is a 404, audited as denied, with its target cut: the
        // append-only table keeps no 60 KB rows.
        try await fixture.test { client in
            let junk = String(repeating: "a", count: 60_000)
            #expect(try await client.send(.get, "/v1/parties/\(junk)", as: "nora").status == .notFound)
            let audit = try await client.send(.get, "/v1/ops/audit?decision=denied&limit=10", as: "lena")
            let probe = try #require((try audit.json()["entries"] as? [[String: Any]])?.first { $0["action"] as? String == "view-party" })
            #expect((probe["target"] as? String)?.hasPrefix("party/aaaa") == true)
            #expect((probe["target"] as? String)?.count == AccessAudit.targetLength)
        }
        // The audit is append-only in the engine itself.
        let database = try DatabaseQueue(path: fixture.platform.canonical.path)
        #expect(throws: (any Error).self) { try database.write { try $0.execute(sql: "UPDATE access_audit SET decision = 'allowed'") } }
        #expect(throws: (any Error).self) { try database.write { try $0.execute(sql: "DELETE FROM access_audit") } }
    }
}
