import Foundation
import Logging
import Metrics

/// Runs one projection: loads ranges of events from the outbox, applies them in position order
/// (so per-stream order holds), and moves the checkpoint in the same transaction.
///
/// - New commits wake it at once (`commits`); `idleWait` is the polling fallback.
/// - A failing batch is retried with exponential backoff and jitter. When it still fails, the
///   batch is split to find the poison event; the failure policy then parks that event in the
///   dead-letter store and goes on, or pauses the projection.
/// - Its heartbeat is kept apart from its progress: an agent that is caught up still beats, and
///   one blocked inside an apply stops beating, so a stall shows even with nothing to do.
public actor ProjectionAgent {
    public struct Configuration: Sendable {
        /// Events loaded and applied per transaction, at first and whenever the agent is live.
        public var batchSize: Int
        /// The most events per transaction while catching up. A full batch that applied in less
        /// than half of `batchTarget` doubles the next one, up to this; one that took longer than
        /// `batchTarget` halves it. So a backlog is applied in large transactions (a catch-up of
        /// 1,000,000 events into case search took 11.8 s in batches of up to 20,000 and 9.4 s in
        /// batches of up to 100,000), while a slow projection (one that embeds text) keeps
        /// transactions short enough to beat its heartbeat.
        public var maxBatchSize: Int
        /// How long one catch-up transaction should take at most. While one runs, the priority
        /// path waits for the store's write lock, so a permission change reaches a store that is
        /// catching up within about this long (a live store's batches take milliseconds).
        public var batchTarget: Duration
        /// After a partial batch (the agent is live), how long to wait before loading again, so
        /// that the commits arriving meanwhile share one transaction. It trades up to that much
        /// commit-to-searchable latency for fewer projection transactions per write. Zero (the
        /// default) loads again at once; the scaled-out platform uses 10 ms.
        public var linger: Duration
        /// How long an idle agent waits for a wake-up before polling the outbox anyway.
        public var idleWait: Duration
        /// How often the heartbeat is written.
        public var heartbeatInterval: Duration
        public var failurePolicy: FailurePolicy
        /// Who runs the agent (host and process), recorded with the heartbeat.
        public var owner: String

        public init(
            batchSize: Int = 1000, maxBatchSize: Int = 100_000, batchTarget: Duration = .seconds(1), linger: Duration = .zero,
            idleWait: Duration = .seconds(1), heartbeatInterval: Duration = .seconds(1), failurePolicy: FailurePolicy = FailurePolicy(),
            owner: String = ProjectionAgent.defaultOwner
        ) {
            self.linger = linger
            self.batchSize = max(1, batchSize)
            self.maxBatchSize = max(self.batchSize, maxBatchSize)
            self.batchTarget = batchTarget
            self.idleWait = idleWait
            self.heartbeatInterval = heartbeatInterval
            self.failurePolicy = failurePolicy
            self.owner = owner
        }
    }

    public static let defaultOwner = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"

    public nonisolated let identity: ProjectionIdentity
    public nonisolated let store: any ProjectionStore
    public nonisolated let source: any CanonicalStore
    /// Positions this agent has applied: readers wait on it for read-your-writes.
    public nonisolated let applied: PositionWaiters
    /// Moves on every turn of the agent's loop (at least once a heartbeat interval while it runs,
    /// and on every apply, pause or state change): whoever watches the agent waits on this instead
    /// of polling on a timer.
    public nonisolated let activity: PositionWaiters
    /// How long the agent waits after a partial batch to gather more (its store's batch window).
    public nonisolated var linger: Duration { configuration.linger }
    private var turns: Int64 = 0
    private let commits: PositionWaiters
    private let configuration: Configuration
    private let clock: @Sendable () -> Date
    private var logger: Logger
    private var state = AgentState.starting
    private var lastError: String?
    private var checkpoint = Checkpoint.start
    private var lastBeat: Date = .distantPast
    /// The state the last heartbeat recorded.
    private var lastBeatState: AgentState?
    private var resumeRequested = false
    /// The last batch was partial and no commit was announced after it: skip the next load.
    private var caughtUp = false
    /// How many events to load next (see `Configuration.maxBatchSize`).
    private var batches: BatchSizer
    /// While catching up, the next batch loads while this one applies (reading and writing run
    /// on different connections, so on different cores).
    private var prefetch: OutboxPrefetch
    /// The size of the next batch when a preparing store was told which events it holds: the
    /// next load keeps exactly those, even if the sizer has changed its mind since.
    private var promised: Int?
    private var random = SystemRandomNumberGenerator()
    private let metrics: AgentMetrics

    public init(
        store: any ProjectionStore, source: any CanonicalStore, commits: PositionWaiters,
        configuration: Configuration = Configuration(), clock: @escaping @Sendable () -> Date = { Date() },
        logger: Logger = Logger(label: "canon.projection")
    ) {
        self.identity = store.identity
        self.store = store
        self.source = source
        self.commits = commits
        self.configuration = configuration
        self.batches = BatchSizer(minimum: configuration.batchSize, maximum: configuration.maxBatchSize, target: configuration.batchTarget)
        self.prefetch = OutboxPrefetch(selecting: store.selection)
        self.clock = clock
        self.applied = PositionWaiters()
        self.activity = PositionWaiters()
        var logger = logger
        logger[metadataKey: "projection.name"] = .string(store.identity.description)
        self.logger = logger
        self.metrics = AgentMetrics(identity: store.identity)
    }

    /// What the agent last knew about itself.
    public struct Snapshot: Sendable {
        public var identity: ProjectionIdentity
        public var state: AgentState
        public var checkpoint: Checkpoint
        public var lastError: String?
    }

    public func snapshot() -> Snapshot {
        Snapshot(identity: identity, state: state, checkpoint: checkpoint, lastError: lastError)
    }

    /// Lets a paused projection go on (after the cause was fixed).
    public func resume() {
        guard state == .paused else { return }
        resumeRequested = true
        commits.kick()
    }

    /// Runs until the task is cancelled.
    public func run() async {
        do {
            checkpoint = try await store.checkpoint()
        } catch {
            record(error: error)
            logger.error("cannot read checkpoint", metadata: ["error": "\(error)"])
        }
        applied.reset(to: checkpoint.position)
        caughtUp = false
        // A checkpoint past the canonical head means the canonical store is not the one the
        // projection was built from (replaced, or restored from an older backup): applying
        // from there would skip every new write up to the checkpoint, silently. Paused, saying so.
        if let head = try? await source.headPosition(), checkpoint.position > head {
            state = .paused
            record(error: ProjectionError.storage(
                "\(store.identity): its checkpoint \(checkpoint.position) is past the canonical store's head \(head): the canonical "
                    + "store is not the one it was built from (replaced, or restored from an older backup); rebuild it (canon rebuild)"))
            logger.error("projection is ahead of the canonical store; paused", metadata: [
                "checkpoint": "\(checkpoint.position)", "canonical.head": "\(head)",
            ])
        }
        while !Task.isCancelled {
            await beat()
            if state == .paused {
                if resumeRequested {
                    resumeRequested = false
                    state = .catchingUp
                    lastError = nil
                } else {
                    // The kick count is read here, on the actor, so a resume that runs while
                    // this call is on its way to the wait still wakes it.
                    let kicks = commits.kicks
                    await commits.wait(until: .init(Int64.max), timeout: configuration.heartbeatInterval, unlessKickedSince: kicks)
                    continue
                }
            }
            do {
                // The batch is applied from the checkpoint it was loaded for; a replay that moves
                // the checkpoint while we await discards it.
                let base = checkpoint.position
                // A batch promised to a preparing store keeps its size.
                let limit = promised ?? batches.current
                promised = nil
                // Only the events the projection handles are read whole; `through` is where the
                // range ends, whichever events were there.
                var range = caughtUp ? OutboxRange(events: [], through: nil, count: 0) : try await load(after: base, limit: limit)
                caughtUp = false
                guard checkpoint.position == base else { continue }
                guard let last = range.through else {
                    state = .idle
                    metrics.lag(events: 0, seconds: 0)
                    let woken = await commits.wait(
                        until: base.next, timeout: min(configuration.idleWait, configuration.heartbeatInterval), unlessKickedSince: commits.kicks)
                    // Nothing new for a while: another process (`canon replay`, a server that does
                    // not run this agent) may have moved the stored checkpoint back.
                    if !woken, checkpoint.position == base, let stored = try? await store.checkpoint(), stored.position != base {
                        logger.info("checkpoint moved by another process; following it", metadata: ["outbox.position": "\(stored.position)"])
                        checkpoint = stored
                        applied.reset(to: stored.position)
                    }
                    continue
                }
                state = .catchingUp
                // (Taken out of the range, so that only `events` holds them when they are freed.)
                let events = range.events
                range.events = []
                // A cut that kept no included event holds the whole prefetched range: more than asked.
                let full = range.count >= limit
                if full {
                    if let preparing = store as? any PreparingProjectionStore {
                        // The next batch is promised to the store at the current size: load just that.
                        prefetch.start(after: last.position, limit: batches.current, from: source)
                        if let upcoming = prefetch.peek(after: last.position, limit: batches.current) {
                            preparing.expect(upcoming, after: last.position)
                            promised = batches.current
                        }
                    } else {
                        // As many as the next batch may hold if this one is quick; `load` keeps what
                        // the sizer allows once it is known.
                        prefetch.start(after: last.position, limit: batches.ahead, from: source)
                    }
                }
                let started = ContinuousClock.now
                try await applyWithRetry(events, from: base, to: last)
                // Freed off this loop (see `BlockingWork.release`): the next batch goes on now.
                if events.count >= Self.releaseElsewhere { BlockingWork.release(events) }
                if lastError != nil { batches.reset() } else { batches.record(full: full, took: ContinuousClock.now - started) }
                if !full, configuration.linger > .zero { try await Task.sleep(for: configuration.linger) }
                // A partial batch reached the outbox's head as of its load: unless a commit was
                // announced since, the next load would come back empty, so wait for one instead.
                caughtUp = !full && commits.reached <= checkpoint.position
            } catch is CancellationError {
                break
            } catch let error as ProjectionError where error.code == .checkpointConflict {
                promised = nil
                logger.warning("checkpoint moved under the agent; reloading", metadata: ["error": "\(error)"])
                checkpoint = (try? await store.checkpoint()) ?? checkpoint
                applied.advance(to: checkpoint.position)
            } catch {
                promised = nil
                record(error: error)
                logger.error("projection agent error", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: configuration.failurePolicy.backoff(attempt: 1, random: &random))
            }
        }
        prefetch.cancel()
        state = .stopped
        try? await store.recordHeartbeat(AgentHeartbeat(at: clock(), state: .stopped, lastError: lastError, owner: configuration.owner))
        signalActivity()
    }

    /// Moves the checkpoint back for a replay and wakes the agent.
    public func replay(from position: OutboxPosition) async throws {
        try await store.rewind(to: position)
        caughtUp = false
        promised = nil
        checkpoint = try await store.checkpoint()
        applied.reset(to: checkpoint.position)
        commits.kick()
    }

    // MARK: - Applying

    /// Batches of at least this many events are freed on another thread.
    static let releaseElsewhere = 1_000

    private func applyWithRetry(_ events: [EventEnvelope], from base: OutboxPosition, to target: Checkpoint) async throws {
        let policy = configuration.failurePolicy
        var attempt = 0
        var outages = 0
        let firstFailure = clock()
        while true {
            attempt += 1
            let started = ContinuousClock.now
            do {
                try await store.apply(events, from: base, to: target)
                metrics.applied(events.count, duration: ContinuousClock.now - started)
                advance(from: base, to: target)
                if lastError != nil && state != .paused { lastError = nil }
                await reportLag()
                return
            } catch let error as ProjectionError where error.code == .checkpointConflict {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                metrics.failed()
                record(error: error)
                // Contention (a lock, a deadlock) and an outage of the store (it does not answer
                // even a read of its checkpoint) say nothing against these events: they do not
                // count toward the failure policy, so an outage never parks sound events as
                // poison; the batch is retried, backing off, until the store answers. An "outage"
                // while the store does answer may be the batch's doing (a backend that crashes on
                // it, a transaction too large for the disk): that counts.
                let transient: Bool = switch ProjectionError.transience(of: error) {
                case .contention: true
                case .outage: await !storeAnswers()
                case nil: false
                }
                if transient {
                    outages += 1
                    attempt -= 1
                }
                // A range with no event the projection handles has no poison event to park: its
                // failure is the store's, retried until it passes (the agent shows `retrying`,
                // with the error, in status and metrics meanwhile).
                if transient || attempt < policy.maxAttempts || events.isEmpty {
                    state = .retrying
                    logger.warning(transient ? "store unavailable; retrying" : "apply failed; retrying", metadata: [
                        "attempt": "\(transient ? outages : attempt)", "error": "\(error)", "outbox.position": "\(events.first?.position ?? target.position)",
                    ])
                    try await Task.sleep(for: policy.backoff(attempt: transient ? outages : attempt, random: &random))
                    await beat()
                    guard checkpoint.position == base else { return }
                    continue
                }
                if events.count > 1 {
                    // Split the batch so that the events before the poison one are applied, and
                    // only the poison event meets the failure policy.
                    var from = base
                    for event in events {
                        guard checkpoint.position == from else { return }
                        try await applyWithRetry([event], from: from, to: Checkpoint(position: event.position, committedAt: event.committedAt))
                        if state == .paused { return }
                        from = event.position
                    }
                    // The events of the range after the last one the projection handles.
                    if checkpoint.position == from, from < target.position { try await applyWithRetry([], from: from, to: target) }
                    return
                }
                try await exhausted(events[0], from: base, error: error, attempts: attempt, firstFailure: firstFailure)
                return
            }
        }
    }

    /// Whether the store answers a read of its checkpoint now.
    private func storeAnswers() async -> Bool {
        (try? await store.checkpoint()) != nil
    }

    private func exhausted(_ event: EventEnvelope, from base: OutboxPosition, error: any Error, attempts: Int, firstFailure: Date) async throws {
        switch configuration.failurePolicy.onExhausted {
        case .pause:
            state = .paused
            logger.error("projection paused on a poison event", metadata: ["outbox.position": "\(event.position)", "error": "\(error)"])
        case .deadLetter:
            let letter = DeadLetter(
                projection: identity, position: event.position, streamID: event.streamID, type: event.type, error: "\(error)",
                attempts: attempts, firstFailedAt: firstFailure, lastFailedAt: clock())
            let target = Checkpoint(position: event.position, committedAt: event.committedAt)
            try await store.park(letter, from: base, to: target)
            metrics.deadLettered()
            advance(from: base, to: target)
            logger.error("event parked in the dead-letter store", metadata: ["outbox.position": "\(event.position)", "error": "\(error)"])
        }
    }

    /// The range after `base`: the prefetched batch when it starts there, else a fresh load.
    private func load(after base: OutboxPosition, limit: Int) async throws -> OutboxRange {
        try await prefetch.take(after: base, limit: limit, from: source).value
    }

    /// Moves the in-memory checkpoint, unless a replay moved it while the batch was applied.
    private func advance(from base: OutboxPosition, to target: Checkpoint) {
        guard checkpoint.position == base else { return }
        checkpoint = target
        applied.advance(to: target.position)
    }

    /// Sets the lag metrics. The batch is applied by then: a failure to read the canonical
    /// head (say the canonical store is unreachable for a moment) leaves the last figures, and
    /// is not the batch's failure (it used to count as one, and could pause the projection on
    /// an event it had applied).
    private func reportLag() async {
        let head: OutboxPosition
        if commits.reached > checkpoint.position {
            head = commits.reached
        } else if let read = try? await source.headPosition() {
            head = read
        } else {
            return
        }
        let behind = max(0, head.rawValue - checkpoint.position.rawValue)
        let seconds = behind == 0 ? 0 : max(0, clock().timeIntervalSince(checkpoint.committedAt ?? clock()))
        metrics.lag(events: behind, seconds: seconds)
    }

    private func record(error: any Error) {
        lastError = "\(error)"
    }

    private func signalActivity() {
        turns += 1
        activity.advance(to: OutboxPosition(turns))
    }

    /// Called on every turn of the loop: records a heartbeat when one is due, or at once when the
    /// agent pauses, retries or leaves either (what status, and a resume from another process,
    /// read from the heartbeat), then signals activity. Idle and catching up alternate with every
    /// commit: those wait for the interval.
    private func beat() async {
        defer { signalActivity() }
        let now = clock()
        let interval = configuration.heartbeatInterval
        let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        let watched: Set<AgentState> = [.paused, .retrying]
        let changed = state != lastBeatState && (watched.contains(state) || lastBeatState.map(watched.contains) == true)
        guard changed || now.timeIntervalSince(lastBeat) >= seconds else { return }
        lastBeat = now
        lastBeatState = state
        do {
            try await store.recordHeartbeat(AgentHeartbeat(at: now, state: state, lastError: lastError, owner: configuration.owner))
        } catch is CancellationError where Task.isCancelled {
            // The agent is being stopped: nothing went wrong, and its next start beats again.
        } catch {
            logger.warning("cannot record heartbeat", metadata: ["error": "\(error)"])
        }
    }
}

/// The agent's metric objects, created once.
struct AgentMetrics: Sendable {
    let appliedEvents: Counter
    let applyDuration: Timer
    let errors: Counter
    let deadLetters: Counter
    let lagEvents: Gauge
    let lagSeconds: Gauge

    init(identity: ProjectionIdentity) {
        let dimensions = [("projection", identity.name), ("version", String(identity.version))]
        appliedEvents = Counter(label: "canon_projection_events_applied_total", dimensions: dimensions)
        applyDuration = Timer(label: "canon_projection_apply_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        errors = Counter(label: "canon_projection_errors_total", dimensions: dimensions)
        deadLetters = Counter(label: "canon_projection_dead_letters_total", dimensions: dimensions)
        lagEvents = Gauge(label: "canon_projection_lag_events", dimensions: dimensions)
        lagSeconds = Gauge(label: "canon_projection_lag_seconds", dimensions: dimensions)
    }

    func applied(_ count: Int, duration: Duration) {
        appliedEvents.increment(by: count)
        applyDuration.recordNanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    func failed() { errors.increment() }
    func deadLettered() { deadLetters.increment() }

    func lag(events: Int64, seconds: Double) {
        lagEvents.record(events)
        lagSeconds.record(seconds)
    }
}
