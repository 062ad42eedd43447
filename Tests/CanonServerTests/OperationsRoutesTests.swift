import Canon
import CanonServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Health, readiness and the live server")
struct OperationsRoutesTests {
    @Test(arguments: ServerEngine.all)
    func healthAndReadinessAnswer(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let health = try await client.send(.get, "/health")
            #expect(health.status == .ok)
            #expect(try health.json()["status"] as? String == "ok")
            let ready = try await client.send(.get, "/ready")
            #expect(ready.status == .ok)
            #expect(try ready.json()["head_position"] as? Int == Int(try await fixture.store.headPosition().rawValue))
            let home = try await client.send(.get, "/")
            #expect(home.status == .ok)
            let page = String(decoding: home.body, as: UTF8.self)
            #expect(page.contains("<h1>Canon"))
            // The console shows the portfolio: every declared store with its health.
            #expect(page.contains("<h2>Portfolio: regulatory-case-platform</h2>"))
            #expect(page.contains("<td>sla-dashboard</td><td>analytics</td><td>planned</td>"))
            #expect(page.contains("<td>case-search</td><td>projection</td><td>live</td>"))
        }
    }

    /// A real server on a real socket: the path `canon serve` takes.
    @Test(arguments: ServerEngine.all)
    func liveServerServesWritesAndReads(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        let app = CanonServer.application(services: fixture.services, configuration: .init(port: 0), logger: .init(label: "test"))
        let token = fixture.token("ivan")
        try await app.test(.live) { client in
            let created = try await client.execute(
                uri: "/v1/cases", method: .post,
                headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"title":"Live case","summary":"s","sector":"energy","region":"west","priority":"low"}"#))
            #expect(created.status == .created)
            let id = try #require(try JSONSerialization.jsonObject(with: Data(buffer: created.body)) as? [String: Any])["id"] as? String
            let read = try await client.execute(uri: "/v1/cases/\(id ?? "")", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(read.status == .ok)
            #expect(read.headers[.eTag] == "\"1\"")
        }
    }
}
