import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Decides which projections run in this process and runs one agent for each.
///
/// It is a `Service`: `run()` runs every agent until graceful shutdown (SIGTERM/SIGINT), and it
/// answers status, read-your-writes waits, dead-letter and replay requests for its agents.
public final class ProjectionCoordinator: Service, Sendable {
    public struct Configuration: Sendable {
        public var agent: ProjectionAgent.Configuration
        /// An agent whose heartbeat is older than this is reported stalled.
        public var stallAfter: Duration
        /// Failure policies by projection name, overriding `agent.failurePolicy`.
        public var failurePolicies: [String: FailurePolicy]
        /// Lingers by projection name, overriding `agent.linger`: the batch windows the portfolio
        /// declares (`freshness.batch_window`).
        public var lingers: [String: Duration]
        /// Run the priority path (permission changes applied ahead of backlogs).
        public var priorityPath: Bool
        /// Told about every batch of priority events the priority path applied, and when (benchmarks).
        public var priorityObserver: (@Sendable ([EventEnvelope], Date) -> Void)?
        /// When several processes share the canonical store: an agent runs only while this
        /// process holds its projection's lease. Nil: every agent runs here.
        public var leases: (any ProjectionLeases)?
        /// How often a process without a lease tries to take it (and reads the checkpoint it
        /// follows), and how often a holder checks it still holds it: the bound on a takeover.
        public var leaseInterval: Duration
        /// How requests reach the process that runs an agent this one does not (with leases).
        public var control: (any ProjectionControl)?

        public init(
            agent: ProjectionAgent.Configuration = .init(), stallAfter: Duration = .seconds(5), failurePolicies: [String: FailurePolicy] = [:],
            lingers: [String: Duration] = [:], priorityPath: Bool = true, priorityObserver: (@Sendable ([EventEnvelope], Date) -> Void)? = nil,
            leases: (any ProjectionLeases)? = nil, leaseInterval: Duration = .milliseconds(500), control: (any ProjectionControl)? = nil
        ) {
            self.agent = agent
            self.stallAfter = stallAfter
            self.failurePolicies = failurePolicies
            self.lingers = lingers
            self.priorityPath = priorityPath
            self.priorityObserver = priorityObserver
            self.leases = leases
            self.leaseInterval = leaseInterval
            self.control = control
        }
    }

    public let source: any CanonicalStore
    /// Wakes agents when the outbox moves; `SignallingCanonicalStore` advances it on every commit.
    public let commits: PositionWaiters
    /// Advanced by commits that appended priority events, when the engine announces them
    /// (`SignallingCanonicalStore`, PostgreSQL's `canon_priority`): the priority path then reads
    /// the outbox for those only. Nil: it reads after every commit.
    public let priorityCommits: PositionWaiters?
    /// The outbox position up to which the priority path has handed permission changes to the stores.
    public let priorityApplied = PositionWaiters()
    private let configuration: Configuration
    private let clock: @Sendable () -> Date
    private let logger: Logger

    private struct Running {
        var agent: ProjectionAgent
        var task: Task<Void, Never>?
        /// Done when the loops of the agents this one replaced have stopped (see `makeLive`).
        var replaced: Task<Void, Never>?
    }

    private struct State {
        var names: [String] = []
        var running: [String: Running] = [:]
        var started = false
        /// Projections whose lease this process holds (with leases configured).
        var leased: Set<String> = []
    }

    private let state = Mutex(State())

    public init(
        source: any CanonicalStore, commits: PositionWaiters, priorityCommits: PositionWaiters? = nil, stores: [any ProjectionStore],
        configuration: Configuration = Configuration(), clock: @escaping @Sendable () -> Date = { Date() },
        logger: Logger = Logger(label: "canon.projections")
    ) {
        self.source = source
        self.commits = commits
        self.priorityCommits = priorityCommits
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        state.withLock { state in
            for store in stores {
                state.names.append(store.identity.name)
                state.running[store.identity.name] = Running(agent: Self.makeAgent(store, source, commits, configuration, clock, logger))
            }
        }
    }

    private static func makeAgent(
        _ store: any ProjectionStore, _ source: any CanonicalStore, _ commits: PositionWaiters, _ configuration: Configuration,
        _ clock: @escaping @Sendable () -> Date, _ logger: Logger
    ) -> ProjectionAgent {
        var agentConfiguration = configuration.agent
        if let policy = configuration.failurePolicies[store.identity.name] { agentConfiguration.failurePolicy = policy }
        if let linger = configuration.lingers[store.identity.name] { agentConfiguration.linger = linger }
        return ProjectionAgent(store: store, source: source, commits: commits, configuration: agentConfiguration, clock: clock, logger: logger)
    }

    /// The live agents, one per projection, in declaration order.
    public var agents: [ProjectionAgent] {
        state.withLock { state in state.names.compactMap { state.running[$0]?.agent } }
    }

    /// Runs every agent until graceful shutdown (or cancellation), then stops them and waits.
    public func run() async throws {
        if let head = try? await source.headPosition() { commits.advance(to: head) }
        state.withLock { state in
            state.started = true
            for name in state.names where state.running[name]?.task == nil {
                let agent = state.running[name]!.agent
                if let leases = configuration.leases {
                    state.running[name]?.task = Task { [self] in await runLeased(name, leases: leases) }
                } else {
                    state.running[name]?.task = Task { await agent.run() }
                }
            }
        }
        let lane: Task<Void, Never>? = configuration.priorityPath
            ? Task { [self] in
                await PriorityLane(
                    // Only the stores whose agent runs here: the lease holder of each other
                    // store applies its priority events (once, not once per process).
                    source: source, commits: commits, stores: { [self] in agents.filter { holdsLease($0.identity.name) }.map(\.store) },
                    observer: configuration.priorityObserver, applied: priorityApplied, logger: logger, priorityCommits: priorityCommits
                ).run()
            }
            : nil
        try? await gracefulShutdown()
        let tasks = state.withLock { state in
            state.started = false
            // With the loops of agents being replaced (a switch under way), which may still be
            // writing or giving their lease up.
            return state.running.values.compactMap(\.task) + state.running.values.compactMap(\.replaced)
        }
        lane?.cancel()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        await lane?.value
        logger.info("projection agents stopped")
    }

    /// Runs the agent of `name` while this process holds its lease; otherwise follows the
    /// checkpoint another process moves, and tries to take the lease at every interval.
    private func runLeased(_ name: String, leases: any ProjectionLeases) async {
        while !Task.isCancelled {
            guard let agent = try? agent(named: name) else { return }
            if await leases.acquire(name) {
                state.withLock { _ = $0.leased.insert(name) }
                logger.info("projection lease taken", metadata: ["projection.name": "\(agent.identity)"])
                let running = Task { await agent.run() }
                while !Task.isCancelled, await leases.stillHeld(name) {
                    try? await Task.sleep(for: configuration.leaseInterval)
                }
                running.cancel()
                await running.value
                state.withLock { _ = $0.leased.remove(name) }
                await leases.release(name)
                if !Task.isCancelled { logger.warning("projection lease lost", metadata: ["projection.name": "\(agent.identity)"]) }
            } else {
                if let checkpoint = try? await agent.store.checkpoint() { agent.applied.advance(to: checkpoint.position) }
                // Nothing to wait on: the holder's notifications reach readers through
                // `noteApplied`; this loop only retries the lease at its interval.
                try? await Task.sleep(for: configuration.leaseInterval)
            }
        }
    }

    /// Another process applied `identity` up to `position` (it told us through the engine's
    /// notifications): readers waiting here for that position go on at once.
    public func noteApplied(_ identity: ProjectionIdentity, through position: OutboxPosition) {
        guard let agent = try? agent(named: identity.name), agent.identity == identity else { return }
        agent.applied.advance(to: position)
    }

    /// What a resume request came to.
    public enum ResumeOutcome: Sendable, Equatable {
        /// The agent runs here and was paused: it goes on, in this state.
        case resumed(AgentState)
        /// The agent runs in another process (`owner`, from its heartbeat) and was paused there:
        /// the request was sent to it.
        case forwarded(owner: String)
        /// The agent is not paused (here, or as its heartbeat says): nothing to resume.
        case notPaused(AgentState)
    }

    /// Resumes the paused agent of `name`, wherever it runs: here, or through `control` in the
    /// process that holds its lease.
    ///
    /// - Throws: `ProjectionError.unknownProjection`; `ProjectionError.storage` when the agent
    ///   runs elsewhere and no `control` can reach it, or the request cannot be sent.
    public func resume(_ name: String) async throws -> ResumeOutcome {
        let agent = try agent(named: name)
        if holdsLease(name) {
            let state = await agent.snapshot().state
            guard state == .paused else { return .notPaused(state) }
            await agent.resume()
            return .resumed(await agent.snapshot().state)
        }
        let heartbeat = try await agent.store.heartbeat()
        guard let heartbeat, heartbeat.state == .paused else { return .notPaused(heartbeat?.state ?? .stopped) }
        let age = Duration.milliseconds(Int64(max(0, clock().timeIntervalSince(heartbeat.at)) * 1000))
        guard age <= configuration.stallAfter else {
            // Its last heartbeat is stale: no process runs it now to hear the request.
            throw ProjectionError.storage("\(agent.identity) was paused in \(heartbeat.owner), which has not beaten for \(age); no process runs it now")
        }
        guard let control = configuration.control else {
            throw ProjectionError.storage("\(agent.identity) runs in another process (\(heartbeat.owner)) and this one cannot reach it")
        }
        try await control.requestResume(agent.identity)
        return .forwarded(owner: heartbeat.owner)
    }

    /// Another process asked to resume `identity`: done when its agent runs here.
    public func handleResumeRequest(_ identity: ProjectionIdentity) async {
        guard holdsLease(identity.name), let agent = try? agent(named: identity.name), agent.identity == identity else { return }
        logger.info("resume requested by another process", metadata: ["projection.name": "\(identity)"])
        await agent.resume()
    }

    /// Whether this process runs the agent of `name` now (always, without leases).
    public func holdsLease(_ name: String) -> Bool {
        configuration.leases == nil || state.withLock { $0.leased.contains(name) }
    }

    /// Makes `store` the live store of its projection (blue-green switch): from now on reads
    /// and waits go to it, its agent starts (when agents run), and the previous agent stops.
    ///
    /// With leases, the new agent runs under the projection's lease like any other: the previous
    /// loop stops and gives the lease up first, then a new loop takes it again. (Taken while the
    /// old loop still held it, the lease would be "held" twice in this process and given up by
    /// the old loop's release.)
    @discardableResult
    public func makeLive(_ store: any ProjectionStore) async -> ProjectionAgent {
        let agent = Self.makeAgent(store, source, commits, configuration, clock, logger)
        let name = store.identity.name
        let leases = configuration.leases
        // Two switches of one projection at once (a follower and a rebuild): the second replaces
        // an agent whose loop has not started, so it waits for what the first waits for too.
        let replaced: Task<Void, Never> = state.withLock { state in
            if !state.names.contains(name) { state.names.append(name) }
            let old = state.running[name]
            old?.task?.cancel()
            let replaced = Task { [old] in
                await old?.task?.value
                await old?.replaced?.value
            }
            state.running[name] = Running(agent: agent, task: state.started && leases == nil ? Task { await agent.run() } : nil, replaced: replaced)
            return replaced
        }
        await replaced.value
        // Done: the chain (and the old agents and stores it holds) can go.
        state.withLock { state in
            if state.running[name]?.agent === agent { state.running[name]?.replaced = nil }
        }
        if let leases {
            state.withLock { state in
                // Unless the agents stopped meanwhile, or `run` started this one's loop already.
                guard state.started, state.running[name]?.agent === agent, state.running[name]?.task == nil else { return }
                state.running[name]?.task = Task { [self] in await runLeased(name, leases: leases) }
            }
        }
        logger.info("projection switched", metadata: ["projection.name": "\(store.identity)"])
        return agent
    }

    public func agent(named name: String) throws -> ProjectionAgent {
        let found = state.withLock { $0.running[name]?.agent }
        guard let found else {
            throw ProjectionError.unknownProjection(name, known: state.withLock { $0.names })
        }
        return found
    }

    /// The live store of projection `name`.
    public func store(named name: String) throws -> any ProjectionStore {
        try agent(named: name).store
    }

    /// Waits until projection `name` has applied `position`, at most `timeout`.
    ///
    /// - Returns: whether it did.
    public func waitUntilApplied(_ name: String, position: OutboxPosition, timeout: Duration) async throws -> Bool {
        try await agent(named: name).applied.wait(until: position, timeout: timeout)
    }

    /// - Parameter now: the time lag is measured at (default: the coordinator's clock).
    public func statuses(now: Date? = nil) async throws -> [ProjectionStatus] {
        var statuses: [ProjectionStatus] = []
        let at = now ?? clock()
        for agent in agents {
            // An agent another process runs is described by the heartbeat it writes.
            let live = holdsLease(agent.identity.name) ? await agent.snapshot() : nil
            var status = try await ProjectionStatus.read(agent.store, source: source, stallAfter: configuration.stallAfter, now: at, live: live)
            status.accelerator = (agent.store as? any AcceleratedStore)?.acceleratorStatus
            statuses.append(status)
        }
        return statuses
    }
}

/// One row of `canon status` and `GET /v1/ops/projections`.
public struct ProjectionStatus: Hashable, Codable, Sendable {
    public var name: String
    public var version: Int
    public var position: OutboxPosition
    public var lagEvents: Int64
    public var lagMilliseconds: Int64
    public var state: String
    public var heartbeatAgeMilliseconds: Int64?
    public var stalled: Bool
    public var deadLetters: Int
    public var lastError: String?
    public var owner: String?
    /// What answers this store's reads in this process, for a store with an in-process
    /// accelerator (the case-search memory index); nil for other stores, and in `canon status`,
    /// which runs in a process of its own.
    public var accelerator: AcceleratorStatus?

    public init(
        name: String, version: Int, position: OutboxPosition, lagEvents: Int64, lagMilliseconds: Int64, state: String,
        heartbeatAgeMilliseconds: Int64?, stalled: Bool, deadLetters: Int, lastError: String?, owner: String?
    ) {
        self.name = name
        self.version = version
        self.position = position
        self.lagEvents = lagEvents
        self.lagMilliseconds = lagMilliseconds
        self.state = state
        self.heartbeatAgeMilliseconds = heartbeatAgeMilliseconds
        self.stalled = stalled
        self.deadLetters = deadLetters
        self.lastError = lastError
        self.owner = owner
    }

    enum CodingKeys: String, CodingKey {
        case name, version, position, state, stalled, owner
        case lagEvents = "lag_events", lagMilliseconds = "lag_ms", heartbeatAgeMilliseconds = "heartbeat_age_ms"
        case deadLetters = "dead_letters", lastError = "last_error", accelerator
    }

    /// Reads a projection's status from its store (so another process, such as `canon status`,
    /// sees the same thing), preferring the live agent's state when it runs in this process.
    public static func read(
        _ store: any ProjectionStore, source: any CanonicalStore, stallAfter: Duration, now: Date = Date(),
        live: ProjectionAgent.Snapshot? = nil
    ) async throws -> ProjectionStatus {
        let checkpoint = try await store.checkpoint()
        let freshness = try await Freshness.measure(checkpoint: checkpoint, source: source, now: now)
        let heartbeat = try await store.heartbeat()
        let age = heartbeat.map { Int64(max(0, now.timeIntervalSince($0.at)) * 1000) }
        let window = Int64(stallAfter.components.seconds * 1000 + stallAfter.components.attoseconds / 1_000_000_000_000_000)
        let state = live?.state ?? heartbeat?.state ?? .stopped
        let stalled = state != .stopped && (age.map { $0 > window } ?? true)
        let parked = try await store.deadLetters().filter { $0.state == .parked }.count
        return ProjectionStatus(
            name: store.identity.name, version: store.identity.version, position: checkpoint.position,
            lagEvents: freshness.lagEvents, lagMilliseconds: freshness.lagMilliseconds,
            state: stalled ? "stalled" : state.rawValue, heartbeatAgeMilliseconds: age, stalled: stalled, deadLetters: parked,
            lastError: live?.lastError ?? heartbeat?.lastError, owner: heartbeat?.owner)
    }
}

/// A store that answers reads from an in-process structure beside its files, such as the
/// case-search memory index. Which path reads take is runtime state, so operators see it.
public protocol AcceleratedStore: ProjectionStore {
    var acceleratorStatus: AcceleratorStatus { get }
}

/// An accelerator's state in this process.
public struct AcceleratorStatus: Hashable, Codable, Sendable {
    public enum State: String, Hashable, Codable, Sendable {
        /// Answering reads.
        case ready
        /// Being built; the store's engine answers meanwhile.
        case loading
        /// Not built yet: it loads on the first read.
        case idle
        /// Not used: switched off, or the store's schema is one it cannot serve.
        case off
    }

    public var name: String
    public var state: State
    public var documents: Int?
    public var bytes: Int?

    public init(name: String, state: State, documents: Int?, bytes: Int?) {
        self.name = name
        self.state = state
        self.documents = documents
        self.bytes = bytes
    }
}
