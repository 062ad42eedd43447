import Canon
import CanonServer
import Embeddings
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
/// DATA/evidence-semantic.v1.sqlite evidence vectors (when the embedding model is installed)
/// ```
public struct EmbeddedPlatform: Sendable {
    public let directory: DataDirectory
    public let canonical: SQLiteCanonicalStore
    /// The canonical store as commands should use it: every commit wakes the agents.
    public let store: SignallingCanonicalStore
    public let coordinator: ProjectionCoordinator
    /// The portfolio the runtime obeys: every store opened here is declared live in it.
    public let portfolio: Portfolio
    /// The sentence-embedding model the semantic store embeds with; nil when it is not installed.
    public let embedder: (any TextEmbedder)?
    /// Why semantic evidence retrieval is not running (model missing or corrupt, or the store
    /// holds another model's vectors), with the command that fixes it.
    public let semanticUnavailable: String?
    /// The embedding model directory this process uses by default.
    public let modelDirectory: String
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
        /// Run semantic evidence retrieval when the embedding model is installed.
        public var semantic: Bool
        /// Where the embedding model is (default: `SentenceEmbedder.defaultDirectory`).
        public var modelDirectory: String?

        public init(
            projections: ProjectionCoordinator.Configuration = .init(), canonical: SQLiteCanonicalStore.Configuration = .init(),
            projectionFaults: FaultInjector? = nil, portfolio: Portfolio? = nil, semantic: Bool = true, modelDirectory: String? = nil
        ) {
            self.projections = projections
            self.canonical = canonical
            self.projectionFaults = projectionFaults
            self.portfolio = portfolio
            self.semantic = semantic
            self.modelDirectory = modelDirectory
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
        // The semantic store runs only with its model; without it, everything else still runs.
        var embedder: (any TextEmbedder)?
        var semanticUnavailable: String?
        let catalog = try ProjectionCatalog.load(from: directory)
        let modelDirectory = configuration.modelDirectory ?? SentenceEmbedder.defaultDirectory
        let semanticEntry = catalog.projections[PlatformPortfolio.Store.evidenceSemantic]
        if configuration.semantic {
            // The live version's own model when a rebuild recorded one (a model change), else the default.
            let liveModel = semanticEntry?.model(for: catalog.liveVersion(PlatformPortfolio.Store.evidenceSemantic)) ?? modelDirectory
            switch SemanticModel.load(directory: liveModel) {
            case .success(let loaded):
                // The runtime obeys the portfolio: a model other than the declared one is not served.
                if let mismatch = loaded.model.mismatch(with: portfolio.store(named: PlatformPortfolio.Store.evidenceSemantic)?.embedding) {
                    semanticUnavailable = Self.undeclaredModel(liveModel, mismatch)
                } else {
                    embedder = loaded
                }
            case .failure(let error): semanticUnavailable = error.message
            }
        } else {
            semanticUnavailable = "semantic evidence retrieval is switched off in this process"
        }
        var names = projectionNames.filter { $0 != PlatformPortfolio.Store.evidenceSemantic }
        if embedder != nil { names.append(PlatformPortfolio.Store.evidenceSemantic) }
        // An undeclared store cannot be opened: check every one before touching any file.
        try portfolio.admit(store: PlatformPortfolio.Store.canonical, role: .canonical)
        for name in names { try portfolio.admit(store: name, role: .projection) }
        let canonicalFile = directory.databaseFile(for: "canonical")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory.url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw EmbeddedPlatformError(message: "\(directory.url.path) is a file, not a data directory: name a directory (it is created when missing)")
        }
        if create {
            try directory.create()
        } else if !FileManager.default.fileExists(atPath: canonicalFile.path) {
            throw EmbeddedPlatformError(message: "no canonical store at \(canonicalFile.path); run `canon demo --data \(directory.url.path)` or `canon serve --data \(directory.url.path)` first")
        }
        let canonical = try SQLiteCanonicalStore(path: canonicalFile.path, migrations: CasePlatformSchema.migrations, configuration: configuration.canonical)
        let commits = PositionWaiters()
        let priorityCommits = PositionWaiters()
        let store = SignallingCanonicalStore(canonical, commits: commits, priorityCommits: priorityCommits)
        var stores: [any ProjectionStore] = []
        for name in names {
            do {
                stores.append(try makeStore(name, version: catalog.liveVersion(name), in: directory, faults: configuration.projectionFaults, embedder: embedder))
            } catch let error as ProjectionError where name == PlatformPortfolio.Store.evidenceSemantic {
                // Vectors of another model: reads answer 503 with the rebuild command, nothing is mixed.
                semanticUnavailable = error.message
                embedder = nil
            }
        }
        let coordinator = ProjectionCoordinator(
            source: store, commits: commits, priorityCommits: priorityCommits, stores: stores, configuration: portfolio.applyingBatchWindows(to: configuration.projections),
            logger: logger)
        return EmbeddedPlatform(
            directory: directory, canonical: canonical, store: store, coordinator: coordinator, portfolio: portfolio,
            embedder: embedder, semanticUnavailable: semanticUnavailable, modelDirectory: modelDirectory, faults: configuration.projectionFaults)
    }

    /// The platform's projections, in the order status lists them. `evidence-semantic` runs only
    /// when the embedding model is installed.
    public static let projectionNames = ["case-search", "case-timeline", "evidence-semantic"]

    /// Opens (creating) the store of `version` of projection `name`: `DATA/<name>.v<version>.sqlite`.
    public static func makeStore(
        _ name: String, version: Int, in directory: DataDirectory, faults: FaultInjector? = nil, embedder: (any TextEmbedder)? = nil
    ) throws -> any ProjectionStore {
        switch name {
        case "case-search":
            let projection = CaseSearchProjection(version: version)
            return try SQLiteSearchStore(path: directory.databaseFile(for: projection.identity.storeName).path, projection: projection, faults: faults)
        case "case-timeline":
            let projection = CaseTimelineProjection(version: version)
            return try SQLiteTimelineStore(path: directory.databaseFile(for: projection.identity.storeName).path, projection: projection, faults: faults)
        case "evidence-semantic":
            guard let embedder else {
                throw ProjectionError.storage("evidence-semantic needs the embedding model; run scripts/setup-model")
            }
            let projection = EvidenceSemanticProjection(version: version)
            return try SQLiteVectorStore(
                path: directory.databaseFile(for: projection.identity.storeName).path, projection: projection, embedder: embedder, faults: faults)
        default:
            throw ProjectionError.unknownProjection(name, known: projectionNames)
        }
    }

    /// The services the HTTP layer needs.
    public func services(readWait: Duration = .seconds(2)) async throws -> PlatformServices {
        let directory = self.directory
        return try await PlatformServices(
            store: store, projections: coordinator, readPolicy: ReadPolicy(portfolio), readWait: readWait,
            semanticUnavailable: semanticUnavailable, driftCache: { try? Self.driftCache(for: $0, in: directory) },
            retention: RetentionPolicy(portfolio), storeSizes: { [coordinator] in Self.fileSizes(in: directory, projections: coordinator.agents.map(\.store.identity)) },
            rebuildSeconds: { Self.rebuildSeconds(in: directory) })
    }

    /// How long the rebuild that made each live version took, from the catalog (rebuilds run in
    /// `canon rebuild`, another process).
    public static func rebuildSeconds(in directory: DataDirectory) -> [String: Double] {
        guard let catalog = try? ProjectionCatalog.load(from: directory) else { return [:] }
        return catalog.projections.compactMapValues(\.lastRebuildSeconds)
    }

    static func undeclaredModel(_ directory: String, _ mismatch: String) -> String {
        """
        the embedding model in \(directory) is not the one the portfolio declares for evidence-semantic (\(mismatch)): \
        declare it (embedding.model, version, dimensions), then rebuild evidence-semantic with it
        """
    }

    /// The bytes of the canonical file and of each live projection's file, their write-ahead
    /// logs included, by store name.
    public static func fileSizes(in directory: DataDirectory, projections: [ProjectionIdentity]) -> [String: Int64] {
        func bytes(_ file: String) -> Int64 {
            let main = directory.databaseFile(for: file).path
            return [main, main + "-wal"].reduce(0) { total, path in
                total + ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0)
            }
        }
        var sizes = [PlatformPortfolio.Store.canonical: bytes("canonical")]
        for identity in projections { sizes[identity.name] = bytes(identity.storeName) }
        return sizes
    }

    /// The expected digests of drift checks of projection version `identity`, kept between checks:
    /// `DATA/<name>.v<version>.drift-cache.sqlite`.
    public static func driftCache(for identity: ProjectionIdentity, in directory: DataDirectory) throws -> SQLiteDigestCache {
        try SQLiteDigestCache(path: directory.databaseFile(for: identity.storeName + ".drift-cache").path)
    }

    /// The drift check of the live version of projection `name`, with its digest cache.
    public func driftCheck(_ name: String, options: DriftCheck.Options = .init()) throws -> DriftCheck {
        let store = try projectionStore(named: name)
        return try PlatformDrift.check(store, source: canonical, options: options, cache: try Self.driftCache(for: store.identity, in: directory))
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
