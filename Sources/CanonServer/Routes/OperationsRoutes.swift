import Canon
import CasePlatform
import Hummingbird

/// Operating the runtime over HTTP: projection status, dead letters, replay, and `/metrics`.
struct OperationsRoutes {
    let services: PlatformServices

    func register(on group: RouterGroup<CanonRequestContext>) {
        group.get("ops/projections", use: projections)
        group.get("ops/portfolio", use: portfolio)
        group.get("ops/audit", use: audit)
        group.get("ops/drift", use: drift)
        group.get("ops/lifecycle/audit", use: lifecycleAudit)
        group.post("ops/drift/{name}", use: runDrift)
        group.post("ops/drift/{name}/repair", use: repairDrift)
        group.get("ops/projections/{name}/dead-letters", use: deadLetters)
        group.post("ops/projections/{name}/dead-letters/{position}/retry", use: retry)
        group.post("ops/projections/{name}/dead-letters/{position}/skip", use: skip)
        group.post("ops/projections/{name}/replay", use: replay)
        group.post("ops/projections/{name}/resume", use: resume)
    }

    static func registerMetrics(on router: Router<CanonRequestContext>, services: PlatformServices) {
        router.get("metrics") { _, context in
            // Store health is judged at scrape time, against each store's freshness contract.
            // When it cannot be (the canonical store does not answer), every live store is
            // published as degraded: a scrape never shows the last good health as current.
            let statuses: [PortfolioStoreStatus]
            var readable = true
            do {
                statuses = try await services.portfolioStatus(publish: false)
            } catch {
                context.logger.error("cannot judge the stores' health for /metrics; every live store is published as degraded",
                                     metadata: ["error": "\(error)"])
                statuses = PortfolioStoreStatus.unjudged(in: services.portfolio, reason: "\(error)")
                readable = false
            }
            CanonMetrics.recordSizes(await services.storeSizes())
            CanonMetrics.recordRebuilds(services.rebuildSeconds())
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: CanonMetrics.scrape(statuses, readable: readable))))
        }
    }

    struct ProjectionsAnswer: Encodable { var projections: [ProjectionStatus] }

    @Sendable func projections(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        var statuses = try await services.projections.statuses()
        if try context.requirePrincipal().role != .admin {
            // Errors and owners can name cases and hosts: operators only.
            for index in statuses.indices {
                statuses[index].lastError = statuses[index].lastError == nil ? nil : "hidden; ask an admin"
                statuses[index].owner = nil
            }
        }
        return try JSONBody.response(ProjectionsAnswer(projections: statuses))
    }

    struct PortfolioAnswer: Encodable {
        var portfolio: String
        var stores: [PortfolioStoreStatus]
    }

    /// The declared stores with their live status, version, freshness, lag and health.
    @Sendable func portfolio(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        _ = try context.requirePrincipal()
        return try JSONBody.response(PortfolioAnswer(portfolio: services.portfolio.name, stores: try await services.portfolioStatus()))
    }

    struct AuditAnswer: Encodable { var entries: [AccessAudit.Entry] }

    /// The access audit, newest first (admin and legal only): `?principal=&action=&decision=&limit=`.
    @Sendable func audit(_ request: Request, context: CanonRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        guard principal.role == .admin || principal.role == .legal else {
            throw DomainError.forbidden("\(principal.id) (\(principal.role.rawValue)) may not read the access audit; allowed roles: admin, legal")
        }
        let parameters = request.uri.queryParameters
        try QueryParameters.requireKnown(parameters, ["principal", "action", "decision", "limit"])
        if let action = parameters["action"], PlatformOperation(rawValue: String(action)) == nil {
            throw ProblemDetails.invalidBody(
                "action must be an operation: \(PlatformOperation.allCases.map(\.rawValue).joined(separator: ", ")); got \(action)", field: "action")
        }
        let limitText = parameters["limit"].map(String.init) ?? "100"
        guard let limit = Int(limitText), (1...1_000).contains(limit) else {
            throw ProblemDetails.invalidBody("limit must be an integer in 1…1000; got \(limitText)", field: "limit")
        }
        var decision: AccessAudit.Decision?
        if let raw = parameters["decision"] {
            guard let parsed = AccessAudit.Decision(rawValue: String(raw)) else {
                throw ProblemDetails.invalidBody("decision must be allowed or denied; got \(raw)", field: "decision")
            }
            decision = parsed
        }
        let entries = try await services.audit.entries(
            principal: parameters["principal"].map(String.init), action: parameters["action"].map(String.init), decision: decision, limit: limit)
        return try JSONBody.response(AuditAnswer(entries: entries))
    }

    struct DeadLettersAnswer: Encodable {
        var projection: String
        var deadLetters: [DeadLetter]

        enum CodingKeys: String, CodingKey {
            case projection
            case deadLetters = "dead_letters"
        }
    }

    @Sendable func deadLetters(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        try requireAdmin(context)
        let agent = try agent(context)
        return try JSONBody.response(DeadLettersAnswer(projection: agent.identity.description, deadLetters: try await agent.store.deadLetters()))
    }

    @Sendable func retry(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        try requireAdmin(context)
        let agent = try agent(context)
        let letter = try await DeadLetterOperations.retry(position: try position(context), in: agent.store, source: services.store)
        return try JSONBody.response(letter)
    }

    @Sendable func skip(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        try requireAdmin(context)
        let agent = try agent(context)
        let letter = try await DeadLetterOperations.skip(position: try position(context), in: agent.store)
        return try JSONBody.response(letter)
    }

    struct ReplayRequest: Codable { var from: Int64 }

    struct ReplayAnswer: Encodable {
        var projection: String
        var from: Int64
    }

    @Sendable func replay(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        try requireAdmin(context)
        let body = try await JSONBody.decode(ReplayRequest.self, from: request, context: context)
        let agent = try agent(context)
        try await agent.replay(from: OutboxPosition(body.from))
        return try JSONBody.response(ReplayAnswer(projection: agent.identity.description, from: body.from))
    }

    struct ResumeAnswer: Encodable {
        var projection: String
        var state: AgentState
        /// Set when the agent runs in another process: the request was sent there.
        var forwardedTo: String?

        enum CodingKeys: String, CodingKey {
            case projection, state
            case forwardedTo = "forwarded_to"
        }
    }

    /// Lets a projection that its failure policy paused go on (after the cause was fixed): here
    /// when its agent runs here (200), else in the process that holds its lease (202, forwarded).
    @Sendable func resume(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        try requireAdmin(context)
        let agent = try agent(context)
        switch try await services.projections.resume(agent.identity.name) {
        case .resumed(let state):
            return try JSONBody.response(ResumeAnswer(projection: agent.identity.description, state: state))
        case .forwarded(let owner):
            return try JSONBody.response(ResumeAnswer(projection: agent.identity.description, state: .paused, forwardedTo: owner), status: .accepted)
        case .notPaused(let state):
            throw ProblemDetails(status: .conflict, slug: "not-paused", title: "The projection is not paused",
                                 detail: "\(agent.identity) is \(state.rawValue); only a paused projection can be resumed")
        }
    }

    struct DriftAnswer: Encodable {
        struct Store: Encodable {
            var name: String
            var version: Int
            /// The newest check of each mode.
            var checks: [DriftSummary]
        }

        var stores: [Store]
        /// Live projections that cannot be drift-checked (a store that does not implement
        /// `DriftCheckable`; every store of the platform does, on both engines): no result is not
        /// a clean result.
        var notCheckable: [String]

        enum CodingKeys: String, CodingKey {
            case stores
            case notCheckable = "not_checkable"
        }
    }

    /// The last drift checks of every live projection (any mode: full and since from `canon drift`
    /// or `POST /v1/ops/drift/{name}`, sample from the continuous sampler).
    @Sendable func drift(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        _ = try context.requirePrincipal()
        var stores: [DriftAnswer.Store] = []
        var notCheckable: [String] = []
        for agent in services.projections.agents {
            guard let store = agent.store as? any DriftCheckable else {
                notCheckable.append(agent.identity.name)
                continue
            }
            stores.append(.init(name: agent.identity.name, version: agent.identity.version, checks: try await store.driftSummaries()))
        }
        return try JSONBody.response(DriftAnswer(stores: stores, notCheckable: notCheckable))
    }

    /// Purged records still present in a derived store (admin and legal).
    @Sendable func lifecycleAudit(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        let principal = try context.requirePrincipal()
        guard principal.role == .admin || principal.role == .legal else {
            throw DomainError.forbidden("\(principal.id) (\(principal.role.rawValue)) may not read the lifecycle audit; allowed roles: admin, legal")
        }
        return try JSONBody.response(try await LifecycleAudit(source: services.store).run(stores: services.projections.agents.map(\.store)))
    }

    /// Runs a drift check now (admin): `?mode=full|sample|since&since=POSITION&segments=&threshold=&sample=`.
    @Sendable func runDrift(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try requireAdmin(context)
        let (check, mode, since) = try driftRequest(request, context)
        return try JSONBody.response(try await check.run(mode, since: since))
    }

    /// Checks, repairs exactly the differing keys, and checks again (admin); same parameters.
    @Sendable func repairDrift(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try requireAdmin(context)
        let (check, mode, since) = try driftRequest(request, context)
        guard mode != .sample else { throw ProblemDetails.invalidBody("repair runs in full or since mode; got sample", field: "mode") }
        return try JSONBody.response(try await check.repair(mode: mode, since: since))
    }

    private func driftRequest(_ request: Request, _ context: CanonRequestContext) throws -> (DriftCheck, DriftMode, OutboxPosition?) {
        let name = try context.parameters.require("name")
        let parameters = request.uri.queryParameters
        try QueryParameters.requireKnown(parameters, ["mode", "since", "segments", "threshold", "sample"])
        let modeText = parameters["mode"].map(String.init) ?? "full"
        guard let mode = DriftMode(rawValue: modeText) else {
            throw ProblemDetails.invalidBody("mode must be one of \(DriftMode.allCases.map(\.rawValue).joined(separator: ", ")); got \(modeText)", field: "mode")
        }
        func integer(_ field: String, _ fallback: Int, _ range: ClosedRange<Int>) throws -> Int {
            guard let raw = parameters[Substring(field)].map(String.init) else { return fallback }
            guard let value = Int(raw), range.contains(value) else {
                throw ProblemDetails.invalidBody("\(field) must be an integer in \(range.lowerBound)…\(range.upperBound); got \(raw)", field: field)
            }
            return value
        }
        let options = DriftCheck.Options(
            segments: try integer("segments", 32, 2...1_024), threshold: try integer("threshold", 1_024, 1...1_000_000),
            sampleSize: try integer("sample", 200, 1...100_000))
        var since: OutboxPosition?
        if parameters["since"] != nil { since = OutboxPosition(Int64(try integer("since", 0, 0...Int.max))) }
        if mode == .since && since == nil { throw ProblemDetails.invalidBody("mode since needs since=POSITION", field: "since") }
        if mode != .since && since != nil { throw ProblemDetails.invalidBody("since applies with mode=since only; got mode=\(mode.rawValue)", field: "since") }
        do {
            return (try services.driftCheck(name, options: options), mode, since)
        } catch let error as ProjectionError {
            throw ProblemDetails(status: .notFound, slug: "not-found", title: "Not found", detail: error.message)
        }
    }

    private func agent(_ context: CanonRequestContext) throws -> ProjectionAgent {
        let name = try context.parameters.require("name")
        do {
            return try services.projections.agent(named: name)
        } catch let error as ProjectionError {
            throw ProblemDetails(status: .notFound, slug: "not-found", title: "Not found", detail: error.message)
        }
    }

    private func position(_ context: CanonRequestContext) throws -> OutboxPosition {
        let raw = try context.parameters.require("position")
        guard let value = Int64(raw), value > 0 else { throw ProblemDetails.badRequest("position must be a positive integer; got \(raw)") }
        return OutboxPosition(value)
    }

    private func requireAdmin(_ context: CanonRequestContext) throws {
        let principal = try context.requirePrincipal()
        guard principal.role == .admin else {
            throw DomainError.forbidden("\(principal.id) (\(principal.role.rawValue)) may not operate projections; allowed roles: admin")
        }
    }
}
