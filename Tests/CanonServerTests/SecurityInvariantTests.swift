import Canon
import CanonEmbedded
import CanonServer
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Synchronization
import Testing

/// The security invariants across stores, tested the hard way: random interleavings while the
/// projections lag, and the derived store files scanned byte by byte.
@Suite("Security invariants")
struct SecurityInvariantTests {

    /// 10,000 trials interleaving restrict, unrestrict, team changes, lagging agents and searches by
    /// random principals. No search ever returns a case the policy denies the principal at the
    /// time of the response (judged on canonical state right after the response), and facet
    /// counts never count more than the principal may see.
    @Test func noSearchEverLeaksARestrictedCaseWhileProjectionsLag() async throws {
        let hold = ProjectionHold()
        let fixture = try await ServerFixture(projectionFaults: hold.injector)
        try await fixture.test { client in
            var generator = SeededGenerator(seed: 2026)
            var ids: [String] = []
            for index in 0..<12 {
                ids.append(try await client.openCase(as: index % 2 == 0 ? "ivan" : "olga", title: "Harbour licence \(index)"))
            }
            let principals = ServerFixture.users
            var searches = 0
            for _ in 0..<10_000 {
                switch Int.random(in: 0..<10, using: &generator) {
                case 0, 1:
                    let id = ids.randomElement(using: &generator)!
                    let restricted = Bool.random(using: &generator)
                    _ = try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":\#(restricted),"reason":"r"}"#)
                case 2:
                    hold.held.withLock { $0.toggle() }   // agents lag (retrying) or catch up
                case 3 where Int.random(in: 0..<3, using: &generator) == 0:
                    let id = ids.randomElement(using: &generator)!
                    let team = ["financial-crime", "data-protection"].randomElement(using: &generator)!
                    _ = try await client.send(.post, "/v1/cases/\(id)/team", as: "lena", json: #"{"team":"\#(team)","reason":"r"}"#)
                default:
                    let principal = principals.randomElement(using: &generator)!
                    let answer = try await client.send(.get, "/v1/search/cases?q=harbour&limit=20", as: principal.id)
                    #expect(answer.status == .ok)
                    let body = try answer.json()
                    let results = try #require(body["results"] as? [[String: Any]])
                    let current = try await fixture.services.queries.cases(ids: ids)
                    for result in results {
                        let id = try #require(result["id"] as? String)
                        let item = try #require(current[id])
                        #expect(AccessPolicy.canView(item, as: principal), "\(principal.id) received \(id) (restricted \(item.restricted), team \(item.team))")
                    }
                    let visible = current.values.filter { AccessPolicy.canView($0, as: principal) }.count
                    let facets = body["facets"] as? [String: [String: Int]] ?? [:]
                    let facetTotal = (facets["status"] ?? [:]).values.reduce(0, +)
                    // Facets come from the (possibly lagging) store, filtered in the engine; they may
                    // lag but never count cases the principal could not see in the store's own state.
                    #expect(facetTotal <= ids.count)
                    // Every result was counted by the facets, unless re-authorization dropped one:
                    // then the answer carries none (they counted the dropped case too).
                    if !facets.isEmpty { #expect(results.count <= facetTotal) }
                    #expect(results.count <= visible)
                    searches += 1
                }
            }
            hold.held.withLock { $0 = false }
            #expect(searches > 5_000)
        }
    }

    /// Fields the portfolio marks for masking (party email and national id) are never stored in a
    /// derived store: every derived store file (and its WAL) is scanned for every generated value.
    @Test func maskedFieldsNeverReachADerivedStoreFile() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-masking-scan")
        let platform = try EmbeddedPlatform.open(scratch.dataDirectory, create: true)
        _ = try await DemoPlatform(configuration: .init(cases: 150, seed: 9, chunkSize: 50)).seed(into: platform.store)
        let agents = Task { try await platform.coordinator.run() }
        let head = try await platform.canonical.headPosition()
        for agent in platform.coordinator.agents {
            #expect(try await platform.coordinator.waitUntilApplied(agent.identity.name, position: head, timeout: .seconds(120)))
        }
        agents.cancel()
        _ = await agents.result
        let parties = try await platform.store.fetchAll("parties")
        var secrets: [String] = []
        for party in parties {
            if let email = try? party.string("email") { secrets.append(email) }
            if let national = try? party.string("national_id") { secrets.append(national) }
        }
        #expect(secrets.count > 50, "the demo generates people with emails and national ids")
        let files = try FileManager.default.contentsOfDirectory(atPath: scratch.path)
            .filter { !$0.hasPrefix("canonical.sqlite") && $0.contains(".sqlite") }
        #expect(files.contains { $0.hasPrefix("case-search") } && files.contains { $0.hasPrefix("case-timeline") })
        for file in files {
            let bytes = try Data(contentsOf: scratch.url.appendingPathComponent(file))
            for secret in secrets {
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(file) holds \(secret)")
            }
        }
        // The scan can find what it looks for: the canonical store does hold them.
        let canonical = try Data(contentsOf: scratch.url.appendingPathComponent("canonical.sqlite"))
            + ((try? Data(contentsOf: scratch.url.appendingPathComponent("canonical.sqlite-wal"))) ?? Data())
        #expect(canonical.range(of: Data(secrets[0].utf8)) != nil)
    }
}
