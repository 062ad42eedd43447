import Canon
import CanonPostgres
import CanonServer
import CanonSQLite
import CasePlatform
import Foundation
import GRDB
import Hummingbird
import Testing

/// Drift over HTTP: checks run by an admin, the last results for everyone signed in, repair,
/// store health, the lifecycle audit and purge, with typed errors for bad input.
@Suite("Drift and lifecycle routes")
struct DriftRoutesTests {
    @Test(arguments: ServerEngine.all)
    func adminsRunChecksAndRepairsAndHealthFollowsTheResult(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            var ids: [String] = []
            for index in 0..<5 { ids.append(try await client.openCase(as: "ivan", title: "Drift case \(index)")) }
            let head = try await fixture.store.headPosition()
            #expect(try await fixture.coordinator.waitUntilApplied("case-search", position: head, timeout: .seconds(30)))

            let never = try await client.send(.get, "/v1/ops/drift", as: "nora")
            #expect(never.status == .ok)
            let stores = try #require(try never.json()["stores"] as? [[String: Any]])
            #expect(stores.contains { $0["name"] as? String == "case-search" && ($0["checks"] as? [Any])?.isEmpty == true })

            #expect(try await client.send(.post, "/v1/ops/drift/case-search", as: "nora").status == .forbidden)
            #expect(try await client.send(.post, "/v1/ops/drift/nope", as: "ada").status == .notFound)
            let badMode = try await client.send(.post, "/v1/ops/drift/case-search?mode=everything", as: "ada")
            #expect(badMode.status == .unprocessableContent)
            #expect(try badMode.json()["field"] as? String == "mode")
            #expect(try await client.send(.post, "/v1/ops/drift/case-search?mode=since", as: "ada").status == .unprocessableContent)
            #expect(try await client.send(.post, "/v1/ops/drift/case-search?segments=1", as: "ada").status == .unprocessableContent)
            #expect(try await client.send(.post, "/v1/ops/drift/case-search/repair?mode=sample", as: "ada").status == .unprocessableContent)

            let clean = try await client.send(.post, "/v1/ops/drift/case-search", as: "ada")
            #expect(clean.status == .ok)
            #expect((try clean.json()["differences"] as? [Any])?.isEmpty == true)
            #expect(try clean.json()["expected_keys"] as? Int == 5)

            // A document deleted behind the store's back: found, the store turns degraded, repaired.
            let victim = ids[2]
            switch engine {
            case .sqlite:
                try await DatabaseQueue(path: try fixture.platform.search.path).write { db in
                    try db.execute(sql: "DELETE FROM docs WHERE key = ?", arguments: [victim])
                }
            case .postgres:
                let admin = PostgresDatabase(url: try #require(fixture.scaledOut).url, maximumConnections: 1)
                defer { admin.close() }
                try await admin.execute("DELETE FROM case_search_v1.docs WHERE key = '\(victim)'")
            }
            let found = try await client.send(.post, "/v1/ops/drift/case-search", as: "ada")
            let differences = try #require(try found.json()["differences"] as? [[String: Any]])
            #expect(differences.count == 1 && differences.first?["key"] as? String == ids[2] && differences.first?["kind"] as? String == "missing")
            let portfolio = try await client.send(.get, "/v1/ops/portfolio", as: "ada")
            let search = try #require((try portfolio.json()["stores"] as? [[String: Any]])?.first { $0["name"] as? String == "case-search" })
            #expect(search["health"] as? String == "degraded", "a store that differs from canonical state is degraded")
            #expect((search["drift"] as? [String: Any])?["differences"] as? Int == 1)

            let repair = try await client.send(.post, "/v1/ops/drift/case-search/repair", as: "ada")
            #expect(repair.status == .ok)
            #expect(try repair.json()["repaired"] as? [String] == [ids[2]])
            #expect(((try repair.json()["verified"] as? [String: Any])?["differences"] as? [Any])?.isEmpty == true)
            let after = try await client.send(.get, "/v1/ops/portfolio", as: "ada")
            let healed = try #require((try after.json()["stores"] as? [[String: Any]])?.first { $0["name"] as? String == "case-search" })
            #expect(healed["health"] as? String == "ok")
            let summaries = try await client.send(.get, "/v1/ops/drift", as: "nora")
            let searchChecks = try #require((try summaries.json()["stores"] as? [[String: Any]])?.first { $0["name"] as? String == "case-search" }?["checks"] as? [[String: Any]])
            #expect(searchChecks.first?["mode"] as? String == "full" && searchChecks.first?["differences"] as? Int == 0)
        }
    }

    @Test(arguments: ServerEngine.all)
    func purgeIsForLegalOnClosedCasesAndTheLifecycleAuditFollowsIt(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase(as: "sam")
            #expect(try await client.send(.post, "/v1/cases/\(id)/purge", as: "lena", json: #"{"reason":"r"}"#).status == .conflict, "only closed cases")
            for step in ["triage", "investigation", "enforcement", "closed"] {
                #expect(try await client.send(.post, "/v1/cases/\(id)/transitions", as: "sam", json: #"{"to":"\#(step)","reason":"r"}"#).status == .ok)
            }
            #expect(try await client.send(.post, "/v1/cases/\(id)/purge", as: "sam", json: #"{"reason":"r"}"#).status == .forbidden)
            #expect(try await client.send(.post, "/v1/cases/\(id)/purge", as: "lena", json: #"{}"#).status == .unprocessableContent)
            let purged = try await client.send(.post, "/v1/cases/\(id)/purge", as: "lena", json: #"{"reason":"retention period over"}"#)
            #expect(purged.status == .ok)
            let position = OutboxPosition(Int64(try #require(try purged.json()["position"] as? Int)))
            #expect(try await client.send(.get, "/v1/cases/\(id)", as: "lena").status == .notFound)
            let search = try await client.send(.get, "/v1/search/cases?q=&min_position=\(position.rawValue)", as: "lena")
            #expect(search.status == .ok)
            #expect((try search.json()["results"] as? [[String: Any]])?.contains { $0["id"] as? String == id } == false)

            #expect(try await client.send(.get, "/v1/ops/lifecycle/audit", as: "nora").status == .forbidden)
            for name in ["case-search", "case-timeline"] {
                #expect(try await fixture.coordinator.waitUntilApplied(name, position: position, timeout: .seconds(30)))
            }
            let audit = try await client.send(.get, "/v1/ops/lifecycle/audit", as: "lena")
            #expect(audit.status == .ok)
            #expect(try audit.json()["tombstones"] as? Int == 1)
            #expect((try audit.json()["findings"] as? [Any])?.isEmpty == true)

            // The purged case's document put back behind the store's back: the audit finds it.
            switch engine {
            case .sqlite:
                try await DatabaseQueue(path: try fixture.platform.search.path).write { db in
                    try db.execute(
                        sql: "INSERT INTO docs (key, team, restricted, clearance, sort_time, last_position, digest) VALUES (?, 'financial-crime', 0, 1, 0, 1, 42)",
                        arguments: [id])
                }
            case .postgres:
                let admin = PostgresDatabase(url: try #require(fixture.scaledOut).url, maximumConnections: 1)
                defer { admin.close() }
                try await admin.execute("""
                    INSERT INTO case_search_v1.docs (key, team, restricted, clearance, sort_time, last_position, digest, display, tsv, t_title, t_parties, t_summary)
                    VALUES ('\(id)', 'financial-crime', 0, 1, 0, 1, 42, '{}', ''::tsvector, 'back', '', '')
                    """)
            }
            let found = try await client.send(.get, "/v1/ops/lifecycle/audit", as: "lena")
            let findings = try #require(try found.json()["findings"] as? [[String: Any]])
            #expect(findings.count == 1 && findings.first?["key"] as? String == id && findings.first?["store"] as? String == "case-search")
            #expect(findings.first?["pending"] as? Bool == false, "the store applied the purge: a violation, not lag")
        }
    }

    /// Every live store of either engine is drift-checkable, and the answers say which were
    /// checked: a store left out would read as clean.
    @Test(arguments: ServerEngine.all)
    func everyLiveStoreIsCheckedOnEitherEngine(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine, runAgents: false)
        try await fixture.test { client in
            let drift = try await client.send(.get, "/v1/ops/drift", as: "nora")
            #expect(drift.status == .ok)
            let stores = try #require(try drift.json()["stores"] as? [[String: Any]]).compactMap { $0["name"] as? String }
            let notCheckable = try #require(try drift.json()["not_checkable"] as? [String])
            let audit = try await client.send(.get, "/v1/ops/lifecycle/audit", as: "lena")
            let checked = try #require(try audit.json()["stores_checked"] as? [String])
            let notChecked = try #require(try audit.json()["stores_not_checked"] as? [String])
            #expect(notCheckable.isEmpty && notChecked.isEmpty)
            for name in ["case-search", "case-timeline"] {
                #expect(stores.contains(name) && checked.contains(name), "\(name) on \(engine)")
            }
        }
    }
}
