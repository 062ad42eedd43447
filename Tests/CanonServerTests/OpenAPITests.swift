import CanonServer
import Hummingbird
import Testing
import Yams

@Suite("OpenAPI document")
struct OpenAPITests {
    @Test func everyRegisteredRouteIsDescribed() async throws {
        let fixture = try await ServerFixture()
        let document = try #require(try Yams.load(yaml: OpenAPIDocument.yaml) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: Any])
        let routes = fixture.makeRouter().routes
        #expect(routes.count >= 17)
        for route in routes {
            let path = route.path.description
            let operations = paths[path] as? [String: Any]
            #expect(operations != nil, "route \(path) is missing from openapi.yaml")
            #expect(operations?[route.method.rawValue.lowercased()] != nil, "\(route.method) \(path) is missing from openapi.yaml")
        }
    }

    @Test func documentIsServed() async throws {
        let fixture = try await ServerFixture()
        try await fixture.test { client in
            let answer = try await client.send(.get, "/openapi.yaml")
            #expect(answer.status == .ok)
            #expect(answer.headers[.contentType] == "application/yaml")
            #expect(String(decoding: answer.body, as: UTF8.self) == OpenAPIDocument.yaml)
        }
    }
}
