import Canon
import CanonTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOPosix
import Testing
@testable import CanonServer

/// Bad requests get a 4xx problem document and write nothing; no answer is ever a 500.
@Suite("Request errors")
struct RequestErrorTests {
    static let writeRoutes = ["/v1/cases", "/v1/parties"]

    @Test(arguments: ServerEngine.all)
    func missingOrInvalidAuthIs401(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let missing = try await client.send(.get, "/v1/me")
            #expect(missing.status == .unauthorized)
            #expect(missing.headers[.wwwAuthenticate] == "Bearer")
            for header in ["Bearer nonsense", "Bearer cn1.ivan.AAAA", "Basic aXZhbjpwdw==", "Bearer", "Bearer cn1.ghost.\(fixture.token("ivan").split(separator: ".").last!)"] {
                let answer = try await client.send(.get, "/v1/me", headers: [.authorization: header])
                #expect(answer.status == .unauthorized, "\(header)")
            }
            let forged = try await client.send(.post, "/v1/cases", json: #"{"title":"x"}"#, headers: [.authorization: "Bearer cn1.ada.forgedsignature"])
            #expect(forged.status == .unauthorized)
            let me = try await client.send(.get, "/v1/me", as: "ivan")
            #expect(me.status == .ok)
            #expect(try me.json()["role"] as? String == "investigator")
        }
        #expect(try await fixture.store.count("cases", filter: [:]) == 0)
    }

    @Test(arguments: ServerEngine.all)
    func malformedBodiesAre400AndWriteNothing(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        let head = try await fixture.store.headPosition()
        try await fixture.test { client in
            for route in Self.writeRoutes {
                for body in ["{not json", "", "[1,2,3]", "\"just a string\"", "{\"title\":"] {
                    let answer = try await client.send(.post, route, as: "ivan", json: body)
                    #expect(answer.status == .badRequest, "\(route) \(body)")
                }
            }
        }
        #expect(try await fixture.store.headPosition() == head)
    }

    @Test(arguments: ServerEngine.all)
    func missingNullAndWronglyTypedFieldsAre422NamingTheField(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let cases: [(String, String)] = [
                (#"{"summary":"s","sector":"banking","region":"north","priority":"high"}"#, "title"),
                (#"{"title":null,"summary":"s","sector":"banking","region":"north","priority":"high"}"#, "title"),
                (#"{"title":42,"summary":"s","sector":"banking","region":"north","priority":"high"}"#, "title"),
                (#"{"title":"t","summary":"s","sector":"banking","region":"north","priority":"urgent"}"#, "priority"),
                (#"{"title":"t","summary":"s","sector":"banking","region":"mars","priority":"high"}"#, "region"),
                (#"{"title":"   ","summary":"s","sector":"banking","region":"north","priority":"high"}"#, "title"),
                (#"{"title":"\#(String(repeating: "x", count: 201))","summary":"s","sector":"banking","region":"north","priority":"high"}"#, "title"),
                (#"{"title":"t","summary":"s","sector":"banking","region":"north","priority":"high","team":"Bad Team!"}"#, "team"),
            ]
            for (json, field) in cases {
                let answer = try await client.send(.post, "/v1/cases", as: "ivan", json: json)
                #expect(answer.status == .unprocessableContent, "\(json)")
                #expect(try answer.json()["field"] as? String == field, "\(json)")
            }
            let id = try await client.openCase()
            let transition = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "ivan", json: #"{"to":"triage"}"#)
            #expect(transition.status == .unprocessableContent)
            let restriction = try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":"yes","reason":"r"}"#)
            #expect(restriction.status == .unprocessableContent)
            let badTarget = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "ivan", json: #"{"to":"limbo","reason":"r"}"#)
            #expect(badTarget.status == .unprocessableContent)
        }
        #expect(try await fixture.store.count("cases", filter: [:]) == 1)
    }

    /// The test client states the body's length (`Content-Length`): refused before the body is
    /// read. A body of unstated length: `chunkedBodiesAreCountedAgainstTheLimit`.
    @Test(arguments: ServerEngine.all)
    func oversizeBodiesAre413AndWriteNothing(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine, maxBodyBytes: 1024)
        try await fixture.test { client in
            let big = String(repeating: "x", count: 4096)
            let answer = try await client.send(.post, "/v1/cases", as: "ivan", json: """
                {"title":"t","summary":"\(big)","sector":"banking","region":"north","priority":"high"}
                """)
            #expect(answer.status == .contentTooLarge)
            #expect(answer.problemType == "urn:canon:problem:body-too-large")
        }
        #expect(try await fixture.store.count("cases", filter: [:]) == 0)
    }

    /// A body of unstated length (chunked) on a real socket: collected against the limit, so one
    /// past it is refused with 413 and one within it is read once, by the route.
    @Test(arguments: ServerEngine.all)
    func chunkedBodiesAreCountedAgainstTheLimit(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine, maxBodyBytes: 1024)
        let app = CanonServer.application(
            services: fixture.services, configuration: .init(port: 0, maxBodyBytes: 1024), logger: .init(label: "test"))
        let token = fixture.token("ivan")
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let fits = #"{"title":"t","summary":"s","sector":"banking","region":"north","priority":"high"}"#
            let opened = try await Self.postChunked(fits, to: "/v1/cases", port: port, token: token)
            #expect(opened.hasPrefix("HTTP/1.1 201"), "\(opened)")
            let big = #"{"title":"t","summary":"\#(String(repeating: "x", count: 4096))","sector":"banking","region":"north","priority":"high"}"#
            let refused = try await Self.postChunked(big, to: "/v1/cases", port: port, token: token)
            #expect(refused.hasPrefix("HTTP/1.1 413"), "\(refused)")
            #expect(refused.contains("urn:canon:problem:body-too-large"))
        }
        #expect(try await fixture.store.count("cases", filter: [:]) == 1)
    }

    /// Sends `body` with `Transfer-Encoding: chunked` (no `Content-Length`) in 512-byte chunks on
    /// a connection of its own, and returns the whole answer as text.
    static func postChunked(_ body: String, to path: String, port: Int, token: String) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        var request = "POST \(path) HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(token)\r\n"
            + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        var rest = Substring(body)
        while !rest.isEmpty {
            let chunk = rest.prefix(512)
            rest = rest.dropFirst(chunk.count)
            request += String(chunk.utf8.count, radix: 16) + "\r\n" + chunk + "\r\n"
        }
        request += "0\r\n\r\n"
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var answer = ""
            for try await part in inbound { answer += String(buffer: part) }
            return answer
        }
    }

    @Test(arguments: ServerEngine.all)
    func nonJSONContentTypeIs415(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let answer = try await client.send(.post, "/v1/cases", as: "ivan", json: "title=x", headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(answer.status == .unsupportedMediaType)
        }
    }

    @Test(arguments: ServerEngine.all)
    func unknownRoutesAre404Problems(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let versioned = try await client.send(.get, "/v1/nothing-here", as: "ivan")
            #expect(versioned.status == .notFound)
            let root = try await client.send(.get, "/nothing-here")
            #expect(root.status == .notFound)
            let wrongMethod = try await client.send(.delete, "/v1/cases/00000000-0000-4000-8000-000000000000", as: "ivan")
            #expect(wrongMethod.status == .methodNotAllowed)
            #expect(wrongMethod.headers[.allow] == "GET")
            let wrongOnCollection = try await client.send(.put, "/v1/cases", as: "ivan")
            #expect(wrongOnCollection.headers[.allow] == "POST")
        }
    }
}

@Suite("Search input cannot become FTS5 or tsquery syntax")
struct SearchInjectionTests {
    @Test(arguments: ServerEngine.all, [
        "tariff\" OR title:x", "\"", "a\"b", "NEAR(a b)", "title:*", "^start", "x%E0%B5%8E%22", "AND OR NOT", "''); DROP TABLE docs; --",
        "a & !b | (c <-> d):*", "\\", "a:B*",
    ])
    func hostileQueryTextAnswers200(_ engine: ServerEngine, _ text: String) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let encoded = text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let answer = try await client.send(.get, "/v1/search/cases?q=\(encoded)", as: "ivan")
            #expect(answer.status == .ok, "\(text) answered \(answer.status)")
        }
    }

    @Test(arguments: ServerEngine.all)
    func aForgedCursorWithAQuoteIsHarmless(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let forged = Data("r:0:0:a\"".utf8).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let answer = try await client.send(.get, "/v1/search/cases?q=x&cursor=\(forged)", as: "ivan")
            #expect(answer.status.code < 500)
        }
    }

    @Test(arguments: ServerEngine.all)
    func operationalDetailIsForAdmins(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let letters = try await client.send(.get, "/v1/ops/projections/case-search/dead-letters", as: "nora")
            #expect(letters.status == .forbidden)
            let adminLetters = try await client.send(.get, "/v1/ops/projections/case-search/dead-letters", as: "ada")
            #expect(adminLetters.status == .ok)
            let status = try await client.send(.get, "/v1/ops/projections", as: "nora")
            let rows = try #require(try status.json()["projections"] as? [[String: Any]])
            #expect(rows.allSatisfy { $0["owner"] == nil || $0["owner"] is NSNull })
            // The owner arrives with the first heartbeat: check again on each turn of the agent's loop.
            let agent = try fixture.coordinator.agent(named: "case-search")
            let sawOwner = try await waitUntil(wakingOn: agent.activity, timeout: .seconds(10)) {
                let adminStatus = try await client.send(.get, "/v1/ops/projections", as: "ada")
                let adminRows = try #require(try adminStatus.json()["projections"] as? [[String: Any]])
                return adminRows.contains { $0["owner"] is String }
            }
            #expect(sawOwner, "admins see which process runs each agent")
        }
    }
}

@Suite("Resuming projections")
struct ResumeRouteTests {
    @Test(arguments: ServerEngine.all)
    func onlyAdminsResumeAndOnlyPausedProjections(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let asInvestigator = try await client.send(.post, "/v1/ops/projections/case-search/resume", as: "ivan")
            #expect(asInvestigator.status == .forbidden)
            let notPaused = try await client.send(.post, "/v1/ops/projections/case-search/resume", as: "ada")
            #expect(notPaused.status == .conflict)
            #expect(notPaused.problemType == "urn:canon:problem:not-paused")
            let unknown = try await client.send(.post, "/v1/ops/projections/nope/resume", as: "ada")
            #expect(unknown.status == .notFound)
        }
    }
}

/// The content-type check reads bytes (no Foundation bridging); it must agree with a
/// case-insensitive search for "json".
@Suite("Content type")
struct ContentTypeTests {
    @Test(arguments: [
        ("application/json", true), ("Application/JSON; charset=utf-8", true), ("application/problem+json", true),
        ("text/json", true), ("JSON", true), ("application/x-www-form-urlencoded", false), ("text/plain", false),
        ("jso", false), ("", false), ("application/jsonx", true), ("application/jsox", false), ("application/j-s-o-n", false), ("application/\u{4A}SON", true),
        ("ｊｓｏｎ", false), ("application/jzon", false),
    ])
    func namesJSON(_ contentType: String, _ expected: Bool) {
        #expect(JSONBody.mentionsJSON(contentType) == expected)
        #expect(JSONBody.mentionsJSON(contentType) == contentType.lowercased().contains("json"))
    }
}
