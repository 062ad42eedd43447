import Canon
import CasePlatform
import Foundation
import Logging
import HTTPTypes
import Hummingbird
import Metrics

/// Reads from derived stores. Every answer says how fresh it is, in the body and as headers;
/// `min_position=P` waits (bounded) until the store has applied P, and otherwise answers 503
/// with the position reached, never stale data that claims to be fresh.
struct DerivedReadRoutes {
    let services: PlatformServices

    func register(on group: RouterGroup<CanonRequestContext>) {
        group.get("search/cases", use: searchCases)
        group.get("cases/{id}/timeline", use: timeline)
        group.get("evidence/semantic", use: semanticEvidence)
    }

    struct SearchAnswer: Encodable {
        var results: [Result]
        var facets: [String: [String: Int]]
        var freshness: Freshness
        var nextCursor: String?
        var correctedQuery: String?

        struct Result: Encodable {
            var display: CaseSearchProjection.Display
            var score: Double?
            var snippet: String?

            func encode(to encoder: any Encoder) throws {
                try display.encode(to: encoder)
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encodeIfPresent(score, forKey: .score)
                try container.encodeIfPresent(snippet, forKey: .snippet)
            }

            enum CodingKeys: String, CodingKey { case score, snippet }
        }

        enum CodingKeys: String, CodingKey {
            case results, facets, freshness
            case nextCursor = "next_cursor", correctedQuery = "corrected_query"
        }
    }

    @Sendable func searchCases(_ request: Request, context: CanonRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let parameters = request.uri.queryParameters
        try QueryParameters.requireKnown(parameters, ["q", "status", "sector", "region", "priority", "team", "assignee", "limit", "cursor", "min_position"])
        var filters: [String: String] = [:]
        for field in ["status", "sector", "region", "priority", "team", "assignee"] {
            guard let value = try QueryParameters.single(parameters[values: Substring(field)], field) else { continue }
            filters[field] = try Self.filterValue(value, field: field)
        }
        let limit = try integer(parameters["limit"], name: "limit", range: 1...100) ?? 20
        let minimum = try integer(parameters["min_position"], name: "min_position", range: 0...Int.max).map { OutboxPosition(Int64($0)) }
        let search = try services.search(for: .searchCases)
        let freshness = try await waitForFreshness(search, minimum: minimum)
        let visibility = AccessPolicy.searchVisibility(for: principal)
        let query = SearchQuery(
            text: parameters["q"].map(String.init), filters: filters, limit: limit, cursor: parameters["cursor"].map(String.init),
            visibility: visibility)
        let results: SearchResults
        do {
            results = try await search.search(query)
        } catch let error as SearchError {
            throw ProblemDetails.invalidBody(error.message, field: error.field)
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = Timestamp.decodingStrategy
        let decoded = try results.hits.map { hit in
            SearchAnswer.Result(display: try decoder.decode(CaseSearchProjection.Display.self, from: hit.display), score: hit.score, snippet: hit.snippet)
        }
        let (hits, restricted) = try await reauthorize(decoded, for: principal, store: search)
        // Restricted cases returned are reads of restricted data, audited as a case read is.
        try await services.audit.recordReads(
            principal, action: PlatformOperation.searchCases.rawValue, targets: restricted.map { "case/\($0)" }, reason: "search result")
        // A dropped hit says the store lags a permission change: its facet counts (and a spelling
        // correction drawn from the same documents) may count that case too, and would tell the
        // caller it exists. Such an answer carries neither.
        let lagging = hits.count < decoded.count
        let answer = SearchAnswer(
            results: hits, facets: lagging ? [:] : results.facets, freshness: freshness, nextCursor: results.nextCursor,
            correctedQuery: lagging ? nil : results.correctedQuery)
        return try JSONBody.response(answer, headers: freshnessHeaders(freshness))
    }

    /// Re-authorizes search results against canonical state in one batch read before they leave
    /// the server: a result whose case the principal may no longer see (the projection lags a
    /// restriction) or that no longer exists is dropped and counted in
    /// `canon_authorization_mismatch_total`. Its case is also queued for targeted repair: a refold
    /// at the store's checkpoint, which fixes a document that drifted from its events; a document
    /// that only lags is fixed when the agent applies the newer events.
    ///
    /// - Returns: the results kept, and the ids of the restricted cases among them.
    private func reauthorize(
        _ results: [SearchAnswer.Result], for principal: User, store: any SearchStore
    ) async throws -> (kept: [SearchAnswer.Result], restricted: [String]) {
        guard !results.isEmpty else { return (results, []) }
        let current = try await services.queries(for: .searchCases).cases(ids: results.map(\.display.id))
        var kept: [SearchAnswer.Result] = []
        var restricted: [String] = []
        var stale: [String] = []
        for result in results {
            if let item = current[result.display.id], AccessPolicy.canView(item, as: principal) {
                kept.append(result)
                if item.restricted { restricted.append(item.id) }
            } else {
                stale.append(result.display.id)
            }
        }
        if !stale.isEmpty {
            Self.mismatches.increment(by: stale.count)
            services.authorizationMismatches.record(stale.count)
            let source = services.store
            Task {
                for id in stale {
                    do {
                        try await DeadLetterOperations.refold(stream: StreamID("case-\(id)"), in: store, source: source)
                    } catch {
                        // The result was dropped all the same; the agent or a drift repair fixes the document.
                        Self.repairLogger.warning("targeted repair of a search document failed", metadata: ["case": "\(id)", "error": "\(error)"])
                    }
                }
            }
        }
        return (kept, restricted)
    }

    static let mismatches = Counter(label: "canon_authorization_mismatch_total", dimensions: [("store", "case-search")])
    static let repairLogger = Logger(label: "canon.search.repair")

    struct TimelineAnswer: Encodable {
        var caseID: String
        var entries: [TimelineEntry]
        var freshness: Freshness

        enum CodingKeys: String, CodingKey {
            case entries, freshness
            case caseID = "case_id"
        }
    }

    @Sendable func timeline(_ request: Request, context: CanonRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        // The request is checked before the access is audited: a bad one reads nothing.
        let parameters = request.uri.queryParameters
        try QueryParameters.requireKnown(parameters, ["limit", "min_position"])
        let minimum = try integer(parameters["min_position"], name: "min_position", range: 0...Int.max).map { OutboxPosition(Int64($0)) }
        let limit = try integer(parameters["limit"], name: "limit", range: 1...1000) ?? 500
        // Who may see the case is decided on canonical state, never on the projection.
        let principal = try context.requirePrincipal()
        _ = try await services.audited(.viewCaseTimeline, caseID: id, by: principal) { () async throws -> Case in
            guard let item = try await services.queries(for: .viewCaseTimeline).caseIfVisible(id, to: principal) else {
                throw DomainError.notFound("case", id: id)
            }
            return item
        }
        let timeline = try services.timeline(for: .viewCaseTimeline)
        let freshness = try await waitForFreshness(timeline, minimum: minimum)
        let entries = try await timeline.entries(key: id, limit: limit)
        // Again after the read, as search re-authorizes its hits: a restriction that committed
        // during the wait for `min_position` (or the read) is in canonical state by now, and the
        // entries may show it. What the caller may no longer see is not answered.
        guard try await services.queries(for: .viewCaseTimeline).caseIfVisible(id, to: principal) != nil else {
            throw DomainError.notFound("case", id: id)
        }
        return try JSONBody.response(TimelineAnswer(caseID: id, entries: entries, freshness: freshness), headers: freshnessHeaders(freshness))
    }

    struct SemanticAnswer: Encodable {
        var query: String
        var model: EmbeddingModelDescriptor
        var results: [Result]
        var freshness: Freshness

        struct Result: Encodable {
            var evidenceID: String
            var caseID: String
            var title: String
            var score: Float
            /// The evidence version the vector was made from.
            var sourceVersion: Int64
            /// The evidence version in canonical state now; newer than `source_version` while the store lags.
            var currentVersion: Int64
            var model: EmbeddingModelDescriptor

            enum CodingKeys: String, CodingKey {
                case title, score, model
                case evidenceID = "evidence_id", caseID = "case_id", sourceVersion = "source_version", currentVersion = "current_version"
            }
        }
    }

    /// Semantic evidence retrieval: exact k-NN by cosine over the evidence vectors. Every
    /// candidate is re-authorized against canonical state (a restricted case's evidence never
    /// shows to someone who may not see the case) and titled from it.
    @Sendable func semanticEvidence(_ request: Request, context: CanonRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let parameters = request.uri.queryParameters
        try QueryParameters.requireKnown(parameters, ["q", "k", "min_position"])
        // A `+` in a query string is a space (form encoding, as browsers and curl's examples
        // send it): `q=staff+told+to+ignore+warnings` embeds the words, not the plus signs.
        let text = parameters["q"].map { $0.replacingOccurrences(of: "+", with: " ").trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard (1...1_000).contains(text.count) else {
            throw ProblemDetails.invalidBody("q is required: the text to search for, 1…1000 characters; got \(text.count)", field: "q")
        }
        let k = try integer(parameters["k"], name: "k", range: 1...50) ?? 10
        let minimum = try integer(parameters["min_position"], name: "min_position", range: 0...Int.max).map { OutboxPosition(Int64($0)) }
        let store = try services.semantic(for: .findSimilarEvidence)
        let freshness = try await waitForFreshness(store, minimum: minimum)
        let queries = try services.queries(for: .findSimilarEvidence)
        let vector = try await store.embedder.embedInBackground([text])[0]
        var results: [SemanticAnswer.Result] = []
        var visible: [String: Bool] = [:]
        var restricted: Set<String> = []
        var evidence: [String: [String: Evidence]] = [:]
        var seen = 0
        var limit = k * 4
        while true {
            let hits = try await store.nearest(to: vector, limit: limit)
            for hit in hits.dropFirst(seen) {
                if visible[hit.group] == nil {
                    let item = try await queries.caseIfVisible(hit.group, to: principal)
                    visible[hit.group] = item != nil
                    if item?.restricted == true { restricted.insert(hit.group) }
                }
                guard visible[hit.group] == true else { continue }
                if evidence[hit.group] == nil {
                    evidence[hit.group] = Dictionary(try await queries.evidence(caseID: hit.group).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
                }
                guard let current = evidence[hit.group]?[hit.key] else { continue }
                results.append(.init(
                    evidenceID: hit.key, caseID: hit.group, title: current.title, score: hit.score, sourceVersion: hit.sourceVersion,
                    currentVersion: current.version, model: hit.model))
                if results.count == k { break }
            }
            seen = hits.count
            if results.count >= k || hits.count < limit { break }
            limit *= 4
        }
        // Evidence of restricted cases returned is a read of restricted data, audited as such.
        let returned = Set(results.map(\.caseID)).intersection(restricted).sorted()
        try await services.audit.recordReads(
            principal, action: PlatformOperation.findSimilarEvidence.rawValue, targets: returned.map { "case/\($0)" }, reason: "similar evidence")
        let answer = SemanticAnswer(query: text, model: store.model, results: results, freshness: freshness)
        return try JSONBody.response(answer, headers: freshnessHeaders(freshness))
    }

    // MARK: - Freshness

    private func waitForFreshness(_ store: any ProjectionStore, minimum: OutboxPosition?) async throws -> Freshness {
        if let minimum {
            let reached = try await services.projections.waitUntilApplied(store.identity.name, position: minimum, timeout: services.readWait)
            let checkpoint = try await store.checkpoint()
            if !reached && checkpoint.position < minimum {
                // A position no write has had yet cannot be waited for: retrying would not help.
                let head = try await services.store.headPosition()
                if minimum > head {
                    throw ProblemDetails.invalidBody(
                        "min_position \(minimum) is beyond the outbox head (\(head)): pass the position a write answered", field: "min_position")
                }
                HTTPMetrics.recordRead(store: store.identity.name, .notYetFresh)
                throw ProblemDetails(
                    status: .serviceUnavailable, slug: "not-yet-fresh", title: "The derived store has not caught up",
                    detail: "\(store.identity.name) has applied position \(checkpoint.position), not \(minimum), within the wait; retry shortly",
                    extensions: ["position_reached": .int(checkpoint.position.rawValue), "min_position": .int(minimum.rawValue)],
                    headers: [.retryAfter: "1"])
            }
        }
        let freshness = try await Freshness.measure(checkpoint: store.checkpoint(), source: services.store, now: services.now())
        let p95 = services.portfolio.store(named: store.identity.name)?.freshness?.p95?.value.milliseconds
        let kind: HTTPMetrics.ReadFreshness = freshness.lagEvents == 0 ? .fresh : (p95.map { freshness.lagMilliseconds > $0 } == true ? .stale : .lagging)
        HTTPMetrics.recordRead(store: store.identity.name, kind)
        return freshness
    }

    /// A filter's value: one of the catalogue's for `status`, `sector`, `region` and `priority`;
    /// a slug for `team` and `assignee`.
    static func filterValue(_ value: Substring, field: String) throws -> String {
        let allowed: [String]? = switch field {
        case "status": CaseStatus.allCases.map(\.rawValue)
        case "sector": Sector.allCases.map(\.rawValue)
        case "region": Region.allCases.map(\.rawValue)
        case "priority": Priority.allCases.map(\.rawValue)
        default: nil
        }
        let text = String(value)
        if let allowed {
            guard allowed.contains(text) else {
                throw ProblemDetails.invalidBody("\(field) must be one of \(allowed.joined(separator: ", ")); got \(text)", field: field)
            }
            return text
        }
        do {
            return try Validation.slug(text, field: field)
        } catch {
            throw ProblemDetails.invalidBody(error.message, field: field)
        }
    }

    private func freshnessHeaders(_ freshness: Freshness) -> HTTPFields {
        var headers: HTTPFields = [:]
        headers[HTTPField.Name("Canon-As-Of-Position")!] = String(freshness.asOfPosition.rawValue)
        if let asOf = freshness.asOf { headers[HTTPField.Name("Canon-As-Of")!] = Timestamp.iso8601(asOf) }
        headers[HTTPField.Name("Canon-Lag-Ms")!] = String(freshness.lagMilliseconds)
        return headers
    }

    private func integer(_ value: Substring?, name: String, range: ClosedRange<Int>) throws -> Int? {
        guard let value else { return nil }
        guard let number = Int(value), range.contains(number) else {
            throw ProblemDetails.invalidBody("\(name) must be an integer in \(range.lowerBound)…\(range.upperBound == Int.max ? "" : String(range.upperBound)); got \(value)", field: name)
        }
        return number
    }
}
