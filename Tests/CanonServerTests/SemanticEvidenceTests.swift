import Canon
import CanonEmbedded
import CanonServer
import CanonSQLite
import CanonTesting
import CasePlatform
import Embeddings
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Semantic evidence retrieval through the HTTP API, on the real model and a real SQLite vector store.
@Suite("Semantic evidence retrieval")
struct SemanticEvidenceTests {
    static var modelInstalled: Bool { FileManager.default.fileExists(atPath: SentenceEmbedder.defaultDirectory + "/model.safetensors") }
    static let sha = String(repeating: "ef", count: 32)

    static let corpus: [(title: String, description: String)] = [
        ("Bank statements", "Monthly statements showing repeated cash deposits just under the reporting threshold"),
        ("Email from the director", "The director instructs staff to delete customer records before the inspection"),
        ("Warehouse photographs", "Photos of unlabelled chemical drums stored next to a river"),
        ("Loan agreements", "Contracts for high-interest loans issued without a consumer credit licence"),
        ("Call recording", "A sales agent pressures an elderly customer into switching energy tariff"),
        ("Server access logs", "Logs showing personal data exported to an unknown foreign server"),
    ]

    func addCorpus(_ client: ServerFixture.Client, caseID: String, as user: String = "ivan") async throws -> [String: String] {
        var ids: [String: String] = [:]
        for item in Self.corpus {
            let answer = try await client.send(.post, "/v1/cases/\(caseID)/evidence", as: user, json: """
                {"title":"\(item.title)","description":"\(item.description)","media_type":"application/pdf","size_bytes":100,"sha256":"\(Self.sha)"}
                """)
            #expect(answer.status == .created)
            ids[item.title] = try #require(try answer.json()["id"] as? String)
        }
        return ids
    }

    @Test(.enabled(if: modelInstalled, "run scripts/setup-model to install the model"), arguments: [
        ("someone is structuring cash payments to avoid anti-money-laundering reports", "Bank statements"),
        ("boss told employees to destroy files ahead of the audit", "Email from the director"),
        ("hazardous waste kept beside the water", "Warehouse photographs"),
        ("lending money without permission from the regulator", "Loan agreements"),
        ("pensioner pushed into changing electricity plan by a salesman", "Call recording"),
        ("data breach: customer information sent abroad", "Server access logs"),
    ])
    func aParaphraseFindsTheRightEvidenceFirst(_ query: (String, String)) async throws {
        let fixture = try await ServerFixture()
        try await fixture.test { client in
            let caseID = try await client.openCase()
            let ids = try await addCorpus(client, caseID: caseID)
            let head = try await fixture.store.headPosition()
            let q = query.0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let answer = try await client.send(.get, "/v1/evidence/semantic?q=\(q)&k=3&min_position=\(head.rawValue)", as: "ivan")
            #expect(answer.status == .ok)
            let body = try answer.json()
            let results = try #require(body["results"] as? [[String: Any]])
            #expect(results.count == 3)
            #expect(results.first?["evidence_id"] as? String == ids[query.1], "\(query.0) → \(results.map { $0["title"] ?? "?" })")
            #expect(results.first?["title"] as? String == query.1)
            let model = try #require(results.first?["model"] as? [String: Any])
            #expect(model["name"] as? String == "sentence-transformers/all-MiniLM-L6-v2")
            #expect(model["weights_sha256"] as? String == EmbeddingModelIdentity.miniLM.weightsSHA256)
            #expect(results.first?["source_version"] as? Int == results.first?["current_version"] as? Int)
            let scores = results.compactMap { $0["score"] as? Double }
            #expect(scores == scores.sorted(by: >))
            #expect((body["freshness"] as? [String: Any])?["as_of_position"] as? Int == Int(head.rawValue))
            #expect(answer.headers[HTTPField.Name("Canon-As-Of-Position")!] == String(head.rawValue))
        }
    }

    @Test(.enabled(if: modelInstalled, "run scripts/setup-model to install the model"))
    func resultsAreReauthorizedAgainstCanonicalState() async throws {
        let fixture = try await ServerFixture()
        try await fixture.test { client in
            let caseID = try await client.openCase(as: "ivan")
            _ = try await addCorpus(client, caseID: caseID)
            let restricted = try await client.send(.post, "/v1/cases/\(caseID)/restriction", as: "sam", json: #"{"restricted":true,"reason":"whistleblower"}"#)
            #expect(restricted.status == .ok)
            let head = try await fixture.store.headPosition()
            // Olga is an investigator in another team: the restricted case's evidence never reaches her.
            let outsider = try await client.send(.get, "/v1/evidence/semantic?q=bank%20deposits&k=5&min_position=\(head.rawValue)", as: "olga")
            #expect(outsider.status == .ok)
            #expect((try outsider.json()["results"] as? [[String: Any]])?.isEmpty == true)
            let insider = try await client.send(.get, "/v1/evidence/semantic?q=bank%20deposits&k=5&min_position=\(head.rawValue)", as: "ivan")
            #expect((try insider.json()["results"] as? [[String: Any]])?.count == 5)
        }
    }

    @Test(.enabled(if: modelInstalled, "run scripts/setup-model to install the model"))
    func badQueriesAreClearErrors() async throws {
        let fixture = try await ServerFixture()
        try await fixture.test { client in
            for uri in ["/v1/evidence/semantic", "/v1/evidence/semantic?q=", "/v1/evidence/semantic?q=%20%20",
                        "/v1/evidence/semantic?q=x&k=0", "/v1/evidence/semantic?q=x&k=51", "/v1/evidence/semantic?q=x&k=ten",
                        "/v1/evidence/semantic?q=x&top=3", "/v1/evidence/semantic?q=" + String(repeating: "a", count: 1001)] {
                let answer = try await client.send(.get, uri, as: "ivan")
                #expect(answer.status == .unprocessableContent, "\(uri)")
            }
            // A `+` is a space, as a form or curl's examples send it.
            let plus = try await client.send(.get, "/v1/evidence/semantic?q=bank+deposits&k=1", as: "ivan")
            #expect(plus.status == .ok)
            #expect(try plus.json()["query"] as? String == "bank deposits")
            let unauthenticated = try await client.send(.get, "/v1/evidence/semantic?q=x")
            #expect(unauthenticated.status == .unauthorized)
        }
    }

    @Test func withoutTheModelSemanticSearchIsUnavailableAndEverythingElseWorks() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-no-model")
        let platform = try EmbeddedPlatform.open(
            scratch.dataDirectory, create: true, configuration: .init(modelDirectory: scratch.file("no-model")))
        #expect(platform.embedder == nil)
        #expect(platform.semanticUnavailable?.contains("scripts/setup-model") == true)
        #expect(!platform.coordinator.agents.map(\.identity.name).contains("evidence-semantic"))
        let services = try await platform.services()
        for user in ServerFixture.users { _ = try await services.commands.registerUser(user) }
        let router = CanonServer.router(services: services)
        let token = services.tokens.token(for: "ivan")
        try await Application(router: router).test(.router) { client in
            let semantic = try await client.execute(uri: "/v1/evidence/semantic?q=anything", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(semantic.status == .serviceUnavailable)
            #expect(String(buffer: semantic.body).contains("scripts/setup-model"))
            let search = try await client.execute(uri: "/v1/search/cases?q=x", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(search.status == .ok)
            let portfolio = try await client.execute(uri: "/v1/ops/portfolio", method: .get, headers: [.authorization: "Bearer \(token)"])
            let stores = try #require(try JSONSerialization.jsonObject(with: Data(buffer: portfolio.body)) as? [String: Any])["stores"] as? [[String: Any]]
            let entry = try #require(stores?.first { $0["name"] as? String == "evidence-semantic" })
            #expect(entry["health"] as? String == "degraded")
            #expect((entry["agent_state"] as? String)?.contains("scripts/setup-model") == true)
        }
    }
}
