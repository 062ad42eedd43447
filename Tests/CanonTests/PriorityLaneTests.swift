@testable import Canon
import CanonTesting
import Foundation
import Logging
import Synchronization
import Testing

@Suite("Priority path")
struct PriorityLaneTests {
    /// A store that counts the priority path's reads of the outbox, and says when the head was
    /// first read (the lane starts from it).
    final class CountingReads: CanonicalStoreWrapper {
        let base: any CanonicalStore
        let reads = Mutex(0)
        let headRead = PositionWaiters()

        init(base: any CanonicalStore) { self.base = base }

        func priorityEvents(after position: OutboxPosition, through: OutboxPosition, limit: Int) async throws -> [EventEnvelope] {
            reads.withLock { $0 += 1 }
            return try await base.priorityEvents(after: position, through: through, limit: limit)
        }
        func headPosition() async throws -> OutboxPosition {
            headRead.advance(to: OutboxPosition(1))
            return try await base.headPosition()
        }
    }

    /// With commits that append priority events announced apart, the priority path reads the
    /// outbox only for those: forty ordinary commits cost it no read, a restriction one.
    /// Without the announcement (`priorityCommits` nil) it reads after every commit.
    @Test(arguments: [true, false])
    func thePriorityPathReadsTheOutboxOnlyForCommitsThatAnnouncePriorityEvents(_ announced: Bool) async throws {
        let counting = CountingReads(base: try InMemoryCanonicalStore(migrations: ConformanceSchema.migrations))
        let commits = PositionWaiters()
        let priorityCommits = announced ? PositionWaiters() : nil
        let store = SignallingCanonicalStore(counting, commits: commits, priorityCommits: priorityCommits)
        let applied = PositionWaiters()
        let handled = Mutex<[EventEnvelope]>([])
        let lane = PriorityLane(
            source: store, commits: commits, stores: { [] }, observer: { events, _ in handled.withLock { $0 += events } },
            applied: applied, logger: Logger(label: "test"), priorityCommits: priorityCommits, fallback: .seconds(600))
        let running = Task { await lane.run() }
        defer { running.cancel() }
        #expect(await counting.headRead.wait(until: OutboxPosition(1), timeout: .seconds(20)), "the lane started")
        for index in 0..<40 {
            _ = try await store.commit(try CanonicalStoreConformance.openAccount("a\(index)"))
            // Without announcements the lane keeps up with each commit; with them it has nothing to do.
            if !announced { #expect(await applied.wait(until: try await store.headPosition(), timeout: .seconds(20))) }
        }
        var restriction = UnitOfWork(metadata: CommandMetadata(actor: "tester"))
        restriction.events.append(try PendingEvent(
            streamID: StreamID(category: "account", id: "a0"), type: "account.frozen", encoding: ["why": "hold"], occurredAt: Date(), priority: true))
        let frozen = try await store.commit(restriction)
        #expect(await applied.wait(until: frozen.position, timeout: .seconds(20)), "the priority event was handled")
        #expect(handled.withLock { $0 }.map(\.type) == ["account.frozen"])
        let reads = counting.reads.withLock { $0 }
        if announced {
            #expect(reads == 1, "one read, for the announced commit: \(reads)")
        } else {
            #expect(reads >= 41, "a read after every commit: \(reads)")
        }
    }

    /// Fails its first `applyPriority` (a busy file, a reset connection), then records what it gets.
    final class FailingOnce: ProjectionStoreWrapper, PriorityApplying, Sendable {
        let base: any ProjectionStore
        let calls = Mutex(0)
        let applied = Mutex<[EventEnvelope]>([])

        let failFirst: Bool

        init(_ base: any ProjectionStore, failFirst: Bool = true) {
            self.base = base
            self.failFirst = failFirst
        }

        func applyPriority(_ events: [EventEnvelope]) async throws {
            if calls.withLock({ $0 += 1; return $0 }) == 1 && failFirst { throw ProjectionError.storage("database is locked") }
            applied.withLock { $0 += events }
        }
    }

    static func frozen(_ account: String) throws -> UnitOfWork {
        var work = UnitOfWork(metadata: CommandMetadata(actor: "tester"))
        work.events.append(try PendingEvent(
            streamID: StreamID(category: "account", id: account), type: "account.frozen", encoding: ["why": "hold"], occurredAt: Date(), priority: true))
        return work
    }

    /// A batch that failed in a store is tried again, not dropped: the lane used to move past it
    /// before applying, so the permission change waited behind the whole backlog. And permission
    /// changes already committed when the lane starts (from its stores' checkpoints) go ahead too.
    @Test func aBatchThatFailedIsTriedAgainAndTheBacklogsChangesGoAhead() async throws {
        let scratch = try TemporaryDirectory()
        let commits = PositionWaiters(), priorityCommits = PositionWaiters()
        let store = SignallingCanonicalStore(
            try InMemoryCanonicalStore(migrations: ConformanceSchema.migrations), commits: commits, priorityCommits: priorityCommits)
        let backlog = try await store.commit(try Self.frozen("a0"))
        let flaky = FailingOnce(try await ProjectionEngine.sqlite.timeline(in: scratch))
        let applied = PositionWaiters()
        let lane = PriorityLane(
            source: store, commits: commits, stores: { [flaky] }, observer: nil, applied: applied, logger: Logger(label: "test"),
            priorityCommits: priorityCommits, fallback: .seconds(600))
        let running = Task { await lane.run() }
        defer { running.cancel() }
        #expect(await applied.wait(until: backlog.position, timeout: .seconds(20)), "the backlog's change, after a failed first try")
        #expect(flaky.calls.withLock { $0 } == 2)
        let later = try await store.commit(try Self.frozen("a1"))
        #expect(await applied.wait(until: later.position, timeout: .seconds(20)))
        #expect(flaky.applied.withLock { $0 }.map(\.position) == [backlog.position, later.position])
    }

    /// A store the lane starts serving later (its lease taken over, a blue-green switch) gets the
    /// permission changes of its backlog too, not only those committed from then on.
    @Test func aStoreServedLaterGetsItsBacklogsChanges() async throws {
        let scratch = try TemporaryDirectory()
        let commits = PositionWaiters(), priorityCommits = PositionWaiters()
        let counting = CountingReads(base: try InMemoryCanonicalStore(migrations: ConformanceSchema.migrations))
        let store = SignallingCanonicalStore(counting, commits: commits, priorityCommits: priorityCommits)
        let late = FailingOnce(try await ProjectionEngine.sqlite.timeline(in: scratch), failFirst: false)
        let served = Mutex<[any ProjectionStore]>([])
        let applied = PositionWaiters()
        let lane = PriorityLane(
            source: store, commits: commits, stores: { served.withLock { $0 } }, observer: nil, applied: applied, logger: Logger(label: "test"),
            priorityCommits: priorityCommits, fallback: .seconds(600))
        let running = Task { await lane.run() }
        defer { running.cancel() }
        #expect(await counting.headRead.wait(until: OutboxPosition(1), timeout: .seconds(20)), "the lane started")
        let first = try await store.commit(try Self.frozen("a0"))
        #expect(await applied.wait(until: first.position, timeout: .seconds(20)), "handled, with no store to give it to")
        served.withLock { $0 = [late] }
        let second = try await store.commit(try Self.frozen("a1"))
        #expect(await applied.wait(until: second.position, timeout: .seconds(20)))
        #expect(late.applied.withLock { $0 }.map(\.position) == [first.position, second.position])
    }
}
