import Canon
import CanonPostgres
import CanonSQLite
import CasePlatform
import Foundation
import HTTPTypes
import Testing

/// The command routes take the principal a request before read (`PrincipalCache`) instead of
/// reading it again; their commits require the principal's row unchanged, so a change made even
/// behind the server's back (raw SQL) takes effect on the very next write.
@Suite("The principal at commit")
struct PrincipalAtCommitTests {
    static let newCase = #"{"title":"Suspicious lending","summary":"Loans without licence","sector":"banking","region":"north","priority":"high"}"#

    @Test(arguments: ServerEngine.all)
    func aPrincipalChangedBehindTheServersBackTakesEffectOnTheNextWrite(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine, runAgents: false)
        let store = fixture.store
        let sql: @Sendable (String) async throws -> Void = { statement in
            switch store {
            case let store as SQLiteCanonicalStore: try await store.executeRawSQL(statement)
            case let store as PostgresCanonicalStore: try await store.executeRawSQL(statement)
            default: Issue.record("no raw SQL on \(type(of: store))")
            }
        }
        try await fixture.test { client in
            let id = try await client.openCase(as: "ivan")
            _ = try await client.openCase(as: "sam")
            #expect(fixture.services.principals.user("ivan")?.role == .investigator, "the command routes now hold Ivan as he was")
            // Reads always read the principal; the command routes take the one they hold.
            let hits = fixture.services.principals.hits
            #expect(try await client.send(.get, "/v1/cases/\(id)", as: "ivan").status == .ok)
            #expect(fixture.services.principals.hits == hits)
            _ = try await client.openCase(as: "ivan")
            #expect(fixture.services.principals.hits == hits + 1)

            // Demoted: refused on both kinds of write, and nothing is written.
            try await sql("UPDATE users SET role = 'analyst' WHERE id = 'ivan'")
            let head = try await fixture.store.headPosition()
            #expect(try await client.send(.post, "/v1/cases", as: "ivan", json: Self.newCase).status == .forbidden)
            let transition = #"{"to":"triage","reason":"assessed"}"#
            #expect(try await client.send(.post, "/v1/cases/\(id)/transitions", as: "ivan", json: transition).status == .forbidden)
            #expect(try await fixture.store.headPosition() == head)
            #expect(fixture.services.principals.user("ivan")?.role == .analyst, "the routes now hold him as he is")

            // Moved to another team: the case he opens lands in the team he is in now.
            try await sql("UPDATE users SET role = 'investigator', team = 'data-protection' WHERE id = 'ivan'")
            let opened = try await client.send(.post, "/v1/cases", as: "ivan", json: Self.newCase)
            #expect(opened.status == .created)
            let openedID = try #require(try opened.json()["id"] as? String)
            #expect(try await fixture.store.fetchOne("cases", where: ["id": .text(openedID)])?.string("team") == "data-protection")

            // Promoted: Nora, an analyst the command routes hold as such, may now write.
            #expect(try await client.send(.post, "/v1/cases", as: "nora", json: Self.newCase).status == .forbidden)
            try await sql("UPDATE users SET role = 'investigator' WHERE id = 'nora'")
            #expect(try await client.send(.post, "/v1/cases", as: "nora", json: Self.newCase).status == .created)

            // A command that fails before its commit, on a principal moved to another team: the
            // failure (here a stale If-Match, which would tell the case's version) reaches only a
            // principal who still holds the rights it was decided on.
            _ = try await client.openCase(as: "olga")
            let olgasCase = try await client.openCase(as: "olga")
            try await sql("UPDATE users SET team = 'financial-crime' WHERE id = 'olga'")
            var ifMatch = HTTPFields()
            ifMatch[.ifMatch] = "\"99\""
            let failed = try await client.send(.post, "/v1/cases/\(olgasCase)/transitions", as: "olga", json: transition, headers: ifMatch)
            #expect(failed.status == .conflict, "\(failed.status)")
            #expect(!String(decoding: failed.body, as: UTF8.self).contains("version 1"))
            // As she is now, that case is another team's.
            #expect(try await client.send(.post, "/v1/cases/\(olgasCase)/transitions", as: "olga", json: transition, headers: ifMatch).status == .forbidden)

            // Removed: no write, and the route answers as for any unknown principal.
            try await sql("DELETE FROM users WHERE id = 'sam'")
            let removed = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "sam", json: transition)
            #expect(removed.status == .unauthorized)
            #expect(fixture.services.principals.user("sam") == nil)
        }
    }
}
