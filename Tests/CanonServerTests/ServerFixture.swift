import Canon
import CanonServer
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// A server on a real SQLite canonical store in a temporary directory, with one user per role.
struct ServerFixture: Sendable {
    let scratch: TemporaryDirectory
    let store: SQLiteCanonicalStore
    let services: PlatformServices
    let maxBodyBytes: Int

    static let users = [
        User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2),
        User(id: "olga", displayName: "Olga", role: .investigator, team: "data-protection", clearance: 2),
        User(id: "sam", displayName: "Sam", role: .supervisor, team: "financial-crime", clearance: 3),
        User(id: "nora", displayName: "Nora", role: .analyst, team: "financial-crime", clearance: 1),
        User(id: "lena", displayName: "Lena", role: .legal, team: nil, clearance: 3),
        User(id: "ada", displayName: "Ada", role: .admin, team: nil, clearance: 3),
    ]

    init(maxBodyBytes: Int = 64 * 1024) async throws {
        scratch = try TemporaryDirectory(prefix: "canon-server")
        store = try SQLiteCanonicalStore(path: scratch.file("canonical.sqlite"), migrations: CasePlatformSchema.migrations)
        let commands = CaseCommands(store: store)
        for user in Self.users { _ = try await commands.registerUser(user) }
        services = try await PlatformServices(store: store)
        self.maxBodyBytes = maxBodyBytes
    }

    func token(_ user: String) -> String { services.tokens.token(for: user) }

    func makeRouter() -> Router<CanonRequestContext> {
        CanonServer.router(services: services, configuration: .init(maxBodyBytes: maxBodyBytes))
    }

    /// Runs `body` against the router without a network.
    func test<Value: Sendable>(_ body: @Sendable (Client) async throws -> Value) async throws -> Value {
        let app = Application(router: makeRouter())
        let fixture = self
        return try await app.test(.router) { client in try await body(Client(client: client, fixture: fixture)) }
    }

    /// A test client that checks, on every answer, that the server never answered 500 and that
    /// every error is a problem document.
    struct Client: Sendable {
        let client: any TestClientProtocol
        let fixture: ServerFixture

        struct Answer: Sendable {
            let status: HTTPResponse.Status
            let headers: HTTPFields
            let body: Data

            func json() throws -> [String: Any] {
                try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
            }

            var problemType: String? { (try? json())?["type"] as? String }
        }

        @discardableResult
        func send(
            _ method: HTTPRequest.Method, _ uri: String, as user: String? = nil, json: String? = nil,
            headers extra: HTTPFields = [:], rawBody: ByteBuffer? = nil
        ) async throws -> Answer {
            var headers = extra
            if let user { headers[.authorization] = "Bearer \(fixture.token(user))" }
            if json != nil && headers[.contentType] == nil { headers[.contentType] = "application/json" }
            let body = rawBody ?? json.map { ByteBuffer(string: $0) }
            return try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
                let answer = Answer(status: response.status, headers: response.headers, body: Data(buffer: response.body))
                #expect(answer.status.code < 500, "\(method) \(uri) answered \(answer.status.code): \(String(decoding: answer.body, as: UTF8.self))")
                if answer.status.code >= 400 {
                    #expect(answer.headers[.contentType] == "application/problem+json", "\(method) \(uri) error is a problem document")
                    let problem = try answer.json()
                    #expect(problem["type"] is String && problem["title"] is String && problem["detail"] is String)
                    #expect(problem["status"] as? Int == Int(answer.status.code))
                }
                return answer
            }
        }

        /// Opens a case as `user` and returns its id.
        func openCase(as user: String = "ivan", title: String = "Suspicious lending") async throws -> String {
            let answer = try await send(.post, "/v1/cases", as: user, json: """
                {"title":"\(title)","summary":"Loans without licence","sector":"banking","region":"north","priority":"high"}
                """)
            #expect(answer.status == .created)
            return try #require(try answer.json()["id"] as? String)
        }

        func registerParty(as user: String = "ivan") async throws -> String {
            let answer = try await send(.post, "/v1/parties", as: user, json: """
                {"kind":"person","name":"Maria Rossi","email":"maria.rossi@example.org","national_id":"NI-12345678"}
                """)
            #expect(answer.status == .created)
            return try #require(try answer.json()["id"] as? String)
        }
    }
}
