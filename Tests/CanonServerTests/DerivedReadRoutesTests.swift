import Canon
import CanonTesting
import CanonServer
import CasePlatform
import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Testing

/// Search and timeline reads from derived stores, their freshness, and operating the projections,
/// through the router on real SQLite files with the projection agents running.
@Suite("Derived read routes")
struct DerivedReadRoutesTests {
    // MARK: - Read-your-writes

    @Test(arguments: ServerEngine.all)
    func searchWithMinPositionReadsYourOwnWrite(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let created = try await client.send(.post, "/v1/cases", as: "ivan", json: """
                {"title":"Zorblaxite lending scheme","summary":"Loans arranged through a shell company","sector":"banking","region":"north","priority":"high"}
                """)
            #expect(created.status == .created)
            let id = try #require(try created.json()["id"] as? String)
            let position = try #require(try created.json()["position"] as? Int)

            let answer = try await client.send(.get, "/v1/search/cases?q=zorblaxite&min_position=\(position)", as: "ivan")
            #expect(answer.status == .ok)
            let body = try answer.json()
            #expect(resultIDs(body) == [id], "the case is found at once")
            let first = try #require((body["results"] as? [[String: Any]])?.first)
            #expect(first["title"] as? String == "Zorblaxite lending scheme")
            #expect(first["status"] as? String == "intake")
            #expect(first["team"] as? String == "financial-crime")
            #expect((first["snippet"] as? String)?.lowercased().contains("<mark>zorblaxite</mark>") == true)
            #expect(first["score"] is Double)
            let freshness = try #require(body["freshness"] as? [String: Any])
            let asOf = try #require(freshness["as_of_position"] as? Int)
            #expect(asOf >= position)
            #expect(freshness["lag_events"] is Int)
            #expect(freshness["lag_ms"] is Int)
            #expect(freshness["as_of"] is String)
            let header = try #require(answer.headers[HTTPField.Name("Canon-As-Of-Position")!])
            #expect(Int(header).map { $0 >= position } == true, "Canon-As-Of-Position: \(header)")
            #expect(answer.headers[HTTPField.Name("Canon-Lag-Ms")!].flatMap { Int($0) } != nil)
            #expect(statusFacet(body) == ["intake": 1])
        }
    }

    /// Who may see the case is checked again after the timeline is read: a restriction that
    /// commits while the read waits for `min_position` is applied by the time the entries come
    /// back (they may even show it), so the answer is a 404, not the entries.
    @Test func aRestrictionDuringTheTimelinesWaitIsHonoured() async throws {
        let fixture = try await ServerFixture(runAgents: false)
        try await fixture.test { client in
            let id = try await client.openCase(as: "ivan", title: "Whistleblower report")
            // Restricted at clearance 2: ivan (clearance 2, the case's team) still sees it, and
            // his read of it is audited, which tells the test it passed the first check.
            #expect(try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r","clearance":2}"#).status == .ok)
            let head = try await fixture.store.headPosition()
            let audited = try await fixture.store.count(CasePlatformSchema.accessAudit.name, filter: [:])
            let recorded = fixture.services.audit.recorded
            let before = recorded.reached
            async let answer = client.send(.get, "/v1/cases/\(id)/timeline?min_position=\(head.rawValue)", as: "ivan")
            #expect(await recorded.wait(until: before.next, timeout: .seconds(20)), "the read passed its first check")
            #expect(try await fixture.store.count(CasePlatformSchema.accessAudit.name, filter: [:]) == audited + 1)
            #expect(try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r","clearance":3}"#).status == .ok)
            let coordinator = fixture.coordinator
            let agents = Task { try await coordinator.run() }
            defer { agents.cancel() }
            #expect(try await answer.status == .notFound, "ivan's clearance no longer reaches the case")
        }
    }

    /// A search answer that dropped a hit (the store lags a restriction) carries no facet counts
    /// and no spelling correction: the store computed them over that case too, and they would
    /// tell the caller it exists.
    @Test func anAnswerThatDroppedAHitCarriesNoFacets() async throws {
        let fixture = try await ServerFixture(runAgents: false, priorityPath: false)
        try await fixture.test { client in
            _ = try await client.openCase(as: "ivan", title: "Quokka tariffs")
            let id = try await client.openCase(as: "ivan", title: "Quokka levies")
            let coordinator = fixture.coordinator
            let agents = Task { try await coordinator.run() }
            #expect(try await coordinator.waitUntilApplied("case-search", position: try await fixture.store.headPosition(), timeout: .seconds(20)))
            agents.cancel()
            _ = try? await agents.value
            let before = try await client.send(.get, "/v1/search/cases?q=quokka", as: "ivan")
            #expect(statusFacet(try before.json()) == ["intake": 2])
            // Restricted above ivan's clearance; the store, its agents stopped, does not know yet.
            #expect(try await client.send(.post, "/v1/cases/\(id)/restriction", as: "lena", json: #"{"restricted":true,"reason":"r","clearance":3}"#).status == .ok)
            let after = try await client.send(.get, "/v1/search/cases?q=quokka", as: "ivan")
            #expect(after.status == .ok)
            let body = try after.json()
            #expect((body["results"] as? [Any])?.count == 1, "the restricted case is dropped")
            #expect(statusFacet(body).isEmpty, "no count that includes it: \(body["facets"] ?? "")")
        }
    }

    @Test(arguments: ServerEngine.all)
    func timelineWithMinPositionListsEntriesInOrderWithActors(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let created = try await client.send(.post, "/v1/cases", as: "ivan", json: """
                {"title":"Timeline case","summary":"s","sector":"energy","region":"west","priority":"low"}
                """)
            let id = try #require(try created.json()["id"] as? String)
            let opened = try #require(try created.json()["position"] as? Int)

            let first = try await client.send(.get, "/v1/cases/\(id)/timeline?min_position=\(opened)", as: "ivan")
            #expect(first.status == .ok)
            let firstBody = try first.json()
            #expect(firstBody["case_id"] as? String == id)
            let firstEntries = entries(firstBody)
            #expect(firstEntries.map { $0["kind"] as? String } == ["opened"])
            #expect(firstEntries.first?["actor"] as? String == "ivan")
            #expect(firstEntries.first?["position"] as? Int == opened)
            #expect((firstEntries.first?["summary"] as? String)?.contains("Timeline case") == true)
            #expect(first.headers[HTTPField.Name("Canon-As-Of-Position")!].flatMap { Int($0) }.map { $0 >= opened } == true)

            let moved = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "sam", json: #"{"to":"triage","reason":"initial review"}"#)
            #expect(moved.status == .ok)
            let transitioned = try #require(try moved.json()["position"] as? Int)
            #expect(transitioned > opened)

            let second = try await client.send(.get, "/v1/cases/\(id)/timeline?min_position=\(transitioned)", as: "ivan")
            #expect(second.status == .ok)
            let secondBody = try second.json()
            let list = entries(secondBody)
            #expect(list.map { $0["kind"] as? String } == ["opened", "transition"])
            #expect(list.map { $0["actor"] as? String } == ["ivan", "sam"])
            #expect(list.map { $0["position"] as? Int } == [opened, transitioned])
            #expect((list.last?["summary"] as? String)?.contains("intake to triage") == true)
            let times = list.compactMap { $0["at"] as? String }
            #expect(times.count == 2 && times == times.sorted())
            let freshness = try #require(secondBody["freshness"] as? [String: Any])
            #expect((freshness["as_of_position"] as? Int).map { $0 >= transitioned } == true)
        }
    }

    // MARK: - Not yet fresh

    @Test(arguments: ServerEngine.all)
    func minPositionNotReachedAnswers503AndPlainReadsAreStaleButHonest(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine, readWait: .milliseconds(300), runAgents: false)
        let head = try await fixture.store.headPosition()
        try #require(head.rawValue > 0, "registering the users wrote events")
        try await fixture.test { client in
            let token = fixture.token("ivan")
            let started = ContinuousClock.now
            let (status, headers, body) = try await client.client.execute(
                uri: "/v1/search/cases?min_position=\(head.rawValue)", method: .get, headers: [.authorization: "Bearer \(token)"]
            ) { response in (response.status, response.headers, Data(buffer: response.body)) }
            #expect(ContinuousClock.now - started >= .milliseconds(250), "the read waited for the store before giving up")
            #expect(status == .serviceUnavailable)
            #expect(headers[.contentType] == "application/problem+json")
            #expect(headers[.retryAfter] != nil)
            let problem = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
            #expect(problem["type"] as? String == "urn:canon:problem:not-yet-fresh")
            #expect(problem["position_reached"] as? Int == 0)
            #expect(problem["min_position"] as? Int == Int(head.rawValue))
            #expect(problem["status"] as? Int == 503)

            // Without min_position: the stale answer, saying how stale it is.
            let stale = try await client.send(.get, "/v1/search/cases", as: "ivan")
            #expect(stale.status == .ok)
            let freshness = try #require(try stale.json()["freshness"] as? [String: Any])
            #expect(freshness["as_of_position"] as? Int == 0)
            #expect(freshness["lag_events"] as? Int == Int(head.rawValue))
            #expect((freshness["lag_events"] as? Int).map { $0 > 0 } == true)
            #expect(stale.headers[HTTPField.Name("Canon-As-Of-Position")!] == "0")
            // Both reads are counted by freshness (series shared with other tests: at least one
            // each). The plain read is behind: lagging, or stale once its lag passes the store's
            // p95 (a loaded machine).
            let metrics = String(decoding: try await client.send(.get, "/metrics").body, as: UTF8.self).split(separator: "\n")
            func count(_ kinds: [String]) -> Double {
                kinds.map { kind in
                    metrics.filter { $0.hasPrefix(#"canon_derived_reads_total{store="case-search",freshness="\#(kind)"}"#) }
                        .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
                }.reduce(0, +)
            }
            #expect(count(["not_yet_fresh"]) >= 1)
            #expect(count(["lagging", "stale"]) >= 1)
            #expect(stale.headers[HTTPField.Name("Canon-Lag-Ms")!] != nil)

            // The timeline too.
            let id = try await client.openCase()
            let opened = try await fixture.store.headPosition()
            let timeline = try await client.client.execute(
                uri: "/v1/cases/\(id)/timeline?min_position=\(opened.rawValue)", method: .get, headers: [.authorization: "Bearer \(token)"]
            ) { response in response.status }
            #expect(timeline == .serviceUnavailable)
            let plain = try await client.send(.get, "/v1/cases/\(id)/timeline", as: "ivan")
            #expect(plain.status == .ok)
            #expect(entries(try plain.json()).isEmpty)
            #expect((try plain.json()["freshness"] as? [String: Any])?["lag_events"] as? Int == Int(opened.rawValue))
        }
    }

    // MARK: - Invalid parameters

    @Test(arguments: ServerEngine.all)
    func invalidParametersAre422NamingTheField(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase()
            let cases: [(String, String)] = [
                ("/v1/search/cases?limit=0", "limit"),
                ("/v1/search/cases?limit=101", "limit"),
                ("/v1/search/cases?limit=ten", "limit"),
                ("/v1/search/cases?min_position=-1", "min_position"),
                ("/v1/search/cases?min_position=soon", "min_position"),
                ("/v1/search/cases?cursor=not-a-cursor", "cursor"),
                ("/v1/search/cases?q=lending&cursor=\(Data("x:1:2".utf8).base64EncodedString())", "cursor"),
                ("/v1/cases/\(id)/timeline?limit=0", "limit"),
                ("/v1/cases/\(id)/timeline?min_position=x", "min_position"),
            ]
            for (uri, field) in cases {
                let answer = try await client.send(.get, uri, as: "ivan")
                #expect(answer.status == .unprocessableContent, "\(uri)")
                #expect(answer.problemType == "urn:canon:problem:invalid-field", "\(uri)")
                #expect(try answer.json()["field"] as? String == field, "\(uri)")
            }
        }
    }

    /// A cursor is only valid for the kind of query that issued it: a ranked (text) cursor sent
    /// without `q` must be refused as a bad cursor, not fail inside the engine.
    @Test(arguments: ServerEngine.all)
    func cursorOfATextQueryReusedWithoutTextIs422(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            _ = try await client.openCase(title: "Cursor lending one")
            let last = try await client.send(.post, "/v1/cases", as: "ivan", json: """
                {"title":"Cursor lending two","summary":"s","sector":"banking","region":"north","priority":"high"}
                """)
            let position = try #require(try last.json()["position"] as? Int)
            let page = try await client.send(.get, "/v1/search/cases?q=cursor&limit=1&min_position=\(position)", as: "ivan")
            #expect(page.status == .ok)
            let cursor = try #require(try page.json()["next_cursor"] as? String)
            let encoded = try #require(cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
            let answer = try await client.send(.get, "/v1/search/cases?limit=1&cursor=\(encoded)", as: "ivan")
            #expect(answer.status == .unprocessableContent)
            #expect(try answer.json()["field"] as? String == "cursor")
        }
    }

    // MARK: - Visibility

    @Test(arguments: ServerEngine.all)
    func restrictedCaseIsHiddenFromOtherTeamsInSearchFacetsAndTimeline(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let open = try await client.openCase(as: "ivan", title: "Glimmerquartz ledger gaps")
            let hidden = try await client.openCase(as: "ivan", title: "Glimmerquartz offshore accounts")
            let restricted = try await client.send(.post, "/v1/cases/\(hidden)/restriction", as: "lena", json: #"{"restricted":true,"reason":"court order"}"#)
            #expect(restricted.status == .ok)
            let position = try #require(try restricted.json()["position"] as? Int)

            // olga: an investigator of another team.
            for query in ["q=glimmerquartz&", "q=offshore&", ""] {
                let olga = try await client.send(.get, "/v1/search/cases?\(query)min_position=\(position)", as: "olga")
                #expect(olga.status == .ok)
                let body = try olga.json()
                #expect(!resultIDs(body).contains(hidden), "\(query)")
                #expect(statusFacet(body).values.reduce(0, +) == resultIDs(body).count, "facets count only what olga may see: \(query)")
            }
            let olga = try await client.send(.get, "/v1/search/cases?q=glimmerquartz&min_position=\(position)", as: "olga")
            #expect(resultIDs(try olga.json()) == [open])
            #expect(statusFacet(try olga.json()) == ["intake": 1])

            // lena (legal) and ivan (the case's team) see it.
            for user in ["lena", "ivan"] {
                let answer = try await client.send(.get, "/v1/search/cases?q=glimmerquartz&min_position=\(position)", as: user)
                #expect(answer.status == .ok)
                let body = try answer.json()
                #expect(Set(resultIDs(body)) == [open, hidden], "\(user)")
                #expect(statusFacet(body) == ["intake": 2], "\(user)")
                let shown = (body["results"] as? [[String: Any]])?.first { $0["id"] as? String == hidden }
                #expect(shown?["restricted"] as? Bool == true)
            }

            let timeline = try await client.send(.get, "/v1/cases/\(hidden)/timeline", as: "olga")
            #expect(timeline.status == .notFound)
            #expect(timeline.problemType == "urn:canon:problem:not-found")
            let legal = try await client.send(.get, "/v1/cases/\(hidden)/timeline?min_position=\(position)", as: "lena")
            #expect(legal.status == .ok)
            #expect(entries(try legal.json()).map { $0["kind"] as? String } == ["opened", "restriction"])
            #expect(entries(try legal.json()).last?["actor"] as? String == "lena")
        }
    }

    // MARK: - Operations

    @Test(arguments: ServerEngine.all)
    func projectionsStatusListsBothProjections(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            _ = try await client.openCase()
            let head = try await fixture.store.headPosition()
            for name in ["case-search", "case-timeline"] {
                #expect(try await fixture.coordinator.waitUntilApplied(name, position: head, timeout: .seconds(20)))
            }
            let answer = try await client.send(.get, "/v1/ops/projections", as: "ada")
            #expect(answer.status == .ok)
            let projections = try #require(try answer.json()["projections"] as? [[String: Any]])
            let byName = Dictionary(projections.compactMap { row in (row["name"] as? String).map { ($0, row) } }, uniquingKeysWith: { a, _ in a })
            #expect(Set(byName.keys).isSuperset(of: ["case-search", "case-timeline"]))
            for name in ["case-search", "case-timeline"] {
                let row = try #require(byName[name])
                #expect(row["position"] as? Int == Int(head.rawValue), "\(name)")
                #expect(row["lag_events"] as? Int == 0, "\(name)")
                #expect(row["lag_ms"] as? Int == 0, "\(name)")
                #expect(row["dead_letters"] as? Int == 0, "\(name)")
                #expect(row["version"] as? Int == 1, "\(name)")
                let state = try #require(row["state"] as? String)
                #expect(["starting", "idle", "catching-up"].contains(state), "\(name) state \(state)")
            }
            #expect(byName["case-timeline"]?["accelerator"] == nil, "the timeline has no accelerator")
            // On SQLite, case search shows its memory index: loaded by the first search (a small store loads inline).
            guard engine == .sqlite else {
                #expect(byName["case-search"]?["accelerator"] == nil)
                return
            }
            let before = try #require(byName["case-search"]?["accelerator"] as? [String: Any])
            #expect(before["name"] as? String == "memory-index")
            #expect(before["state"] as? String == "idle", "\(before)")
            #expect(try await client.send(.get, "/v1/search/cases?q=lending", as: "ivan").status == .ok)
            let after = try await client.send(.get, "/v1/ops/projections", as: "ada").json()["projections"] as? [[String: Any]]
            let index = try #require(after?.first { $0["name"] as? String == "case-search" }?["accelerator"] as? [String: Any])
            #expect(index["state"] as? String == "ready", "\(index)")
            #expect(index["documents"] as? Int == 1)
            #expect((index["bytes"] as? Int ?? 0) > 0)
        }
    }

    @Test(arguments: ServerEngine.all)
    func replayIsAdminOnlyAndLeavesTheTimelineUnchanged(_ engine: ServerEngine) async throws {
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let id = try await client.openCase()
            let moved = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "ivan", json: #"{"to":"triage","reason":"initial review"}"#)
            let position = try #require(try moved.json()["position"] as? Int)
            let before = try await client.send(.get, "/v1/cases/\(id)/timeline?min_position=\(position)", as: "ivan")
            #expect(before.status == .ok)
            let beforeEntries = try #require(try before.json()["entries"] as? [Any])
            #expect(beforeEntries.count == 2)

            let refused = try await client.send(.post, "/v1/ops/projections/case-timeline/replay", as: "ivan", json: #"{"from":0}"#)
            #expect(refused.status == .forbidden)
            #expect(refused.problemType == "urn:canon:problem:forbidden")
            #expect(try await (try fixture.timeline).checkpoint().position == OutboxPosition(Int64(position)), "a refused replay rewinds nothing")

            let replay = try await client.send(.post, "/v1/ops/projections/case-timeline/replay", as: "ada", json: #"{"from":0}"#)
            #expect(replay.status == .ok)
            #expect(try replay.json()["from"] as? Int == 0)
            #expect((try replay.json()["projection"] as? String)?.hasPrefix("case-timeline") == true)

            // Read-your-writes still holds after the rewind: min_position waits for the re-application.
            let after = try await client.send(.get, "/v1/cases/\(id)/timeline?min_position=\(position)", as: "ivan")
            #expect(after.status == .ok)
            let afterEntries = try #require(try after.json()["entries"] as? [Any])
            #expect(afterEntries.count == 2)
            let canonicalJSON = { (value: [Any]) in try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) }
            #expect(try canonicalJSON(afterEntries) == canonicalJSON(beforeEntries), "the same entries, no duplicates")
            let head = try await fixture.store.headPosition()
            let agent = try fixture.coordinator.agent(named: "case-timeline")
            #expect(try await waitUntil(wakingOn: agent.activity) { try await (try fixture.timeline).checkpoint().position == head },
                    "the replay reaches the head within 20 s")
            #expect(try await (try fixture.timeline).entries(key: id, limit: 100).count == 2)
            // Re-applying went through cleanly: nothing was parked on the way.
            #expect(try await (try fixture.timeline).deadLetters().isEmpty)
            let status = try await client.send(.get, "/v1/ops/projections", as: "ada")
            let timeline = (try status.json()["projections"] as? [[String: Any]])?.first { $0["name"] as? String == "case-timeline" }
            #expect(timeline?["position"] as? Int == Int(head.rawValue))
            #expect(timeline?["dead_letters"] as? Int == 0)
        }
    }

    @Test(arguments: ServerEngine.all)
    func metricsExposeProjectionCounters(_ engine: ServerEngine) async throws {
        // Agents record into the Prometheus registry only when it was installed before they were
        // created: /metrics installs it too, so ask it once before making the platform under test.
        let warmup = try await ServerFixture(engine: engine, runAgents: false)
        try await warmup.test { client in
            let answer = try await client.send(.get, "/metrics")
            #expect(answer.status == .ok)
            #expect(answer.headers[.contentType]?.hasPrefix("text/plain") == true)
        }
        let fixture = try await ServerFixture(engine: engine)
        try await fixture.test { client in
            let registered = try await fixture.store.headPosition()
            #expect(try await fixture.coordinator.waitUntilApplied("case-search", position: registered, timeout: .seconds(20)))
            let before = try await client.send(.get, "/metrics")
            let countBefore = appliedTotal(String(decoding: before.body, as: UTF8.self), projection: "case-search") ?? 0

            let id = try await client.openCase()
            let moved = try await client.send(.post, "/v1/cases/\(id)/transitions", as: "ivan", json: #"{"to":"triage","reason":"initial review"}"#)
            let position = try #require(try moved.json()["position"] as? Int)
            for name in ["case-search", "case-timeline"] {
                #expect(try await fixture.coordinator.waitUntilApplied(name, position: OutboxPosition(Int64(position)), timeout: .seconds(20)))
            }
            let answer = try await client.send(.get, "/metrics")
            #expect(answer.status == .ok)
            #expect(answer.headers[.contentType]?.hasPrefix("text/plain") == true)
            let text = String(decoding: answer.body, as: UTF8.self)
            #expect(text.contains("canon_projection_events_applied_total"))
            let countAfter = try #require(appliedTotal(text, projection: "case-search"), "a case-search series: \(text.prefix(2000))")
            #expect(countAfter >= countBefore + 2, "the two new events were counted: \(countBefore) → \(countAfter)")
            #expect(appliedTotal(text, projection: "case-timeline").map { $0 > 0 } == true)

            // Every request is timed by its route template, method and status; derived reads are
            // counted by freshness. (Series are shared by every server in the process: at least.)
            let lines = text.split(separator: "\n")
            func total(_ prefix: String) -> Double {
                lines.filter { $0.hasPrefix(prefix) }.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
            }
            #expect(total(#"canon_http_request_duration_seconds_count{route="/v1/cases/{id}/transitions",method="POST",status="200"}"#) >= 1, "\(text.prefix(3000))")
            #expect(total(#"canon_http_request_duration_seconds_count{route="/v1/cases",method="POST",status="201"}"#) >= 1)
            _ = try await client.send(.get, "/v1/no-such-route", as: "ivan")
            _ = try await client.send(.get, "/v1/cases/\(id)/timeline?min_position=\(position)", as: "ivan")
            let later = String(decoding: try await client.send(.get, "/metrics").body, as: UTF8.self).split(separator: "\n")
            func laterTotal(_ prefix: String) -> Double {
                later.filter { $0.hasPrefix(prefix) }.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
            }
            #expect(laterTotal(#"canon_http_request_duration_seconds_count{route="NotFound",method="GET",status="404"}"#) >= 1)
            #expect(laterTotal(#"canon_derived_reads_total{store="case-timeline",freshness="fresh"}"#) >= 1)
            // Each store's size: its files on SQLite, its schema on PostgreSQL.
            #expect(laterTotal(#"canon_store_bytes{store="canonical"}"#) > 0, "the canonical store's size")
            #expect(laterTotal(#"canon_store_bytes{store="case-search"}"#) > 0)
            #expect(laterTotal(#"canon_store_bytes{store="case-timeline"}"#) > 0)

            // On SQLite, searches count the path that answered them (PostgreSQL search has no
            // memory index). The index's size gauges are shared by every store of the same name in
            // the process (other tests' stores), so they are not checked here.
            guard engine == .sqlite else { return }
            let searched = try await client.send(.get, "/v1/search/cases?q=review&min_position=\(position)", as: "ivan")
            #expect(searched.status == .ok)
            let after = String(decoding: try await client.send(.get, "/metrics").body, as: UTF8.self).split(separator: "\n")
            // Other tests in the process publish series of other case-search versions.
            func values(_ prefix: String, _ extra: String = "") -> [Double] {
                after.filter { $0.hasPrefix(prefix) && $0.contains("case-search") && $0.contains(extra) }
                    .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            }
            #expect(values("canon_search_queries_total{", "path=\"memory\"").reduce(0, +) >= 1, "a search answered by the memory index")
        }
    }
}

/// The value of `canon_projection_events_applied_total` for `projection`, summed over its series.
private func appliedTotal(_ metrics: String, projection: String) -> Double? {
    let values = metrics.split(separator: "\n").filter {
        $0.hasPrefix("canon_projection_events_applied_total{") && $0.contains("projection=\"\(projection)\"")
    }.compactMap { line in line.split(separator: " ").last.flatMap { Double($0) } }
    return values.isEmpty ? nil : values.reduce(0, +)
}

// MARK: - Helpers

private func resultIDs(_ body: [String: Any]) -> [String] {
    (body["results"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
}

private func statusFacet(_ body: [String: Any]) -> [String: Int] {
    let facets = body["facets"] as? [String: Any]
    let status = facets?["status"] as? [String: Any] ?? [:]
    return status.mapValues { $0 as? Int ?? -1 }
}

private func entries(_ body: [String: Any]) -> [[String: Any]] {
    body["entries"] as? [[String: Any]] ?? []
}
