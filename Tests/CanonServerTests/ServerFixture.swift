import Canon
import CanonEmbedded
import CanonPostgres
import CanonServer
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// The engine a server test runs on: real SQLite files, or a real PostgreSQL server.
enum ServerEngine: String, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// SQLite always; PostgreSQL when a server is given (or required).
    static var all: [ServerEngine] { PostgresTestServer.enabled ? [.sqlite, .postgres] : [.sqlite] }
}

/// A server on a real canonical store (SQLite files in a temporary directory, or a new
/// PostgreSQL database), with one user per role.
struct ServerFixture: Sendable {
    let scratch: TemporaryDirectory
    let engine: ServerEngine
    let embedded: EmbeddedPlatform?
    let scaledOut: PostgresPlatform?
    let services: PlatformServices
    /// The canonical store itself, for checks behind the API's back.
    let store: any CanonicalStore
    let coordinator: ProjectionCoordinator
    let maxBodyBytes: Int

    /// The embedded platform (tests of embedded-only features).
    var platform: EmbeddedPlatform {
        guard let embedded else { preconditionFailure("this test needs the embedded platform") }
        return embedded
    }

    /// The live case timeline store.
    var timeline: any TimelineStore {
        get throws {
            guard let store = try coordinator.store(named: "case-timeline") as? any TimelineStore else {
                throw ProjectionError.unknownProjection("case-timeline", known: [])
            }
            return store
        }
    }

    static let users = [
        User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2),
        User(id: "olga", displayName: "Olga", role: .investigator, team: "data-protection", clearance: 2),
        User(id: "sam", displayName: "Sam", role: .supervisor, team: "financial-crime", clearance: 3),
        User(id: "nora", displayName: "Nora", role: .analyst, team: "financial-crime", clearance: 1),
        User(id: "lena", displayName: "Lena", role: .legal, team: nil, clearance: 3),
        User(id: "ada", displayName: "Ada", role: .admin, team: nil, clearance: 3),
    ]

    /// A platform on real SQLite files; `runAgents` starts the projection agents for `test`.
    /// - Parameters:
    ///   - readPolicy: the policy routes read through (default: the shipped portfolio's).
    ///   - now: the clock freshness is measured with.
    init(
        engine: ServerEngine = .sqlite, maxBodyBytes: Int = 64 * 1024, readWait: Duration = .seconds(20), runAgents: Bool = true, readPolicy: ReadPolicy? = nil,
        now: @escaping @Sendable () -> Date = { Date() }, projectionFaults: FaultInjector? = nil, priorityPath: Bool = true,
        retention: RetentionPolicy = .init(), wrapServicesStore: (@Sendable (any CanonicalStore) -> any CanonicalStore)? = nil
    ) async throws {
        // Before any metric object exists, as `canon serve` does, so /metrics sees them all.
        CanonMetrics.bootstrap()
        scratch = try TemporaryDirectory(prefix: "canon-server")
        // Generous limits for a loaded 2-core machine: a read with min_position waits up to 20 s
        // (a test that wants the 503 passes its own), an agent counts as stalled after 30 s, and a
        // held agent retries instead of dead-lettering the event it was held on.
        let agent = ProjectionAgent.Configuration(
            batchSize: 500, idleWait: .milliseconds(200), heartbeatInterval: .milliseconds(100),
            failurePolicy: FailurePolicy(maxAttempts: 10_000, maxBackoff: .milliseconds(100)))
        self.engine = engine
        let projections = ProjectionCoordinator.Configuration(agent: agent, stallAfter: .seconds(30), priorityPath: priorityPath)
        let signalling: SignallingCanonicalStore
        let portfolio: Portfolio
        var semanticUnavailable: String?
        switch engine {
        case .sqlite:
            let platform = try EmbeddedPlatform.open(
                scratch.dataDirectory, create: true, configuration: .init(projections: projections, projectionFaults: projectionFaults))
            embedded = platform
            scaledOut = nil
            store = platform.canonical
            signalling = platform.store
            coordinator = platform.coordinator
            portfolio = platform.portfolio
        case .postgres:
            let platform = try await PostgresPlatform.open(
                url: try await PostgresTestServer.createDatabase(), configuration: .init(projections: projections, projectionFaults: projectionFaults))
            embedded = nil
            scaledOut = platform
            store = platform.canonical
            signalling = platform.store
            coordinator = platform.coordinator
            portfolio = platform.portfolio
            semanticUnavailable = PostgresPlatform.semanticUnavailable
        }
        let commands = CaseCommands(store: signalling)
        for user in Self.users { _ = try await commands.registerUser(user) }
        // The routes' store, wrapped when a test fails one of its operations (the agents keep theirs).
        let servicesStore = wrapServicesStore.map {
            SignallingCanonicalStore($0(signalling.base), commits: signalling.commits, priorityCommits: signalling.priorityCommits)
        } ?? signalling
        services = try await PlatformServices(
            store: servicesStore, projections: coordinator, readPolicy: readPolicy ?? ReadPolicy(portfolio),
            readWait: readWait, now: now, semanticUnavailable: semanticUnavailable, retention: retention,
            storeSizes: { [embedded, scaledOut, coordinator] in
                if let embedded { return EmbeddedPlatform.fileSizes(in: embedded.directory, projections: coordinator.agents.map(\.store.identity)) }
                if let scaledOut { return await PostgresPlatform.storeSizes(scaledOut.canonical, coordinator) }
                return [:]
            }, scaledOut: engine == .postgres)
        self.maxBodyBytes = maxBodyBytes
        self.runAgents = runAgents
    }

    let runAgents: Bool

    func token(_ user: String) -> String { services.tokens.token(for: user) }

    func makeRouter() -> Router<CanonRequestContext> {
        CanonServer.router(services: services, configuration: .init(maxBodyBytes: maxBodyBytes))
    }

    /// Runs `body` against the router without a network.
    func test<Value: Sendable>(_ body: @Sendable (Client) async throws -> Value) async throws -> Value {
        let app = Application(router: makeRouter())
        let fixture = self
        let coordinator = self.coordinator
        let agents = runAgents ? Task { try await coordinator.run() } : nil
        do {
            let value = try await app.test(.router) { client in try await body(Client(client: client, fixture: fixture)) }
            await stop(agents)
            return value
        } catch {
            await stop(agents)
            throw error
        }
    }

    /// Stops the agents and lets go of the leases (their connection must be closed, not dropped).
    private func stop(_ agents: Task<Void, any Error>?) async {
        agents?.cancel()
        _ = await agents?.result
        await scaledOut?.leases.close()
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

/// Fails every projection commit while held: the agents retry and the derived stores lag
/// canonical state (the priority path, which does not go through these commits, still runs).
final class ProjectionHold: Sendable {
    let held = Mutex(false)

    var injector: FaultInjector {
        { [self] point in
            if point == .beforeCommit, self.held.withLock({ $0 }) { throw CanonicalStoreError.injectedFault(point) }
        }
    }
}
