import Canon
import CanonServer
import CanonSQLite
import CasePlatform
import Foundation
import Logging

/// The embedded installation of the case platform: one SQLite file per store in one data
/// directory, the canonical store signalling its commits to the projection agents in-process.
///
/// ```
/// DATA/canonical.sqlite            the canonical store and its outbox
/// DATA/case-search.v1.sqlite       case search (FTS5), its checkpoint, dead letters, heartbeat
/// DATA/case-timeline.v1.sqlite     case timeline
/// ```
public struct EmbeddedPlatform: Sendable {
    public let directory: DataDirectory
    public let canonical: SQLiteCanonicalStore
    /// The canonical store as commands should use it: every commit wakes the agents.
    public let store: SignallingCanonicalStore
    public let coordinator: ProjectionCoordinator
    /// The portfolio the runtime obeys: every store opened here is declared live in it.
    public let portfolio: Portfolio
    let faults: FaultInjector?

    /// The live case search store.
    public var search: SQLiteSearchStore {
        get throws {
            guard let store = try coordinator.store(named: "case-search") as? SQLiteSearchStore else {
                throw ProjectionError.unknownProjection("case-search", known: Self.projectionNames)
            }
            return store
        }
    }

    /// The live case timeline store.
    public var timeline: SQLiteTimelineStore {
        get throws {
            guard let store = try coordinator.store(named: "case-timeline") as? SQLiteTimelineStore else {
                throw ProjectionError.unknownProjection("case-timeline", known: Self.projectionNames)
            }
            return store
        }
    }

    public struct Configuration: Sendable {
        public var projections: ProjectionCoordinator.Configuration
        public var canonical: SQLiteCanonicalStore.Configuration
        public var projectionFaults: FaultInjector?
        /// The portfolio to obey; nil means the platform's shipped `portfolio.yaml`.
        public var portfolio: Portfolio?

        public init(
            projections: ProjectionCoordinator.Configuration = .init(), canonical: SQLiteCanonicalStore.Configuration = .init(),
            projectionFaults: FaultInjector? = nil, portfolio: Portfolio? = nil
        ) {
            self.projections = projections
            self.canonical = canonical
            self.projectionFaults = projectionFaults
            self.portfolio = portfolio
        }
    }

    /// Opens the stores in `directory`, creating the directory and files when `create` is set.
    ///
    /// - Throws: `PortfolioError` when the portfolio does not declare a store this platform opens
    ///   (live, with the same role): nothing is opened then; `EmbeddedPlatformError` when there is
    ///   no store and `create` is not set; `CanonicalStoreError` or `ProjectionError` when a file
    ///   cannot be opened.
    public static func open(
        _ directory: DataDirectory, create: Bool, configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "canon")
    ) throws -> EmbeddedPlatform {
        // Metric objects bind to the backend when created: install Prometheus first.
        CanonMetrics.bootstrap()
        let portfolio = try configuration.portfolio ?? PlatformPortfolio.load().requireValid()
        // An undeclared store cannot be opened: check every one before touching any file.
        try portfolio.admit(store: PlatformPortfolio.Store.canonical, role: .canonical)
        for name in projectionNames { try portfolio.admit(store: name, role: .projection) }
        let canonicalFile = directory.databaseFile(for: "canonical")
        if create {
            try directory.create()
        } else if !FileManager.default.fileExists(atPath: canonicalFile.path) {
            throw EmbeddedPlatformError(message: "no canonical store at \(canonicalFile.path); run `canon demo --data \(directory.url.path)` or `canon serve --data \(directory.url.path)` first")
        }
        let canonical = try SQLiteCanonicalStore(path: canonicalFile.path, migrations: CasePlatformSchema.migrations, configuration: configuration.canonical)
        let commits = PositionWaiters()
        let store = SignallingCanonicalStore(canonical, commits: commits)
        let catalog = try ProjectionCatalog.load(from: directory)
        let stores = try Self.projectionNames.map { name in
            try makeStore(name, version: catalog.liveVersion(name), in: directory, faults: configuration.projectionFaults)
        }
        let coordinator = ProjectionCoordinator(
            source: store, commits: commits, stores: stores, configuration: configuration.projections, logger: logger)
        return EmbeddedPlatform(
            directory: directory, canonical: canonical, store: store, coordinator: coordinator, portfolio: portfolio,
            faults: configuration.projectionFaults)
    }

    /// The platform's projections, in the order status lists them.
    public static let projectionNames = ["case-search", "case-timeline"]

    /// Opens (creating) the store of `version` of projection `name`: `DATA/<name>.v<version>.sqlite`.
    public static func makeStore(_ name: String, version: Int, in directory: DataDirectory, faults: FaultInjector? = nil) throws -> any ProjectionStore {
        switch name {
        case "case-search":
            let projection = CaseSearchProjection(version: version)
            return try SQLiteSearchStore(path: directory.databaseFile(for: projection.identity.storeName).path, projection: projection, faults: faults)
        case "case-timeline":
            let projection = CaseTimelineProjection(version: version)
            return try SQLiteTimelineStore(path: directory.databaseFile(for: projection.identity.storeName).path, projection: projection, faults: faults)
        default:
            throw ProjectionError.unknownProjection(name, known: projectionNames)
        }
    }

    /// The services the HTTP layer needs.
    public func services(readWait: Duration = .seconds(2)) async throws -> PlatformServices {
        try await PlatformServices(store: store, projections: coordinator, readPolicy: ReadPolicy(portfolio), readWait: readWait)
    }

    /// Every live projection store.
    public var projectionStores: [any ProjectionStore] { coordinator.agents.map(\.store) }

    public func projectionStore(named name: String) throws -> any ProjectionStore {
        try coordinator.store(named: name)
    }
}

public struct EmbeddedPlatformError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
