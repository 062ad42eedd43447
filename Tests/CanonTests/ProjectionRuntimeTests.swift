import Canon
import CanonTesting
import CasePlatform
import Foundation
import Synchronization
import Testing

/// The projection runtime on every engine (real SQLite files, a real PostgreSQL server), from one
/// suite: checkpoints, idempotency, failure policy, dead letters, ordering and liveness.
@Suite("Projection runtime")
struct ProjectionRuntimeTests {
    static let investigator = User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2)
    static let fastRetries = FailurePolicy(maxAttempts: 3, onExhausted: .deadLetter, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(5))

    /// A canonical store of `engine`, with the investigator registered.
    struct Canonical {
        let engine: ProjectionEngine
        let scratch: TemporaryDirectory
        let canonical: any CanonicalStore
        let commits = PositionWaiters()
        var store: SignallingCanonicalStore { SignallingCanonicalStore(canonical, commits: commits) }
        var commands: CaseCommands { CaseCommands(store: store) }

        init(_ engine: ProjectionEngine) async throws {
            self.engine = engine
            scratch = try TemporaryDirectory(prefix: "canon-runtime")
            canonical = try await engine.canonical(in: scratch)
            _ = try await CaseCommands(store: canonical).registerUser(ProjectionRuntimeTests.investigator)
        }

        func openCase(_ title: String = "Case") async throws -> CaseCommands.Outcome {
            try await commands.openCase(OpenCaseRequest(title: title, summary: "s", sector: "energy", region: "north", priority: "low"), by: investigator)
        }

        func timeline(
            _ projection: any TimelineProjection = CaseTimelineProjection(), slot: String = UUID().uuidString, faults: FaultInjector? = nil
        ) async throws -> any TimelineStore {
            try await engine.timeline(in: scratch, slot: slot, projection, faults: faults)
        }

        /// Runs an agent for `store` with short waits and `failurePolicy`; cancel the task to stop it.
        func runAgent(_ store: any ProjectionStore, failurePolicy: FailurePolicy, heartbeatInterval: Duration = .milliseconds(50)) -> (ProjectionAgent, Task<Void, Never>) {
            let agent = ProjectionAgent(
                store: store, source: self.store, commits: commits,
                configuration: .init(batchSize: 50, idleWait: .milliseconds(50), heartbeatInterval: heartbeatInterval, failurePolicy: failurePolicy))
            return (agent, Task { await agent.run() })
        }
    }

    /// Waits until `condition` holds, re-checked on every turn of `agent`'s loop; fails after `timeout`.
    static func eventually(
        _ what: String, on agent: ProjectionAgent, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool
    ) async throws {
        if try await waitUntil(wakingOn: agent.activity, timeout: timeout, condition) { return }
        Issue.record("timed out waiting until \(what)")
        throw CancellationError()
    }

    static func applyAll(_ store: any ProjectionStore, from source: any CanonicalStore) async throws {
        while true {
            let checkpoint = try await store.checkpoint()
            let events = try await source.events(after: checkpoint.position, limit: 100)
            guard let last = events.last else { return }
            try await store.apply(events, from: checkpoint.position, to: Checkpoint(position: last.position, committedAt: last.committedAt))
        }
    }

    @Test(arguments: ProjectionEngine.all)
    func applyingTheSameEventsTwiceLeavesTheSameState(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        let opened = try await canonical.openCase()
        _ = try await canonical.commands.transition(opened.id, TransitionRequest(to: "triage", reason: "r"), by: Self.investigator)
        let timeline = try await canonical.timeline()
        try await Self.applyAll(timeline, from: canonical.canonical)
        let first = try await timeline.entries(key: opened.id, limit: 100)
        try await timeline.rewind(to: .start)
        try await Self.applyAll(timeline, from: canonical.canonical)
        #expect(try await timeline.entries(key: opened.id, limit: 100) == first)
        #expect(first.map(\.kind) == ["opened", "transition"])
    }

    @Test(arguments: ProjectionEngine.all)
    func aCrashBetweenWritesAndCheckpointLeavesNoDuplicateAfterRestart(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        let opened = try await canonical.openCase()
        let faults = FaultSwitch()
        let crashing = try await canonical.timeline(slot: "crashing", faults: faults.injector)
        faults.arm(.beforeCommit)
        let events = try await canonical.canonical.events(after: .start, limit: 100)
        let target = Checkpoint(position: events.last!.position, committedAt: events.last!.committedAt)
        await #expect { try await crashing.apply(events, from: .start, to: target) } throws: { error in
            (error as? CanonicalStoreError)?.code == .injectedFault
        }
        #expect(try await crashing.checkpoint().position == .start, "checkpoint did not move")
        #expect(try await crashing.entries(key: opened.id, limit: 10).isEmpty, "the writes rolled back with it")

        let restarted = try await canonical.timeline(slot: "crashing")
        try await Self.applyAll(restarted, from: canonical.canonical)
        try await Self.applyAll(restarted, from: canonical.canonical)
        #expect(try await restarted.entries(key: opened.id, limit: 10).count == 1)
        #expect(try await restarted.checkpoint().position == target.position)
    }

    @Test(arguments: ProjectionEngine.all)
    func aStaleCheckpointIsATypedConflictAndWritesNothing(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        let opened = try await canonical.openCase()
        let timeline = try await canonical.timeline()
        try await Self.applyAll(timeline, from: canonical.canonical)
        let events = try await canonical.canonical.events(after: .start, limit: 100)
        try await timeline.rewind(to: .start)
        try await Self.applyAll(timeline, from: canonical.canonical)
        await #expect {
            try await timeline.apply(events, from: OutboxPosition(1), to: Checkpoint(position: events.last!.position, committedAt: nil))
        } throws: { error in
            (error as? ProjectionError)?.code == .checkpointConflict
        }
        #expect(try await timeline.entries(key: opened.id, limit: 10).count == 1)
    }

    @Test(arguments: ProjectionEngine.all)
    func aPoisonEventIsDeadLetteredWhileLaterEventsApplyAndRetriesOnceFixed(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        let poisoned = FlakyTimeline()
        let timeline = try await canonical.timeline(poisoned)
        let (agent, running) = canonical.runAgent(timeline, failurePolicy: Self.fastRetries)
        defer { running.cancel() }

        let first = try await canonical.openCase("First")
        poisoned.fail(caseID: first.id, type: CaseEvents.caseStatusChanged)
        let poison = try await canonical.commands.transition(first.id, TransitionRequest(to: "triage", reason: "r"), by: Self.investigator)
        let sameStream = try await canonical.commands.addEvidence(
            first.id, AddEvidenceRequest(title: "E", description: "", mediaType: "text/plain", sizeBytes: 1, sha256: String(repeating: "d", count: 64)),
            by: Self.investigator)
        let otherStream = try await canonical.openCase("Second")
        try await Self.eventually("the agent passes the poison event", on: agent) { try await timeline.checkpoint().position >= otherStream.position }

        let letters = try await timeline.deadLetters()
        #expect(letters.count == 1)
        #expect(letters.first?.position == poison.position)
        #expect(letters.first?.attempts == 3)
        #expect(letters.first?.state == .parked)
        #expect(letters.first?.type == CaseEvents.caseStatusChanged)
        #expect(try await timeline.entries(key: first.id, limit: 10).map(\.position) == [first.position, sameStream.position])
        #expect(try await timeline.entries(key: otherStream.id, limit: 10).count == 1)

        poisoned.heal()
        _ = try await DeadLetterOperations.retry(position: poison.position, in: timeline, source: canonical.store)
        let entries = try await timeline.entries(key: first.id, limit: 10)
        #expect(entries.map(\.position) == [first.position, poison.position, sameStream.position], "applied once, in stream order")
        #expect(try await timeline.deadLetters().first?.state == .retried)
    }

    /// An outage of the store (here: every commit fails as if the server were restarting, more
    /// times than the failure policy allows attempts) is not the events' fault: the agent keeps
    /// retrying, parks nothing, and applies every event once when the store answers again.
    @Test(arguments: ProjectionEngine.all)
    func anOutageOfTheStoreIsRetriedWithoutParkingAnyEvent(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        let outage = Mutex(8)
        let timeline = try await canonical.timeline(faults: { point in
            guard point == .beforeCommit else { return }
            let failing = outage.withLock { remaining in
                defer { remaining = max(0, remaining - 1) }
                return remaining > 0
            }
            if failing { throw CanonicalStoreError.unavailable("the server is restarting (injected)") }
        })
        let (agent, running) = canonical.runAgent(timeline, failurePolicy: Self.fastRetries)
        defer { running.cancel() }

        let opened = try await canonical.openCase("Through the outage")
        let moved = try await canonical.commands.transition(opened.id, TransitionRequest(to: "triage", reason: "r"), by: Self.investigator)
        // Eight failed commits, each retried after a backoff: on a loaded machine (the whole
        // suite in parallel on two cores) the turns come seconds apart, so a longer deadline.
        try await Self.eventually("the agent applies past the outage", on: agent, timeout: .seconds(90)) {
            try await timeline.checkpoint().position >= moved.position
        }

        #expect(outage.withLock { $0 } == 0, "every injected failure was met")
        #expect(try await timeline.deadLetters().isEmpty, "an outage parks nothing")
        #expect(try await timeline.entries(key: opened.id, limit: 10).map(\.position) == [opened.position, moved.position])
        #expect(await agent.snapshot().lastError == nil)
    }

    /// A batch applied is applied: when the read of the canonical head for the lag metrics
    /// fails afterwards (the canonical store unreachable for a moment), the agent neither retries
    /// nor pauses on the event it applied. (It paused here: one attempt allowed, the pause policy.)
    @Test func aFailedLagReadAfterAnApplyIsNotTheBatchsFailure() async throws {
        let canonical = try await Canonical(.sqlite)
        let timeline = try await canonical.timeline()
        let headless = HeadlessSource(canonical.store)
        let agent = ProjectionAgent(
            store: timeline, source: headless, commits: canonical.commits,
            configuration: .init(
                batchSize: 50, idleWait: .milliseconds(50), heartbeatInterval: .milliseconds(50),
                failurePolicy: FailurePolicy(maxAttempts: 1, onExhausted: .pause, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(5))))
        let running = Task { await agent.run() }
        defer { running.cancel() }

        let opened = try await canonical.openCase()
        try await Self.eventually("the opening is applied and the agent idle", on: agent) {
            let state = await agent.snapshot().state
            return try await timeline.checkpoint().position == opened.position && state == .idle
        }
        #expect(headless.failedReads.load(ordering: .relaxed) > 0, "the head was read, and the read failed")
        #expect(await agent.snapshot().lastError == nil)
        #expect(try await timeline.entries(key: opened.id, limit: 10).count == 1)
    }

    /// A version made live (a blue-green switch) under leases runs its agent only while this
    /// process holds the projection's lease. `makeLive` used to start the new agent bare and stop
    /// the loop that held the lease, which gave the lease up: another process could then take it
    /// and run a second agent beside this one.
    @Test func aVersionMadeLiveUnderLeasesRunsOnlyWhileTheLeaseIsHeld() async throws {
        let canonical = try await Canonical(.sqlite)
        let leases = CountingLeases()
        let first = LeaseCheckingStore(try await canonical.timeline(slot: "v1"), leases: leases)
        let coordinator = ProjectionCoordinator(
            source: canonical.store, commits: canonical.commits, stores: [first],
            configuration: .init(
                agent: .init(idleWait: .milliseconds(50), heartbeatInterval: .milliseconds(50)), leases: leases, leaseInterval: .milliseconds(20)))
        let running = Task { try await coordinator.run() }
        defer { running.cancel() }
        let opened = try await canonical.openCase()
        #expect(try await coordinator.waitUntilApplied("case-timeline", position: opened.position, timeout: .seconds(20)))

        let second = LeaseCheckingStore(try await canonical.timeline(slot: "v2"), leases: leases)
        await coordinator.makeLive(second)
        let later = try await canonical.openCase("After the switch")
        #expect(try await coordinator.waitUntilApplied("case-timeline", position: later.position, timeout: .seconds(20)))
        #expect(try await second.checkpoint().position == later.position, "the new version's agent applied it")
        #expect(first.unleasedApplies == 0 && second.unleasedApplies == 0, "every batch was applied under the lease")
        #expect(await leases.acquired >= 2, "the new version's agent took the lease again")
    }

    /// A projection whose checkpoint is past the canonical head was built from another
    /// canonical store (this one replaced, or restored from an older backup): the agent pauses
    /// and says so, instead of skipping every new write up to its checkpoint.
    @Test func aProjectionAheadOfTheCanonicalStorePausesAndSaysWhy() async throws {
        let original = try await Canonical(.sqlite)
        _ = try await original.openCase("One")
        _ = try await original.openCase("Two")
        let timeline = try await original.timeline(slot: "kept")
        try await Self.applyAll(timeline, from: original.canonical)
        let built = try await timeline.checkpoint().position
        // A new, emptier canonical store under the same projection.
        let replaced = try await Canonical(.sqlite)
        #expect(try await replaced.canonical.headPosition() < built)
        let agent = ProjectionAgent(
            store: timeline, source: replaced.store, commits: replaced.commits,
            configuration: .init(batchSize: 50, idleWait: .milliseconds(50), heartbeatInterval: .milliseconds(50), failurePolicy: Self.fastRetries))
        let running = Task { await agent.run() }
        defer { running.cancel() }
        try await Self.eventually("the agent pauses", on: agent) { await agent.snapshot().state == .paused }
        #expect(await agent.snapshot().lastError?.contains("past the canonical store's head") == true)
        _ = try await replaced.openCase("Written after the swap")
        #expect(try await timeline.checkpoint().position == built, "nothing was applied from the other store")
    }

    /// An agent that lost its lease writes a last `stopped` beat as it stops, maybe after the new
    /// holder's first: it must not hide the new holder's state (status would say the projection
    /// is stopped, and a resume would be refused as "not paused"). Its own stop still shows.
    @Test(arguments: ProjectionEngine.all)
    func aFormerOwnersStopDoesNotHideTheNewHolder(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        let timeline = try await canonical.timeline()
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        try await timeline.recordHeartbeat(AgentHeartbeat(at: at, state: .idle, lastError: nil, owner: "worker-a"))
        try await timeline.recordHeartbeat(AgentHeartbeat(at: at + 1, state: .catchingUp, lastError: nil, owner: "worker-b"))
        try await timeline.recordHeartbeat(AgentHeartbeat(at: at + 2, state: .stopped, lastError: nil, owner: "worker-a"))
        let kept = try #require(try await timeline.heartbeat())
        #expect(kept.owner == "worker-b" && kept.state == .catchingUp)
        try await timeline.recordHeartbeat(AgentHeartbeat(at: at + 3, state: .stopped, lastError: "shut down", owner: "worker-b"))
        let stopped = try #require(try await timeline.heartbeat())
        #expect(stopped.owner == "worker-b" && stopped.state == .stopped && stopped.lastError == "shut down")
        // Any state but `stopped` from another owner is a new holder's: it is recorded.
        try await timeline.recordHeartbeat(AgentHeartbeat(at: at + 4, state: .starting, lastError: nil, owner: "worker-a"))
        #expect(try await timeline.heartbeat()?.owner == "worker-a")
    }

    /// A resume kicks the agent's waiters from the agent's actor, which the agent has left on its
    /// way to the wait: a kick that lands before the waiter registers must still wake it (it was
    /// lost, and the agent slept its whole heartbeat interval).
    @Test(.timeLimit(.minutes(1)))
    func aKickBetweenDecidingToWaitAndWaitingIsNotLost() async {
        let waiters = PositionWaiters()
        let kicks = waiters.kicks
        waiters.kick()
        #expect(waiters.kicks == kicks + 1)
        // Returns at once (a lost kick would sleep an hour, past the time limit); not reached.
        #expect(await waiters.wait(until: OutboxPosition(Int64.max), timeout: .seconds(3600), unlessKickedSince: kicks) == false)
        // Without a kick since, the wait runs to its deadline.
        let clock = ContinuousClock()
        let started = clock.now
        #expect(await waiters.wait(until: OutboxPosition(Int64.max), timeout: .milliseconds(50), unlessKickedSince: waiters.kicks) == false)
        #expect(clock.now - started >= .milliseconds(50))
    }

    /// The same number of failures that say something about the data parks the event: the
    /// difference is the error's kind, not its count.
    @Test func transientAndDataErrorsAreToldApart() {
        #expect(ProjectionError.transience(of: CanonicalStoreError.unavailable("x")) == .outage)
        #expect(ProjectionError.transience(of: CanonicalStoreError.contended("x")) == .contention)
        #expect(ProjectionError.transience(of: ProjectionError.unavailable("x")) == .outage)
        #expect(ProjectionError.transience(of: ProjectionError.storage("x", from: .contended("x"))) == .contention)
        #expect(ProjectionError.transience(of: ProjectionError.storage("x", from: .storage("x"))) == nil)
        #expect(ProjectionError.transience(of: CanonicalStoreError.constraintViolation("x")) == nil)
        #expect(ProjectionError.transience(of: FlakyTimeline.Poison()) == nil)
    }

    @Test(arguments: ProjectionEngine.all)
    func thePausePolicyStopsAtThePoisonEventUntilResumed(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        let poisoned = FlakyTimeline()
        let timeline = try await canonical.timeline(poisoned)
        var policy = Self.fastRetries
        policy.onExhausted = .pause
        let (agent, running) = canonical.runAgent(timeline, failurePolicy: policy)
        defer { running.cancel() }

        let first = try await canonical.openCase()
        try await Self.eventually("the opening is applied", on: agent) { try await timeline.checkpoint().position == first.position }
        poisoned.fail(caseID: first.id, type: CaseEvents.caseStatusChanged)
        _ = try await canonical.commands.transition(first.id, TransitionRequest(to: "triage", reason: "r"), by: Self.investigator)
        let later = try await canonical.openCase()
        try await Self.eventually("the agent pauses", on: agent) { await agent.snapshot().state == .paused }
        #expect(try await timeline.checkpoint().position == first.position)
        #expect(try await timeline.deadLetters().isEmpty)

        poisoned.heal()
        await agent.resume()
        try await Self.eventually("the agent catches up after resume", on: agent) { try await timeline.checkpoint().position == later.position }
        #expect(try await timeline.entries(key: first.id, limit: 10).count == 2)
    }

    /// The heartbeat says "paused" as soon as the agent pauses, and "catching up" as soon as it
    /// resumes, however long its interval: another process's status and resume read it (a resume
    /// sent right after a pause was refused as "not paused" until the next beat).
    @Test(arguments: ProjectionEngine.all)
    func aPauseAndAResumeReachTheHeartbeatAtOnce(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        let poisoned = FlakyTimeline()
        let timeline = try await canonical.timeline(poisoned)
        var policy = Self.fastRetries
        policy.onExhausted = .pause
        let (agent, running) = canonical.runAgent(timeline, failurePolicy: policy, heartbeatInterval: .seconds(3600))
        defer { running.cancel() }

        let first = try await canonical.openCase()
        try await Self.eventually("the opening is applied", on: agent) { try await timeline.checkpoint().position == first.position }
        poisoned.fail(caseID: first.id, type: CaseEvents.caseStatusChanged)
        _ = try await canonical.commands.transition(first.id, TransitionRequest(to: "triage", reason: "r"), by: Self.investigator)
        try await Self.eventually("the heartbeat says paused", on: agent) { try await timeline.heartbeat()?.state == .paused }
        #expect(await agent.snapshot().state == .paused)

        poisoned.heal()
        await agent.resume()
        try await Self.eventually("the heartbeat leaves paused", on: agent) { try await timeline.heartbeat()?.state != .paused }
    }

    /// A backlog is applied in batches that grow while they apply quickly (a batch far quicker
    /// than the target, up to 8 times at once), up to the cap; a projection whose batches take
    /// longer than the target keeps them at the configured size.
    @Test(arguments: ProjectionEngine.all)
    func aBacklogIsAppliedInBatchesThatGrowToTheCapUnlessTheyAreSlow(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        for index in 0..<60 { _ = try await canonical.openCase("Backlog \(index)") }
        let head = try await canonical.canonical.headPosition()
        for (target, expectedMaximum) in [(Duration.seconds(60), 16), (Duration.zero, 4)] {
            let recorder = BatchRecorder(try await canonical.timeline())
            let agent = ProjectionAgent(
                store: recorder, source: canonical.store, commits: canonical.commits,
                configuration: .init(batchSize: 4, maxBatchSize: 16, batchTarget: target, idleWait: .milliseconds(50), heartbeatInterval: .milliseconds(50)))
            let running = Task { await agent.run() }
            #expect(await agent.applied.wait(until: head, timeout: .seconds(20)))
            running.cancel()
            await running.value
            let sizes = recorder.sizes
            #expect(Int64(sizes.reduce(0, +)) == head.rawValue, "every event applied once: \(sizes)")
            #expect(sizes.max() == expectedMaximum, "batch target \(target): \(sizes)")
            if expectedMaximum == 16 { #expect(Array(sizes.prefix(3)) == [4, 16, 16], "\(sizes)") }
        }
    }

    /// An agent reads whole only the events its projection selects; the others still move its
    /// checkpoint, also when a batch ends with them or holds nothing else.
    @Test(arguments: ProjectionEngine.all)
    func anAgentIsGivenOnlyTheEventsItsProjectionSelectsAndStillReachesTheHead(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        let party = try await canonical.commands.registerParty(RegisterPartyRequest(kind: "organisation", name: "Acme"), by: Self.investigator)
        let opened = try await canonical.openCase()
        _ = try await canonical.commands.linkParty(opened.id, LinkPartyRequest(partyID: party.id, role: "subject"), by: Self.investigator)
        // Cases between runs of parties: batches holding no case event, ranges cut and topped
        // up where the prefetch read ahead of a batch; and the outbox ends with such events.
        for index in 0..<12 {
            for other in 0..<(index % 4) { _ = try await canonical.commands.registerParty(RegisterPartyRequest(kind: "person", name: "P\(index)-\(other)"), by: Self.investigator) }
            _ = try await canonical.openCase("Case \(index)")
        }
        for index in 0..<9 { _ = try await canonical.commands.registerParty(RegisterPartyRequest(kind: "person", name: "Q\(index)"), by: Self.investigator) }
        let head = try await canonical.canonical.headPosition()
        let all = try await canonical.canonical.events(after: .start, limit: 1_000)
        let selection = CaseTimelineProjection().selection
        let selected = all.filter { $0.streamID.rawValue.hasPrefix("case-") }
        #expect(selected.count == 14 && all.count == Int(head.rawValue))

        // The source: a range's included events, and where it ends whatever was there.
        let range = try await canonical.canonical.events(after: .start, limit: 1_000, selecting: selection)
        #expect(range.events == selected)
        #expect(range.count == all.count && range.through?.position == head && range.through?.committedAt == all.last?.committedAt)
        let firstFour = try await canonical.canonical.events(after: .start, limit: 4, selecting: EventSelection(types: [CaseEvents.caseOpened]))
        #expect(firstFour.events.map(\.type) == [CaseEvents.caseOpened] && firstFour.count == 4 && firstFour.through?.position == all[3].position)

        // Batches of 4, and batches that grow to 16 (the prefetch reads twice a batch ahead).
        for maxBatchSize in [4, 16] {
            let timeline = try await canonical.timeline()
            let recorder = BatchRecorder(timeline)
            #expect(recorder.selection == selection)
            let agent = ProjectionAgent(
                store: recorder, source: canonical.store, commits: canonical.commits,
                configuration: .init(batchSize: 4, maxBatchSize: maxBatchSize, batchTarget: .seconds(60), idleWait: .milliseconds(50), heartbeatInterval: .milliseconds(50)))
            let running = Task { await agent.run() }
            #expect(await agent.applied.wait(until: head, timeout: .seconds(20)))
            running.cancel()
            await running.value
            #expect(try await recorder.checkpoint().position == head)
            #expect(recorder.events == selected, "only the cases' events reach the store, each once (batches up to \(maxBatchSize))")
            #expect(recorder.sizes.reduce(0, +) == all.count, "\(recorder.sizes)")
            #expect(try await timeline.entries(key: opened.id, limit: 10).map(\.kind) == ["opened", "party"])
            if maxBatchSize == 16 { #expect(recorder.sizes.contains { $0 > 4 }, "the batches grew: \(recorder.sizes)") }
        }

        // A rebuild reads the same way, in chunks that grow.
        let live = try await canonical.timeline()
        try await Self.applyAll(live, from: canonical.store)
        let next = BatchRecorder(try await canonical.timeline())
        let report = try await ProjectionRebuild(source: canonical.store, live: live, next: next, chunkSize: 4, maxChunkSize: 16, chunkTarget: .seconds(60)).run()
        #expect(report.matches)
        #expect(next.events == selected && next.sizes.reduce(0, +) == all.count, "\(next.sizes)")
    }

    /// A lingering agent waits after a partial batch, so the commits that arrive meanwhile are
    /// applied in one transaction instead of one each.
    @Test(arguments: ProjectionEngine.all)
    func aLingeringAgentAppliesTheCommitsOfItsLingerInOneBatch(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        let registered = try await canonical.canonical.headPosition()
        let recorder = BatchRecorder(try await canonical.timeline())
        let agent = ProjectionAgent(
            store: recorder, source: canonical.store, commits: canonical.commits,
            configuration: .init(linger: .seconds(3), idleWait: .milliseconds(50), heartbeatInterval: .milliseconds(50)))
        let running = Task { await agent.run() }
        defer { running.cancel() }
        // The first batch (the user's registration) is partial: the agent now lingers.
        #expect(await agent.applied.wait(until: registered, timeout: .seconds(20)))
        for index in 0..<5 { _ = try await canonical.openCase("During the linger \(index)") }
        let head = try await canonical.canonical.headPosition()
        #expect(await agent.applied.wait(until: head, timeout: .seconds(20)))
        #expect(recorder.sizes == [Int(registered.rawValue), 5], "\(recorder.sizes)")
    }

    /// A rebuild's chunks grow the same way, and the built version matches the live one.
    @Test(arguments: ProjectionEngine.all)
    func aRebuildCommitsChunksThatGrowToTheCap(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        for index in 0..<60 { _ = try await canonical.openCase("Backlog \(index)") }
        let live = try await canonical.timeline()
        try await Self.applyAll(live, from: canonical.store)
        let next = BatchRecorder(try await canonical.timeline())
        let report = try await ProjectionRebuild(
            source: canonical.store, live: live, next: next, chunkSize: 4, maxChunkSize: 16, chunkTarget: .seconds(60)
        ).run()
        #expect(report.matches)
        let sizes = next.sizes
        #expect(Array(sizes.prefix(3)) == [4, 16, 16], "\(sizes)")
        #expect(sizes.max() == 16)
        #expect(Int64(sizes.reduce(0, +)) == (try await canonical.canonical.headPosition()).rawValue)
    }

    @Test(arguments: ProjectionEngine.all)
    func perStreamOrderHoldsUnderSmallBatchesAndConcurrentWriters(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        let timeline = try await canonical.timeline()
        let search = try await engine.search(in: canonical.scratch)
        let coordinator = ProjectionCoordinator(
            source: canonical.store, commits: canonical.commits, stores: [timeline, search],
            configuration: .init(agent: .init(batchSize: 7, maxBatchSize: 7, idleWait: .milliseconds(50), heartbeatInterval: .milliseconds(50))))
        let agents = Task { try await coordinator.run() }
        defer { agents.cancel() }
        let commands = canonical.commands
        let sha = String(repeating: "c", count: 64)
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for writer in 0..<6 {
                group.addTask {
                    let id = try await commands.openCase(
                        OpenCaseRequest(title: "Writer \(writer)", summary: "", sector: "energy", region: "north", priority: "low"), by: Self.investigator).id
                    for status in ["triage", "investigation", "enforcement"] {
                        _ = try await commands.transition(id, TransitionRequest(to: status, reason: "step"), by: Self.investigator)
                        _ = try await commands.addEvidence(id, AddEvidenceRequest(title: "E", description: "", mediaType: "text/plain", sizeBytes: 1, sha256: sha), by: Self.investigator)
                    }
                    return id
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        let head = try await canonical.canonical.headPosition()
        #expect(try await coordinator.waitUntilApplied("case-timeline", position: head, timeout: .seconds(20)))
        #expect(try await coordinator.waitUntilApplied("case-search", position: head, timeout: .seconds(20)))
        for id in ids {
            let stream = try await canonical.canonical.events(in: Case.streamID(id), through: head)
            let entries = try await timeline.entries(key: id, limit: 100)
            #expect(entries.map(\.position) == stream.map(\.position), "timeline of \(id) follows its stream's order")
            let document = try #require(try await search.document(id))
            #expect(document.facets["status"] == "enforcement")
            let display = try JSONDecoder.canon.decode(CaseSearchProjection.Display.self, from: document.display)
            #expect(display.version == stream.last?.streamVersion)
        }
    }

    @Test(arguments: ProjectionEngine.all)
    func aStalledAgentIsReportedStalledWithinItsHeartbeatWindow(_ engine: ProjectionEngine) async throws {
        let canonical = try await Canonical(engine)
        let gate = GatedStore(try await canonical.timeline())
        let agent = ProjectionAgent(
            store: gate, source: canonical.store, commits: canonical.commits,
            configuration: .init(batchSize: 50, idleWait: .milliseconds(20), heartbeatInterval: .milliseconds(50)))
        let running = Task { await agent.run() }
        defer { running.cancel() }
        // Wide enough that a loaded machine (other suites run at once) still beats within it.
        let window = Duration.milliseconds(1_500)

        let first = try await canonical.openCase()
        // Before and after the blocked stretch the real clock is read, with a window no loaded
        // machine misses; the window itself is tested at explicit clock times below.
        try await Self.eventually("the agent is idle and beating", on: agent) {
            let status = try await ProjectionStatus.read(gate, source: canonical.store, stallAfter: .seconds(60), live: await agent.snapshot())
            return status.position == first.position && status.state == "idle" && !status.stalled
        }
        gate.close()
        _ = try await canonical.openCase()
        // The agent is now blocked inside apply and stops beating. Status is read at the clock
        // times that matter instead of waiting for them to pass.
        #expect(await gate.entered.wait(until: OutboxPosition(1), timeout: .seconds(10)), "the agent reaches the blocked apply")
        let lastBeat = try #require(try await gate.heartbeat()).at
        let within = try await ProjectionStatus.read(
            gate, source: canonical.store, stallAfter: window, now: lastBeat.addingTimeInterval(1.0), live: await agent.snapshot())
        #expect(!within.stalled, "inside its heartbeat window an agent is not stalled")
        let past = try await ProjectionStatus.read(
            gate, source: canonical.store, stallAfter: window, now: lastBeat.addingTimeInterval(1.6), live: await agent.snapshot())
        #expect(past.stalled && past.state == "stalled", "past its heartbeat window a blocked agent is reported stalled")
        gate.open()
        try await Self.eventually("the agent recovers", on: agent) {
            let status = try await ProjectionStatus.read(gate, source: canonical.store, stallAfter: .seconds(60), live: await agent.snapshot())
            return !status.stalled && status.lagEvents == 0
        }
    }
}

extension JSONDecoder {
    static var canon: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = Timestamp.decodingStrategy
        return decoder
    }
}

/// The case timeline, failing on chosen positions until healed: a poison event that gets fixed.
/// A canonical store whose head cannot be read (every other call goes through).
final class HeadlessSource: CanonicalStoreWrapper {
    let base: any CanonicalStore
    let failedReads = Atomic<Int>(0)

    init(_ base: any CanonicalStore) { self.base = base }

    func headPosition() async throws -> OutboxPosition {
        failedReads.add(1, ordering: .relaxed)
        throw CanonicalStoreError.unavailable("the head cannot be read (injected)")
    }
}

final class FlakyTimeline: TimelineProjection, Sendable {
    let identity = ProjectionIdentity(name: "case-timeline", version: 1)
    private let failing = Mutex<Set<String>>([])
    private let base = CaseTimelineProjection()

    /// Fails every `type` event of case `caseID` until healed (set before the event commits, so
    /// the agent can never apply it first).
    func fail(caseID: String, type: String) { failing.withLock { _ = $0.insert("case-\(caseID)|\(type)") } }
    func heal() { failing.withLock { $0.removeAll() } }

    struct Poison: Error {}

    func entries(for event: EventEnvelope) throws -> [TimelineEntry] {
        if failing.withLock({ $0.contains("\(event.streamID)|\(event.type)") }) { throw Poison() }
        return try base.entries(for: event)
    }
}

/// A projection store whose `apply` can be held shut, to stall its agent.
final class GatedStore: ProjectionStoreWrapper, Sendable {
    let base: any ProjectionStore
    private let gate = Mutex<PositionWaiters?>(nil)

    init(_ base: any TimelineStore) { self.base = base }

    /// Moves to 1 when an apply reaches the closed gate.
    let entered = PositionWaiters()

    func close() { gate.withLock { $0 = PositionWaiters() } }

    func open() {
        let waiters = gate.withLock { current -> PositionWaiters? in
            defer { current = nil }
            return current
        }
        waiters?.advance(to: OutboxPosition(1))
    }

    func apply(_ events: [EventEnvelope], from: OutboxPosition, to: Checkpoint) async throws {
        if let waiters = gate.withLock({ $0 }) {
            entered.advance(to: OutboxPosition(1))
            await waiters.wait(until: OutboxPosition(1), timeout: .seconds(30))
        }
        try await base.apply(events, from: from, to: to)
    }

}

@Suite("Refold guards")
struct RefoldGuardTests {
    @Test(arguments: ProjectionEngine.all)
    func aRefoldForAnOlderCheckpointIsRefusedAndWritesNothing(_ engine: ProjectionEngine) async throws {
        let canonical = try await ProjectionRuntimeTests.Canonical(engine)
        let opened = try await canonical.openCase()
        let timeline = try await canonical.timeline()
        try await ProjectionRuntimeTests.applyAll(timeline, from: canonical.canonical)
        let stale = try await timeline.checkpoint().position
        _ = try await canonical.commands.transition(opened.id, TransitionRequest(to: "triage", reason: "r"), by: ProjectionRuntimeTests.investigator)
        try await ProjectionRuntimeTests.applyAll(timeline, from: canonical.canonical)
        let before = try await timeline.entries(key: opened.id, limit: 10)
        #expect(before.count == 2)
        let olderHistory = try await canonical.canonical.events(in: Case.streamID(opened.id), through: stale)
        await #expect {
            try await timeline.refold(stream: Case.streamID(opened.id), events: olderHistory, at: stale)
        } throws: { error in
            (error as? ProjectionError)?.code == .checkpointConflict
        }
        #expect(try await timeline.entries(key: opened.id, limit: 10) == before, "newer entries were not replaced by older state")
    }
}

@Suite("Failure policy per projection")
struct FailurePolicyPerProjectionTests {
    @Test(arguments: ProjectionEngine.all)
    func theCoordinatorAppliesEachProjectionsOwnPolicy(_ engine: ProjectionEngine) async throws {
        let canonical = try await ProjectionRuntimeTests.Canonical(engine)
        let poisoned = FlakyTimeline()
        let timeline = try await canonical.timeline(poisoned)
        var pause = ProjectionRuntimeTests.fastRetries
        pause.onExhausted = .pause
        let coordinator = ProjectionCoordinator(
            source: canonical.store, commits: canonical.commits, stores: [timeline],
            configuration: .init(
                agent: .init(idleWait: .milliseconds(50), heartbeatInterval: .milliseconds(50), failurePolicy: ProjectionRuntimeTests.fastRetries),
                failurePolicies: ["case-timeline": pause]))
        let running = Task { try await coordinator.run() }
        defer { running.cancel() }
        let opened = try await canonical.openCase()
        poisoned.fail(caseID: opened.id, type: CaseEvents.caseStatusChanged)
        _ = try await canonical.commands.transition(opened.id, TransitionRequest(to: "triage", reason: "r"), by: ProjectionRuntimeTests.investigator)
        let agent = try coordinator.agent(named: "case-timeline")
        try await ProjectionRuntimeTests.eventually("the timeline pauses, as its own policy says", on: agent) { await agent.snapshot().state == .paused }
        #expect(try await timeline.deadLetters().isEmpty, "the default policy (dead letter) was overridden")
        #expect(try await coordinator.statuses().first?.state == "paused")
    }
}

/// Records the size of every batch applied to the store it wraps (the range of the outbox it
/// covers, events its projection handles or not), and the events it was given.
final class BatchRecorder: ProjectionStoreWrapper, Sendable {
    let base: any ProjectionStore
    private let recorded = Mutex<(sizes: [Int], events: [EventEnvelope])>(([], []))

    init(_ base: any ProjectionStore) { self.base = base }

    var sizes: [Int] { recorded.withLock { $0.sizes } }
    var events: [EventEnvelope] { recorded.withLock { $0.events } }

    func apply(_ events: [EventEnvelope], from: OutboxPosition, to: Checkpoint) async throws {
        try await base.apply(events, from: from, to: to)
        recorded.withLock { $0.sizes.append(Int(to.position.rawValue - from.rawValue)); $0.events += events }
    }
}

/// Leases held in memory, one process's view: every lease is free to take.
actor CountingLeases: ProjectionLeases {
    private var held: Set<String> = []
    private(set) var acquired = 0

    func acquire(_ name: String) async -> Bool {
        if held.insert(name).inserted { acquired += 1 }
        return true
    }

    func stillHeld(_ name: String) async -> Bool { held.contains(name) }
    func release(_ name: String) async { held.remove(name) }
}

/// Counts the batches applied while the projection's lease was not held.
final class LeaseCheckingStore: ProjectionStoreWrapper, Sendable {
    let base: any ProjectionStore
    let leases: CountingLeases
    private let unleased = Mutex(0)

    init(_ base: any ProjectionStore, leases: CountingLeases) {
        self.base = base
        self.leases = leases
    }

    var unleasedApplies: Int { unleased.withLock { $0 } }

    func apply(_ events: [EventEnvelope], from: OutboxPosition, to: Checkpoint) async throws {
        if await !leases.stillHeld(identity.name) { unleased.withLock { $0 += 1 } }
        try await base.apply(events, from: from, to: to)
    }
}
