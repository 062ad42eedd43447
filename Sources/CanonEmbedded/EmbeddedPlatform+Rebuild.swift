import Canon
import CasePlatform
import Foundation
import Logging
import ServiceLifecycle

extension EmbeddedPlatform {
    /// Rebuilds projection `name` blue-green: builds the next version beside the live one,
    /// catches it up, compares them, and switches readers and the agent to it atomically.
    ///
    /// A rebuild that crashed resumes: the version under construction is recorded in the
    /// catalog and its file continues from its checkpoint. The previous version stays until
    /// `prune`, so `rollback` can switch back.
    ///
    /// A vector projection is rebuilt with `model` (a model directory) when given: changing the
    /// embedding model is a rebuild, built beside the live version, which keeps answering with its
    /// own model until the switch. The catalog records the new version's model, so every process
    /// that follows the switch loads it.
    ///
    /// - Throws: `EmbeddedPlatformError` when the versions differ and the new one does not match
    ///   canonical state, or `model` is not the model the portfolio declares (nothing is switched),
    ///   `ProjectionError` or the projection's error otherwise; `EmbeddingError` when `model` cannot be loaded.
    ///
    /// A projection whose portfolio entry declares `rebuild.source: canonical state` (case search)
    /// is built from one snapshot of the canonical tables and then caught up from the outbox;
    /// `fromOutbox` folds the whole outbox instead.
    public func rebuild(
        _ name: String, model: String? = nil, chunkSize: Int = 5_000, fromOutbox: Bool = false,
        progress: @Sendable (ProjectionRebuild.Progress) -> Void = { _ in }
    ) async throws -> ProjectionRebuild.Report {
        let live = try coordinator.store(named: name)
        var catalog = try ProjectionCatalog.load(from: directory)
        let version = catalog.projections[name]?.building ?? live.identity.version + 1
        catalog.projections[name, default: .init(live: live.identity.version)].building = version
        var nextEmbedder = embedder
        if let model {
            let loaded = try SemanticModel.load(directory: model).get()
            if let mismatch = loaded.model.mismatch(with: portfolio.store(named: name)?.embedding) {
                throw EmbeddedPlatformError(message: Self.undeclaredModel(model, mismatch) + "; nothing was built")
            }
            nextEmbedder = loaded
            var models = catalog.projections[name]?.models ?? [:]
            models[String(version)] = model
            catalog.projections[name]?.models = models
        }
        try catalog.save(to: directory)
        let next = try Self.makeStore(name, version: version, in: directory, faults: faults, embedder: nextEmbedder)
        let state = fromOutbox ? nil : stateSource(for: next.identity)
        var report = try await ProjectionRebuild(source: canonical, live: live, next: next, state: state, chunkSize: chunkSize).run(progress: progress)
        if !report.matches {
            // The versions differ. That is the point of a rebuild when the live one has drifted
            // from canonical state, or when the projection's code changed: what decides is whether
            // the new version holds exactly what canonical state says it should (a full drift
            // check at its checkpoint, which no agent moves until the switch).
            let differs = "\(next.identity) differs from \(live.identity) at position \(report.comparedAt): \(report.rows) rows (checksum \(report.checksum)) against \(report.liveRows) (checksum \(report.liveChecksum))"
            let check: DriftCheck
            do {
                check = try PlatformDrift.check(next, source: canonical)
            } catch {
                throw EmbeddedPlatformError(message: "\(differs), and it cannot be checked against canonical state (\(error)); nothing was switched. Remove \(next.identity.storeName).sqlite to start again")
            }
            let drift = try await check.run(.full)
            guard drift.count == 0 else {
                let kinds = Dictionary(grouping: drift.differences, by: \.kind).mapValues(\.count)
                throw EmbeddedPlatformError(message: """
                    \(differs), and a full drift check of \(next.identity) against canonical state found \(drift.count) difference(s) \
                    (\(kinds[.missing] ?? 0) missing, \(kinds[.extra] ?? 0) extra, \(kinds[.stale] ?? 0) stale); nothing was switched. \
                    Remove \(next.identity.storeName).sqlite to start again
                    """)
            }
            report.canonicalDifferences = 0
        }
        catalog = try ProjectionCatalog.load(from: directory)
        catalog.projections[name] = .init(
            live: version, previous: live.identity.version, building: nil, models: catalog.projections[name]?.models, lastRebuildSeconds: report.seconds)
        try catalog.save(to: directory)
        await coordinator.makeLive(next)
        return report
    }

    /// Where a build of `identity` reads canonical state, when the portfolio declares its rebuild
    /// source to be the canonical state and the platform has a reader for it.
    func stateSource(for identity: ProjectionIdentity) -> (any DocumentStateSource)? {
        Self.stateSource(for: identity, portfolio: portfolio)
    }

    /// What a rebuild of `identity` reads canonical state with, when the portfolio declares
    /// canonical state its rebuild source and the projection can be built so (on either engine).
    static func stateSource(for identity: ProjectionIdentity, portfolio: Portfolio) -> (any DocumentStateSource)? {
        guard portfolio.store(named: identity.name)?.rebuild?.source?.value.lowercased().hasPrefix("canonical state") == true else { return nil }
        switch identity.name {
        case PlatformPortfolio.Store.caseSearch: return CaseSearchState(projection: CaseSearchProjection(version: identity.version))
        default: return nil
        }
    }

    /// Switches projection `name` back to its previous version, which then catches up from its
    /// own checkpoint.
    public func rollback(_ name: String) async throws -> ProjectionIdentity {
        var catalog = try ProjectionCatalog.load(from: directory)
        guard let entry = catalog.projections[name], let previous = entry.previous else {
            throw EmbeddedPlatformError(message: "\(name) has no previous version to roll back to")
        }
        // Opening a version whose file is gone would create it empty and make that live.
        guard try versionFiles(of: name).contains(where: { $0.version == previous }) else {
            throw EmbeddedPlatformError(message: "\(name) version \(previous) has no file in \(directory.url.path) (pruned or removed): nothing to roll back to")
        }
        let store = try Self.makeStore(name, version: previous, in: directory, faults: faults, embedder: embedder(for: previous, of: name, in: catalog))
        catalog.projections[name] = .init(live: previous, previous: entry.live, building: nil, models: entry.models)
        try catalog.save(to: directory)
        await coordinator.makeLive(store)
        return store.identity
    }

    /// Deletes every version of `name` except the live one.
    ///
    /// - Returns: the files removed.
    public func prune(_ name: String) throws -> [String] {
        var catalog = try ProjectionCatalog.load(from: directory)
        let live = catalog.liveVersion(name)
        // The catalog forgets the other versions first: stopped between the two steps, a
        // rollback finds no previous version, rather than a previous version without its file.
        if catalog.projections[name] != nil {
            catalog.projections[name]?.previous = nil
            catalog.projections[name]?.building = nil
            try catalog.save(to: directory)
        }
        var removed: [String] = []
        for (file, version) in try versionFiles(of: name) where version != live {
            try FileManager.default.removeItem(at: directory.url.appendingPathComponent(file))
            removed.append(file)
        }
        return removed.sorted()
    }

    /// The files of every version of `name` in the data directory, with their version numbers.
    func versionFiles(of name: String) throws -> [(file: String, version: Int)] {
        try FileManager.default.contentsOfDirectory(atPath: directory.url.path).compactMap { file in
            guard file.hasPrefix("\(name).v"), let number = Int(file.dropFirst(name.count + 2).prefix { $0.isNumber }) else { return nil }
            return (file, number)
        }
    }

    /// The embedder for `version` of `name`: the model the catalog recorded for it, else this process's.
    func embedder(for version: Int, of name: String, in catalog: ProjectionCatalog) throws -> (any TextEmbedder)? {
        guard name == PlatformPortfolio.Store.evidenceSemantic else { return embedder }
        let directory = catalog.projections[name]?.model(for: version) ?? modelDirectory
        return try SemanticModel.load(directory: directory).get()
    }

    /// A service that follows the catalog: when another process (`canon rebuild`) switches a
    /// projection's live version, this process moves its readers and agent to it.
    public func catalogWatcher(interval: Duration = .seconds(1), logger: Logger = Logger(label: "canon.catalog")) -> CatalogWatcher {
        CatalogWatcher(platform: self, interval: interval, logger: logger)
    }
}

/// Polls `projections.json` and switches live projection versions to match it.
public struct CatalogWatcher: Service, CustomStringConvertible {
    /// What ServiceLifecycle logs when it starts the service (not the whole platform it holds).
    public var description: String { "CatalogWatcher" }

    let platform: EmbeddedPlatform
    let interval: Duration
    let logger: Logger

    public func run() async throws {
        while !Task.isCancelledOrShuttingDown {
            try? await Task.sleep(for: interval)
            do {
                try await followCatalog()
            } catch {
                logger.warning("cannot follow the projection catalog", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Switches every projection whose live version differs from the catalog's.
    public func followCatalog() async throws {
        let catalog = try ProjectionCatalog.load(from: platform.directory)
        for name in EmbeddedPlatform.projectionNames {
            // A projection not running in this process (semantic retrieval without its model) has nothing to follow.
            guard let current = try? platform.coordinator.store(named: name).identity.version else { continue }
            let wanted = catalog.liveVersion(name)
            if current != wanted {
                let store = try EmbeddedPlatform.makeStore(
                    name, version: wanted, in: platform.directory, faults: platform.faults,
                    embedder: platform.embedder(for: wanted, of: name, in: catalog))
                await platform.coordinator.makeLive(store)
                logger.info("followed a blue-green switch", metadata: ["projection.name": "\(store.identity)"])
            }
        }
    }
}

extension Task where Success == Never, Failure == Never {
    static var isCancelledOrShuttingDown: Bool { Task.isCancelled || Task.isShuttingDownGracefully }
}
