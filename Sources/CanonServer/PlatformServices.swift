import Canon
import CasePlatform
import Foundation
import Synchronization

/// What the HTTP layer needs from the platform: the canonical store, its commands and reads, the
/// derived stores with the agents that feed them, the token authority, and the portfolio with
/// its read policy.
///
/// Routes reach stores only through `commands(for:)`, `queries(for:)`, `search(for:)` and
/// `timeline(for:)`, naming the operation they serve, so the portfolio's staleness policy is
/// checked on every read.
public struct PlatformServices: Sendable {
    public let store: any CanonicalStore
    public let commands: CaseCommands
    public let queries: CaseQueries
    public let tokens: AccessTokens
    /// The append-only access audit in the canonical store.
    public let audit: AccessAudit
    public let projections: ProjectionCoordinator
    public let readPolicy: ReadPolicy
    /// How long a derived read with `min_position` waits for its store to catch up.
    public let readWait: Duration
    /// The clock freshness is measured with.
    public let now: @Sendable () -> Date
    /// Why semantic evidence retrieval is not running here, with the command that fixes it.
    public let semanticUnavailable: String?
    /// Whether the platform runs on its scale-out engines (PostgreSQL): the stores' status then
    /// names their `scale_out_engine`.
    public let scaledOut: Bool
    /// Derived results dropped by re-authorization in this server, beside the process-wide
    /// `canon_authorization_mismatch_total`.
    public let authorizationMismatches = MismatchTally()
    /// Principals as last read, for the routes whose commands verify them at commit.
    public let principals: PrincipalCache
    /// The expected-digest cache of a projection version's drift checks, when the engine keeps one.
    public let driftCache: @Sendable (ProjectionIdentity) -> (any DriftDigestCache)?

    public var portfolio: Portfolio { readPolicy.portfolio }

    /// Loads (or creates) the token signing key from `store`, and checks that every operation's
    /// wiring obeys the portfolio.
    ///
    /// - Parameter readPolicy: defaults to the platform's shipped portfolio.
    /// - Throws: `ReadPolicyViolation` when an operation is wired to a store its policy forbids
    ///   (the server does not start); `PortfolioError` when the shipped portfolio is invalid.
    public init(
        store: any CanonicalStore, projections: ProjectionCoordinator, readPolicy: ReadPolicy? = nil, readWait: Duration = .seconds(2),
        now: @escaping @Sendable () -> Date = { Date() }, semanticUnavailable: String? = nil,
        driftCache: @escaping @Sendable (ProjectionIdentity) -> (any DriftDigestCache)? = { _ in nil }, retention: RetentionPolicy = .init(),
        storeSizes: @escaping @Sendable () async -> [String: Int64] = { [:] },
        rebuildSeconds: @escaping @Sendable () -> [String: Double] = { [:] }, scaledOut: Bool = false
    ) async throws {
        self.scaledOut = scaledOut
        let policy = try readPolicy ?? ReadPolicy(PlatformPortfolio.load().requireValid())
        try policy.validate(PlatformOperation.wiring)
        self.store = store
        let principals = PrincipalCache()
        self.principals = principals
        // A command that found its principal changed keeps them as they are now, and tells the
        // request it decided as them (`BearerAuthMiddleware`).
        self.commands = CaseCommands(store: store, reread: { user in
            PrincipalCache.decided?.note(user)
            principals.keep(user)
        }, retention: retention)
        self.queries = CaseQueries(store: store)
        self.tokens = try await AccessTokens.load(from: store)
        self.audit = AccessAudit(store: store)
        self.projections = projections
        self.readPolicy = policy
        self.readWait = readWait
        self.now = now
        self.semanticUnavailable = semanticUnavailable
        self.driftCache = driftCache
        self.storeSizes = storeSizes
        self.rebuildSeconds = rebuildSeconds
    }

    /// How long the rebuild that made each store's live version took, by store name
    /// (`canon_rebuild_duration_seconds` at each scrape).
    public let rebuildSeconds: @Sendable () -> [String: Double]

    /// Each store's size on disk in bytes, by store name (`canon_store_bytes` at each scrape).
    public let storeSizes: @Sendable () async -> [String: Int64]

    /// The canonical commands, for an operation allowed to read canonical state.
    public func commands(for operation: PlatformOperation) throws(ReadPolicyViolation) -> CaseCommands {
        try readPolicy.admit(operation, reads: PlatformPortfolio.Store.canonical)
        return commands
    }

    /// The canonical reads, for an operation allowed to read canonical state.
    public func queries(for operation: PlatformOperation) throws(ReadPolicyViolation) -> CaseQueries {
        try readPolicy.admit(operation, reads: PlatformPortfolio.Store.canonical)
        return queries
    }

    /// The live case search store (it changes when a blue-green rebuild switches versions), for an
    /// operation allowed to read it.
    public func search(for operation: PlatformOperation) throws -> any SearchStore {
        try readPolicy.admit(operation, reads: PlatformPortfolio.Store.caseSearch)
        guard let store = try projections.store(named: PlatformPortfolio.Store.caseSearch) as? any SearchStore else {
            throw ProjectionError.unknownProjection(PlatformPortfolio.Store.caseSearch, known: [])
        }
        return store
    }

    /// The live case timeline store, for an operation allowed to read it.
    public func timeline(for operation: PlatformOperation) throws -> any TimelineStore {
        try readPolicy.admit(operation, reads: PlatformPortfolio.Store.caseTimeline)
        guard let store = try projections.store(named: PlatformPortfolio.Store.caseTimeline) as? any TimelineStore else {
            throw ProjectionError.unknownProjection(PlatformPortfolio.Store.caseTimeline, known: [])
        }
        return store
    }

    /// The live evidence vector store, for an operation allowed to read it.
    ///
    /// - Throws: a 503 problem naming the fix when the embedding model is not installed.
    public func semantic(for operation: PlatformOperation) throws -> any VectorStore {
        try readPolicy.admit(operation, reads: PlatformPortfolio.Store.evidenceSemantic)
        guard let store = try? projections.store(named: PlatformPortfolio.Store.evidenceSemantic) as? any VectorStore else {
            throw ProblemDetails(
                status: .serviceUnavailable, slug: "semantic-unavailable", title: "Semantic evidence retrieval is unavailable",
                detail: semanticUnavailable ?? "the evidence-semantic store is not running in this process")
        }
        return store
    }

    /// Runs `body` for `operation` on case `caseID` and writes the access audit when the operation
    /// is sensitive (as the portfolio declares it) or the case is restricted: allowed on success,
    /// denied when the policy refuses (403, or 404 for a case the principal may not see).
    ///
    /// - Parameter current: whether `principal` was read for this request; when it came from
    ///   `principals`, an audit entry names the principal as the store holds them now.
    public func audited<T: Sendable>(
        _ operation: PlatformOperation, caseID: String, by principal: User, current: Bool = true, _ body: () async throws -> T
    ) async throws -> T {
        try await audited(operation, target: "case/\(caseID)", caseID: caseID, by: principal, current: current, body)
    }

    /// Runs `body` under the access audit for `target` (`party/<id>`…); `caseID`, when given,
    /// makes a read of a restricted case auditable even for an operation that is not sensitive.
    public func audited<T: Sendable>(
        _ operation: PlatformOperation, target: String, caseID: String?, by principal: User, current: Bool = true,
        _ body: () async throws -> T
    ) async throws -> T {
        func write(_ decision: AccessAudit.Decision, reason: String) async throws {
            let recorded = current ? principal : try await queries.user(principal.id) ?? principal
            try await audit.record(recorded, action: operation.rawValue, target: target, decision: decision, reason: reason, at: now())
        }
        let sensitive = portfolio.operation(named: operation.rawValue)?.sensitive?.value == true
        func restricted() async throws -> Bool {
            guard let caseID else { return false }
            return try await store.fetchOne("cases", where: ["id": .text(caseID)])?.bool("restricted") ?? false
        }
        do {
            let result = try await body()
            // A body that read the case already says whether it is restricted: no second read.
            let record: Bool
            if sensitive {
                record = true
            } else if let item = result as? Case {
                record = item.restricted
            } else {
                record = try await restricted()
            }
            if record { try await write(.allowed, reason: "") }
            return result
        } catch let error as DomainError where error.code == .forbidden || error.code == .notFound {
            let record = sensitive ? true : try await restricted()
            if record { try await write(.denied, reason: error.message) }
            throw error
        }
    }

    /// The drift check of the live version of projection `name`.
    public func driftCheck(_ name: String, options: DriftCheck.Options = .init()) throws -> DriftCheck {
        let live = try projections.store(named: name)
        return try PlatformDrift.check(live, source: store, options: options, cache: driftCache(live.identity))
    }

    /// The drift checks of every live projection, for the sampler.
    public func driftChecks(options: DriftCheck.Options = .init()) -> [DriftCheck] {
        projections.agents.compactMap { try? driftCheck($0.identity.name, options: options) }
    }

    /// Every declared store with its live status, version, freshness, lag and health.
    /// - Parameter publish: also record the health gauges (a `/metrics` scrape publishes them
    ///   itself, atomically with the emit).
    public func portfolioStatus(publish: Bool = true) async throws -> [PortfolioStoreStatus] {
        let statuses = try await projections.statuses(now: now())
        let head = try await store.headPosition()
        var unavailable: [String: String] = [:]
        if let semanticUnavailable { unavailable[PlatformPortfolio.Store.evidenceSemantic] = semanticUnavailable }
        let drift = await NewestDriftChecks.read(projections.agents.map(\.store))
        let result = PortfolioStoreStatus.all(
            in: portfolio, projections: statuses, canonicalHead: head, unavailable: unavailable, drift: drift, scaledOut: scaledOut)
        if publish { CanonMetrics.record(result) }
        return result
    }
}

/// Principals as the canonical store last gave them, by user id, so that the routes whose
/// commands require the principal's row unchanged at commit (`CaseCommands`) need not read it
/// before deciding: a stale entry cannot commit, the command reads the principal again. Every
/// other route reads the principal for each request and refreshes the entry.
public final class PrincipalCache: Sendable {
    private let users = KeptValues<String, User>()
    private let served = Atomic(0)

    public init() {}

    public func user(_ id: String) -> User? { users[id] }

    /// How many requests a kept principal served (it was not read for them).
    public var hits: Int { served.load(ordering: .relaxed) }

    /// The principal kept for `id`, counted as serving a request.
    func serve(_ id: String) -> User? {
        guard let user = users[id] else { return nil }
        served.add(1, ordering: .relaxed)
        return user
    }

    func keep(_ user: User) { users.keep(user, for: user.id) }

    func forget(_ id: String) { users.forget(id) }

    /// The principal a command of this request last decided as, when it read them again.
    @TaskLocal static var decided: Decided?

    final class Decided: Sendable {
        private let user = Mutex<User?>(nil)
        var value: User? { user.withLock { $0 } }
        func note(_ user: User) { self.user.withLock { $0 = user } }
    }
}

/// A count of derived results that failed re-authorization against canonical state, kept per
/// server so one server's figure is not mixed with another's in the same process.
public final class MismatchTally: Sendable {
    private let value = Mutex(0)

    public init() {}

    public var count: Int { value.withLock { $0 } }

    func record(_ count: Int) { value.withLock { $0 += count } }
}
