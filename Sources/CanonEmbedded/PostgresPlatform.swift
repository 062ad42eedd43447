import Canon
import CanonPostgres
import CanonServer
import CasePlatform
import Foundation
import Logging
import ServiceLifecycle

/// The scaled-out installation of the case platform: the canonical store, the outbox and the
/// derived stores in one PostgreSQL database, shared by any number of `canon serve` and
/// `canon worker` processes.
///
/// ```
/// public                         the canonical tables and the outbox
/// case_search_v1 (role canon_case_search_v1)      case search (tsvector/GIN, pg_trgm)
/// case_timeline_v1 (role canon_case_timeline_v1)  case timeline
/// case_search_v2 …                                 the next version, while a rebuild builds it
/// ```
///
/// Which version of each projection is live is in `canon_projection_versions`
/// (`PostgresProjectionVersions`); a blue-green rebuild switches it and every process follows.
///
/// Every process may run agents, but each projection has one active agent across all of them:
/// the one whose process holds its lease (`PostgresLeases`). Commits wake agents in every
/// process through LISTEN/NOTIFY, with polling as the fallback.
public struct PostgresPlatform: Sendable {
    public let url: PostgresURL
    public let canonical: PostgresCanonicalStore
    /// The canonical store as commands should use it: every commit wakes this process's agents.
    public let store: SignallingCanonicalStore
    public let coordinator: ProjectionCoordinator
    public let portfolio: Portfolio
    public let leases: PostgresLeases
    /// The listener that wakes agents and readers here when other processes commit or apply.
    public let notifications: PostgresNotifications
    /// Expected digests kept between drift checks, per projection version (`canon_drift_cache`).
    public let driftCaches: PostgresDigestCaches
    /// Which version of each projection is live.
    public let versions: PostgresProjectionVersions
    /// Moves this process's readers and agents to the live versions when a rebuild switches one.
    public let follower: VersionFollower
    /// Test hook of the projection stores (those a switch opens too).
    let projectionFaults: FaultInjector?

    /// Semantic evidence retrieval runs on the embedded engine only, so far.
    public static let semanticUnavailable =
        "semantic evidence retrieval is not served by the PostgreSQL engine yet; run the embedded engine (canon serve --data DIR) for it"

    public static let projectionNames = ["case-search", "case-timeline"]

    public struct Configuration: Sendable {
        public var projections: ProjectionCoordinator.Configuration
        public var canonical: PostgresCanonicalStore.Configuration
        /// The portfolio to obey; nil means the platform's shipped `portfolio.yaml`.
        public var portfolio: Portfolio?
        /// Take part in running projection agents (a server may leave that to workers).
        public var runAgents: Bool
        /// Test hook: fails projection commits at a chosen point.
        public var projectionFaults: FaultInjector?
        /// How often this process reads which projection versions are live, besides when a
        /// switch is announced (`VersionFollower`).
        public var versionPollInterval: Duration = .seconds(5)

        /// What the scaled-out processes run by default: agents of stores that declare no batch
        /// window linger 25 ms after a partial batch, so that under load one projection
        /// transaction carries many writes. Each transaction of a worker costs a millisecond
        /// or more of CPU beyond its events (round trips, the checkpoint, its notification);
        /// at 10 ms, case search committed about 40 transactions a second under load. The aim for
        /// commit-to-searchable on PostgreSQL is a p99 under 100 ms.
        public static let defaultProjections = ProjectionCoordinator.Configuration(agent: .init(linger: .milliseconds(25)))

        public init(
            projections: ProjectionCoordinator.Configuration = Configuration.defaultProjections, canonical: PostgresCanonicalStore.Configuration = .init(),
            portfolio: Portfolio? = nil, runAgents: Bool = true, projectionFaults: FaultInjector? = nil
        ) {
            self.projections = projections
            self.canonical = canonical
            self.portfolio = portfolio
            self.runAgents = runAgents
            self.projectionFaults = projectionFaults
        }
    }

    /// Connects to `url`, applies the migrations every store needs, and opens the stores.
    ///
    /// - Throws: `PortfolioError` when the portfolio does not declare a store this platform
    ///   opens; `CanonicalStoreError` or `ProjectionError` when the server cannot be reached.
    public static func open(url: PostgresURL, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "canon")) async throws -> PostgresPlatform {
        CanonMetrics.bootstrap()
        let portfolio = try configuration.portfolio ?? PlatformPortfolio.load().requireValid()
        try portfolio.admit(store: PlatformPortfolio.Store.canonical, role: .canonical)
        for name in projectionNames { try portfolio.admit(store: name, role: .projection) }
        let canonical = try await PostgresCanonicalStore(url: url, migrations: CasePlatformSchema.migrations, configuration: configuration.canonical)
        let commits = PositionWaiters()
        let priorityCommits = PositionWaiters()
        let store = SignallingCanonicalStore(canonical, commits: commits, priorityCommits: priorityCommits)
        let versions = PostgresProjectionVersions(database: canonical.database)
        let live = try await versions.all()
        var stores: [any ProjectionStore] = []
        for name in projectionNames {
            stores.append(try await makeStore(name, version: live[name]?.live ?? 1, url: url, faults: configuration.projectionFaults))
        }
        let leases = PostgresLeases(url: url, logger: logger)
        var projections = portfolio.applyingBatchWindows(to: configuration.projections)
        projections.leases = configuration.runAgents ? leases : NoLeases()
        projections.control = PostgresControl(database: canonical.database)
        // A process that runs no agents leaves the priority path to the ones that do.
        projections.priorityPath = projections.priorityPath && configuration.runAgents
        let coordinator = ProjectionCoordinator(source: store, commits: commits, priorityCommits: priorityCommits, stores: stores, configuration: projections, logger: logger)
        let follower = VersionFollower(
            coordinator: coordinator, versions: versions, url: url, faults: configuration.projectionFaults, interval: configuration.versionPollInterval, logger: logger)
        let notifications = PostgresNotifications(
            url: url, commits: commits, priorityCommits: priorityCommits, listensForCommits: configuration.runAgents, applied: { coordinator.noteApplied($0, through: $1) },
            resume: { identity in Task { await coordinator.handleResumeRequest(identity) } }, switched: { follower.kick() }, logger: logger)
        return PostgresPlatform(
            url: url, canonical: canonical, store: store, coordinator: coordinator, portfolio: portfolio, leases: leases,
            notifications: notifications, driftCaches: PostgresDigestCaches(url: url), versions: versions, follower: follower,
            projectionFaults: configuration.projectionFaults)
    }

    /// The services the HTTP layer needs.
    public func services(readWait: Duration = .seconds(2)) async throws -> PlatformServices {
        try await PlatformServices(
            store: store, projections: coordinator, readPolicy: ReadPolicy(portfolio), readWait: readWait,
            semanticUnavailable: Self.semanticUnavailable, driftCache: { [driftCaches] in driftCaches.cache(for: $0) },
            retention: RetentionPolicy(portfolio), storeSizes: { [canonical, coordinator] in await Self.storeSizes(canonical, coordinator) },
            rebuildSeconds: { [follower] in follower.rebuildSeconds }, scaledOut: true)
    }

    /// Each store's bytes by store name: the canonical tables (`public`) and each live
    /// projection's schema. Empty when the database does not answer (the scrape goes on).
    public static func storeSizes(_ canonical: PostgresCanonicalStore, _ coordinator: ProjectionCoordinator) async -> [String: Int64] {
        guard let schemas = try? await canonical.schemaSizes() else { return [:] }
        var sizes = [PlatformPortfolio.Store.canonical: schemas["public"] ?? 0]
        for agent in coordinator.agents {
            let schema: String? = switch agent.store {
            case let search as PostgresSearchStore: search.schemaName
            case let timeline as PostgresTimelineStore: timeline.schema
            default: nil
            }
            if let schema, let bytes = schemas[schema] { sizes[agent.identity.name] = bytes }
        }
        return sizes
    }

    /// What runs beside the HTTP server (or alone, in a worker): the agents and the listener.
    public var backgroundServices: [any Service] { [coordinator, notifications, follower] }
}

/// Leases never granted: a process that only serves reads and follows the workers' checkpoints.
struct NoLeases: ProjectionLeases {
    func acquire(_ name: String) async -> Bool { false }
    func stillHeld(_ name: String) async -> Bool { false }
    func release(_ name: String) async {}
}
