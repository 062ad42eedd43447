import Canon
import CanonPostgres
import CasePlatform
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// What the scaled-out platform refuses, said so that an operator can act on it.
public struct PostgresPlatformError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }

    public init(_ message: String) { self.message = message }
}

extension PostgresPlatform {
    /// Opens version `version` of projection `name` (creating its role, schema and tables when
    /// missing).
    public static func makeStore(_ name: String, version: Int, url: PostgresURL, faults: FaultInjector? = nil) async throws -> any ProjectionStore {
        switch name {
        case PlatformPortfolio.Store.caseSearch:
            return try await PostgresSearchStore.open(url: url, projection: CaseSearchProjection(version: version), faults: faults)
        case PlatformPortfolio.Store.caseTimeline:
            return try await PostgresTimelineStore.open(url: url, projection: CaseTimelineProjection(version: version), faults: faults)
        default:
            throw ProjectionError.unknownProjection(name, known: projectionNames)
        }
    }

    /// Rebuilds projection `name` blue-green, as `EmbeddedPlatform.rebuild` does on the embedded
    /// engine: builds the next version in a schema of its own beside the live one while reads
    /// and writes go on (the live version's agent keeps applying, in whichever process holds its
    /// lease), catches it up, compares the two at one position, and switches
    /// `canon_projection_versions` to it. Every process then moves its readers and agent to it
    /// (`VersionFollower`); this one at once.
    ///
    /// An interrupted rebuild resumes: the version under construction is recorded, and its
    /// schema continues from its checkpoint. The previous version stays until `prune`, so
    /// `rollback` can switch back. When the portfolio declares canonical state as the rebuild
    /// source (case search), the build reads one `REPEATABLE READ` snapshot of the canonical
    /// tables and then catches up from the outbox; `fromOutbox` (and every other projection)
    /// folds the whole outbox. A build from state that was interrupted starts its state phase
    /// again (`PostgresSearchStore`'s `StateBuildableStore`).
    ///
    /// - Throws: `PostgresPlatformError` when the versions differ and the new one does not match
    ///   canonical state (nothing is switched); `ProjectionError` or the projection's error otherwise.
    public func rebuild(
        _ name: String, chunkSize: Int = 5_000, fromOutbox: Bool = false, stateChunkSize: Int = 20_000,
        progress: @Sendable (ProjectionRebuild.Progress) -> Void = { _ in }
    ) async throws -> ProjectionRebuild.Report {
        guard Self.projectionNames.contains(name) else {
            throw ProjectionError.unknownProjection(name, known: Self.projectionNames)
        }
        return try await versions.exclusively(name) {
            try await rebuildAlone(name, chunkSize: chunkSize, fromOutbox: fromOutbox, stateChunkSize: stateChunkSize, progress: progress)
        }
    }

    private func rebuildAlone(
        _ name: String, chunkSize: Int, fromOutbox: Bool, stateChunkSize: Int, progress: @Sendable (ProjectionRebuild.Progress) -> Void
    ) async throws -> ProjectionRebuild.Report {
        // Another process may have switched since this one opened: build beside what is live now.
        try await follower.follow()
        let live = try coordinator.store(named: name)
        let recorded = try await versions.liveVersion(name)
        guard recorded == live.identity.version else {
            // The follower did not open it: its schema is gone.
            throw PostgresPlatformError(
                "\(name)@\(recorded) is live in canon_projection_versions, but schema \(PostgresProjectionVersions.schema(of: name, version: recorded)) is gone; `canon rebuild \(name) --rollback` switches back to the previous version")
        }
        let version = try await versions.beginBuilding(name, live: live.identity.version)
        let next = try await Self.makeStore(name, version: version, url: url, faults: projectionFaults)
        let state = fromOutbox ? nil : EmbeddedPlatform.stateSource(for: next.identity, portfolio: portfolio)
        var rebuild = ProjectionRebuild(source: canonical, live: live, next: next, state: state, chunkSize: chunkSize)
        rebuild.stateChunkSize = stateChunkSize
        var report = try await rebuild.run(progress: progress)
        if !report.matches {
            // As on the embedded engine: the versions may differ because the live one drifted or
            // the projection changed; the new one is switched to only if it equals canonical state.
            let schema = PostgresProjectionVersions.schema(of: name, version: version)
            let differs = "\(next.identity) differs from \(live.identity) at position \(report.comparedAt): \(report.rows) rows (checksum \(report.checksum)) against \(report.liveRows) (checksum \(report.liveChecksum))"
            let drift: DriftReport
            do {
                drift = try await PlatformDrift.check(next, source: canonical).run(.full)
            } catch is CancellationError {
                // Stopped (SIGTERM): the CLI says so, and the next run resumes.
                throw CancellationError()
            } catch {
                throw PostgresPlatformError("\(differs), and it cannot be checked against canonical state (\(error)); nothing was switched. `canon rebuild \(name) --prune` drops schema \(schema) to start again")
            }
            guard drift.count == 0 else {
                let kinds = Dictionary(grouping: drift.differences, by: \.kind).mapValues(\.count)
                throw PostgresPlatformError("""
                    \(differs), and a full drift check of \(next.identity) against canonical state found \(drift.count) difference(s) \
                    (\(kinds[.missing] ?? 0) missing, \(kinds[.extra] ?? 0) extra, \(kinds[.stale] ?? 0) stale); nothing was switched. \
                    `canon rebuild \(name) --prune` drops schema \(schema) to start again
                    """)
            }
            report.canonicalDifferences = 0
        }
        try await versions.switchLive(name, to: version, previous: live.identity.version, seconds: report.seconds)
        _ = await coordinator.makeLive(next)
        return report
    }

    /// Switches projection `name` back to its previous version, which then catches up from its
    /// own checkpoint.
    public func rollback(_ name: String) async throws -> ProjectionIdentity {
        guard Self.projectionNames.contains(name) else {
            throw ProjectionError.unknownProjection(name, known: Self.projectionNames)
        }
        return try await versions.exclusively(name) { try await rollbackAlone(name) }
    }

    private func rollbackAlone(_ name: String) async throws -> ProjectionIdentity {
        guard let entry = try await versions.entry(name), let previous = entry.previous else {
            throw PostgresPlatformError("\(name) has no previous version to roll back to")
        }
        // Opening a version whose schema is gone would create it empty and make that live.
        guard try await versions.schemas(of: name)[previous] != nil else {
            throw PostgresPlatformError(
                "\(name) version \(previous) has no schema \(PostgresProjectionVersions.schema(of: name, version: previous)) (dropped): nothing to roll back to")
        }
        let store = try await Self.makeStore(name, version: previous, url: url, faults: projectionFaults)
        try await versions.switchLive(name, to: previous, previous: entry.live)
        _ = await coordinator.makeLive(store)
        return store.identity
    }

    /// Drops the schema of every version of `name` except the live one.
    ///
    /// - Returns: the schemas dropped.
    public func prune(_ name: String) async throws -> [String] {
        guard Self.projectionNames.contains(name) else {
            throw ProjectionError.unknownProjection(name, known: Self.projectionNames)
        }
        // Alone: a rebuild running elsewhere is building into a schema this would drop.
        return try await versions.exclusively(name) { try await pruneAlone(name) }
    }

    private func pruneAlone(_ name: String) async throws -> [String] {
        let live = try await versions.liveVersion(name)
        // The table forgets the other versions first: stopped between the two steps, a rollback
        // finds no previous version, rather than a previous version without its schema.
        try await versions.forgetOthers(name)
        var dropped: [String] = []
        for (version, schema) in try await versions.schemas(of: name) where version != live {
            try await versions.dropSchema(of: name, version: version)
            dropped.append(schema)
        }
        return dropped.sorted()
    }
}

/// Keeps a process's readers and agents on the live version of each projection: when a rebuild
/// in any process switches one (`switch:` on `canon_control`, through `PostgresNotifications`),
/// and every `interval` as the fallback, it reads `canon_projection_versions` and moves whatever
/// differs (`ProjectionCoordinator.makeLive`: readers at once, the agent when its lease is held).
public final class VersionFollower: Service, Sendable, CustomStringConvertible {
    public var description: String { "VersionFollower" }

    private let coordinator: ProjectionCoordinator
    private let versions: PostgresProjectionVersions
    private let url: PostgresURL
    private let faults: FaultInjector?
    private let interval: Duration
    private let logger: Logger
    private let kicks: AsyncStream<Void>
    private let kicker: AsyncStream<Void>.Continuation
    /// The table as this process last read it.
    private let seen = Mutex<[String: PostgresProjectionVersions.Entry]>([:])
    /// The live versions found without a schema, each logged once.
    private let missing = Mutex<Set<ProjectionIdentity>>([])
    /// Moves after every completed reading of the versions (and the switches it made): what a
    /// wait for this process to follow a switch re-checks on.
    public let activity = PositionWaiters()
    private let follows = Mutex<Int64>(0)

    init(coordinator: ProjectionCoordinator, versions: PostgresProjectionVersions, url: PostgresURL, faults: FaultInjector?, interval: Duration = .seconds(5), logger: Logger) {
        self.coordinator = coordinator
        self.versions = versions
        self.url = url
        self.faults = faults
        self.interval = interval
        self.logger = logger
        (kicks, kicker) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// How long the rebuild that made each live version took, as last read
    /// (`canon_rebuild_duration_seconds`).
    public var rebuildSeconds: [String: Double] { seen.withLock { $0.compactMapValues(\.lastRebuildSeconds) } }

    /// Asks the running follower to read the versions now.
    public func kick() { kicker.yield() }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown { [self] in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { [self] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        kick()
                    }
                }
                for await _ in kicks {
                    do {
                        try await follow()
                    } catch {
                        if Task.isCancelled { break }
                        logger.warning("cannot follow the live projection versions", metadata: ["error": "\(error)"])
                    }
                }
                group.cancelAll()
            }
        }
    }

    /// Moves every projection whose live version here differs from `canon_projection_versions`.
    ///
    /// - Returns: the versions this process switched to.
    @discardableResult
    public func follow() async throws -> [ProjectionIdentity] {
        let live = try await versions.all()
        seen.withLock { $0 = live }
        var switched: [ProjectionIdentity] = []
        for name in PostgresPlatform.projectionNames {
            guard let current = try? coordinator.store(named: name).identity.version else { continue }
            let wanted = live[name]?.live ?? 1
            guard current != wanted else { continue }
            // Opening a version whose schema is gone would create it empty and serve that: a
            // switch to a dropped schema (by hand, or by a tool that ignores the lock) is refused.
            let hasSchema = live[name] == nil ? true : try await versions.schemas(of: name)[wanted] != nil
            guard hasSchema else {
                guard missing.withLock({ $0.insert(ProjectionIdentity(name: name, version: wanted)).inserted }) else { continue }
                logger.error(
                    "the live version of a projection has no schema; staying on this one",
                    metadata: ["projection.name": "\(name)@\(wanted)", "schema": "\(PostgresProjectionVersions.schema(of: name, version: wanted))"])
                continue
            }
            let store = try await PostgresPlatform.makeStore(name, version: wanted, url: url, faults: faults)
            // Checked again: another follow (a rebuild in this process) may have moved it meanwhile.
            guard (try? coordinator.store(named: name).identity.version) == current else { continue }
            _ = await coordinator.makeLive(store)
            switched.append(store.identity)
            logger.info("followed a blue-green switch", metadata: ["projection.name": "\(store.identity)"])
        }
        activity.advance(to: OutboxPosition(follows.withLock { $0 += 1; return $0 }))
        return switched
    }
}
