import Canon
import CanonPostgres
import CanonTesting
import Foundation
import Synchronization
import Testing

/// The bug every comparable system has shipped: a position taken by a transaction that commits
/// after a later one, and a reader that passes it forever. Here 16 writers commit 100,000 events
/// while transactions are held open for random times, and a projection reads concurrently.
@Suite("No skipped events on PostgreSQL", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipMessage)))
struct NoSkippedEventTests {
    @Test func sixteenWritersWithDelayedCommitsNeverMakeAProjectionSkipOrRepeatAnEvent() async throws {
        let url = try await PostgresTestServer.createDatabase()
        // A quarter of the transactions stay open after their domain write (which gives them their
        // transaction id) until another transaction has committed (at most 50 ms, in case none
        // does), and only then number their events: later transactions overtake them.
        let commits = PositionWaiters()
        let canonical = try await PostgresCanonicalStore(
            url: url, migrations: ConformanceSchema.migrations,
            configuration: .init(
                maximumConnections: 18,
                holdOpen: {
                    if Int.random(in: 0..<4) == 0 { _ = await commits.wait(until: commits.reached.next, timeout: .milliseconds(50)) }
                },
                // Eight transactions in flight at once, each gathering what queued meanwhile.
                groupCommit: .init(maxBatch: 4, maxConcurrent: 8)))
        let store = SignallingCanonicalStore(canonical, commits: commits)
        let counting = CountingStore(try await PostgresTimelineStore.open(url: url, projection: EveryEvent()))
        let agent = ProjectionAgent(
            store: counting, source: store, commits: commits,
            configuration: .init(batchSize: 500, idleWait: .milliseconds(20), heartbeatInterval: .milliseconds(200)))
        let running = Task { await agent.run() }

        let writers = 16, unitsPerWriter = 625, eventsPerUnit = 10, streamsPerWriter = 4
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for unit in 0..<unitsPerWriter {
                        let stream = StreamID(category: "account", id: "w\(writer)-\(unit % streamsPerWriter)")
                        var work = UnitOfWork(metadata: CommandMetadata(actor: "writer-\(writer)"))
                        work.mutations.append(.insert(
                            table: "ledger", row: ["account_id": .text("w\(writer)"), "seq": .integer(Int64(unit)), "amount": .integer(1)]))
                        for _ in 0..<eventsPerUnit {
                            work.events.append(PendingEvent(streamID: stream, type: "ledger.posted", payload: Data("{}".utf8), occurredAt: Date()))
                        }
                        _ = try await store.commit(work)
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = writers * unitsPerWriter * eventsPerUnit
        let head = try await canonical.headPosition()
        #expect(head == OutboxPosition(Int64(total)))
        #expect(await agent.applied.wait(until: head, timeout: .seconds(120)), "the projection reaches the head")
        running.cancel()
        await running.value

        // The race really happened: transactions that began earlier committed later.
        let overtaken = try await canonical.database.integer(
            "SELECT count(*) FROM (SELECT txid, lag(txid) OVER (ORDER BY position) AS previous FROM canon_outbox) t WHERE txid < previous")
        #expect((overtaken ?? 0) > 0, "some transactions were overtaken (where sequence-numbered outboxes skip)")

        // Group commit was at work: transactions carried several writers' units.
        let totals = try #require(canonical.groupCommitter).totals
        #expect(totals.transactions < totals.units, "\(totals)")

        // Every position applied exactly once.
        let applied = counting.applied
        #expect(applied.count == total, "every event applied")
        #expect(applied.values.allSatisfy { $0 == 1 }, "no event applied twice")
        #expect(Set(applied.keys) == Set(1...Int64(total)), "no position skipped")

        // Per-stream order: each stream's entries, in position order, have versions 1, 2, 3, …
        for writer in 0..<writers {
            for index in 0..<streamsPerWriter {
                let key = StreamID(category: "account", id: "w\(writer)-\(index)").rawValue
                let versions = try await counting.timeline.entries(key: key, limit: total).map { Int64($0.details["version"] ?? "") ?? -1 }
                let expected = (0..<unitsPerWriter).filter { $0 % streamsPerWriter == index }.count * eventsPerUnit
                #expect(versions == Array(1...Int64(expected)), "\(key) complete and in order")
            }
        }
    }
}

/// One timeline entry per event, keyed by its stream, recording its stream version.
struct EveryEvent: TimelineProjection {
    let identity = ProjectionIdentity(name: "every-event", version: 1)

    func entries(for event: EventEnvelope) throws -> [TimelineEntry] {
        [TimelineEntry(
            key: event.streamID.rawValue, position: event.position, at: event.committedAt, kind: event.type, actor: event.actor, summary: "",
            details: ["version": String(event.streamVersion)])]
    }
}

/// A projection store that counts, per position, how many committed batches carried the event:
/// the timeline's own idempotency would hide a second application.
final class CountingStore: ProjectionStoreWrapper, Sendable {
    let timeline: PostgresTimelineStore
    private let counts = Mutex<[Int64: Int]>([:])

    init(_ timeline: PostgresTimelineStore) { self.timeline = timeline }

    var base: any ProjectionStore { timeline }
    var applied: [Int64: Int] { counts.withLock { $0 } }

    func apply(_ events: [EventEnvelope], from: OutboxPosition, to: Checkpoint) async throws {
        try await timeline.apply(events, from: from, to: to)
        counts.withLock { counts in for event in events { counts[event.position.rawValue, default: 0] += 1 } }
    }
}
