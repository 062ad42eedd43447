import Canon
import CanonEmbedded
@testable import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import GRDB
import Synchronization
import Testing

/// Large batches are folded on a reader connection while the write transaction writes: the
/// result must be what folding inside the transaction gives, and a failure must write nothing.
@Suite("Case search catch-up")
struct SearchCatchUpTests {
    static func seeded(_ scratch: TemporaryDirectory, cases: Int) async throws -> EmbeddedPlatform {
        let platform = try EmbeddedPlatform.open(scratch.dataDirectory, create: true)
        _ = try await DemoPlatform(configuration: .init(cases: cases, seed: 11, chunkSize: 50)).seed(into: platform.store)
        return platform
    }

    static func store(_ scratch: TemporaryDirectory, _ name: String) throws -> SQLiteSearchStore {
        try SQLiteSearchStore(path: scratch.file(name), projection: CaseSearchProjection(), memoryIndex: .off)
    }

    /// A scratch directory, a platform seeded with `cases` demo cases, and its whole outbox.
    static func seededEvents(_ prefix: String, cases: Int) async throws -> (TemporaryDirectory, EmbeddedPlatform, [EventEnvelope]) {
        let scratch = try TemporaryDirectory(prefix: prefix)
        let platform = try await seeded(scratch, cases: cases)
        return (scratch, platform, try await platform.canonical.events(after: .start, limit: 1_000_000))
    }

    /// `events` applied to a new store in batches far below the hand-off threshold, so every
    /// document folds inside its transaction: what every other way of applying them must equal.
    static func inSmallBatches(_ events: [EventEnvelope], _ scratch: TemporaryDirectory) async throws -> SQLiteSearchStore {
        let small = try store(scratch, "small.sqlite")
        try await apply(events, to: small, inBatchesOf: 7)
        return small
    }

    static func apply(_ events: [EventEnvelope], to store: SQLiteSearchStore, inBatchesOf size: Int) async throws {
        for start in stride(from: 0, to: events.count, by: size) {
            let batch = Array(events[start..<min(start + size, events.count)])
            let from = try await store.checkpoint().position
            try await store.apply(batch, from: from, to: Checkpoint(position: batch.last!.position, committedAt: batch.last!.committedAt))
        }
    }

    @Test func largeBatchesFoldedBesideTheWriterEqualSmallBatchesFoldedInside() async throws {
        let (scratch, platform, events) = try await Self.seededEvents("canon-catch-up", cases: 300)
        #expect(events.count > 1_000)

        // Two large batches: the second folds into documents the first wrote.
        let large = try Self.store(scratch, "large.sqlite")
        try await Self.apply(events, to: large, inBatchesOf: (events.count + 1) / 2)
        // Batches far below the hand-off threshold: every document folds inside the transaction.
        let small = try await Self.inSmallBatches(events, scratch)

        let (a, b) = (try await large.contentSummary(), try await small.contentSummary())
        #expect(a.checkpoint == events.last!.position)
        #expect(a == b)
        #expect(a.rows == (try await platform.canonical.count("cases", filter: [:])))
        // The vocabulary spelling correction draws on is the same too.
        let misspelt = try await large.search(SearchQuery(text: "finacial", limit: 5, facets: false))
        let same = try await small.search(SearchQuery(text: "finacial", limit: 5, facets: false))
        #expect(misspelt.correctedQuery == same.correctedQuery)
    }

    @Test func aPoisonEventInALargeBatchFailsTheBatchAndWritesNothing() async throws {
        let (scratch, _, seeded) = try await Self.seededEvents("canon-catch-up-poison", cases: 120)
        var events = seeded
        let store = try Self.store(scratch, "poison.sqlite")
        // A case opening near the end of the batch whose payload is not JSON.
        let poisoned = try #require(events.lastIndex { $0.type == CaseEvents.caseOpened })
        events[poisoned].payload = Data("not json".utf8)
        await #expect(throws: (any Error).self) {
            try await store.apply(events, from: .start, to: Checkpoint(position: events.last!.position, committedAt: nil))
        }
        #expect(try await store.checkpoint().position == .start)
        #expect(try await store.count() == 0)
    }

    /// A refold (what a drift repair runs) rewrites a document after the folding reader took its
    /// snapshot and before the write transaction began: the writer must fold that document again
    /// itself, onto the repaired one, not write the fold of the stale one.
    @Test func aDocumentRewrittenAfterTheFoldingSnapshotIsFoldedAgainInsideTheTransaction() async throws {
        let (scratch, _, events) = try await Self.seededEvents("canon-catch-up-race", cases: 200)
        let projection = CaseSearchProjection()
        let firstHalf = Array(events[..<(events.count / 2)]), secondHalf = Array(events[(events.count / 2)...])
        #expect(secondHalf.count >= SQLiteSearchStore.foldAheadThreshold, "the second half is folded beside the writer")
        let later = Set(secondHalf.compactMap(projection.documentKey(for:)))
        let opened = try #require(firstHalf.first { $0.type == CaseEvents.caseOpened && later.contains(projection.documentKey(for: $0) ?? "") })
        let key = try #require(projection.documentKey(for: opened))
        // The case's history up to the first half's end, with another title: the repair.
        var history = firstHalf.filter { projection.documentKey(for: $0) == key }
        let index = try #require(history.firstIndex { $0.type == CaseEvents.caseOpened })
        var payload = try #require(try JSONSerialization.jsonObject(with: history[index].payload) as? [String: Any])
        payload["title"] = "Repaired title"
        history[index].payload = try JSONSerialization.data(withJSONObject: payload)
        let from = try #require(firstHalf.last).position
        let to = Checkpoint(position: try #require(secondHalf.last).position, committedAt: nil)

        let raced = try Self.store(scratch, "raced.sqlite")
        try await Self.apply(firstHalf, to: raced, inBatchesOf: 7)
        let snapshotTaken = PositionWaiters(), writeMayBegin = PositionWaiters()
        raced.foldHooks.withLock {
            $0 = .init(
                afterSnapshot: { snapshotTaken.advance(to: OutboxPosition(1)) },
                beforeWrite: { _ = await writeMayBegin.wait(until: OutboxPosition(1), timeout: .seconds(60)) })
        }
        let applying = Task { try await raced.apply(secondHalf, from: from, to: to) }
        #expect(await snapshotTaken.wait(until: OutboxPosition(1), timeout: .seconds(60)), "the folding reader took its snapshot")
        try await raced.refold(stream: opened.streamID, events: history, at: from)
        writeMayBegin.advance(to: OutboxPosition(1))
        try await applying.value

        #expect(try await raced.document(key)?.text["title"] == "Repaired title", "the batch was folded onto the repaired document")
        // The same writes in order, without the race, give the same store.
        let ordered = try Self.store(scratch, "ordered.sqlite")
        try await Self.apply(firstHalf, to: ordered, inBatchesOf: 7)
        try await ordered.refold(stream: opened.streamID, events: history, at: from)
        try await ordered.apply(secondHalf, from: from, to: to)
        #expect(try await raced.contentSummary() == (try await ordered.contentSummary()))
    }

    /// `batches` applied in order, each time telling the store which batch comes next, as an
    /// agent does while it catches up.
    static func applyExpecting(_ batches: [[EventEnvelope]], to store: SQLiteSearchStore) async throws {
        for (index, batch) in batches.enumerated() {
            let from = try await store.checkpoint().position
            let to = Checkpoint(position: batch.last!.position, committedAt: nil)
            if index + 1 < batches.count {
                let next = batches[index + 1]
                store.expect(Task { next }, after: to.position)
            }
            try await store.apply(batch, from: from, to: to)
        }
    }

    static func split(_ events: [EventEnvelope], into parts: Int) -> [[EventEnvelope]] {
        let size = (events.count + parts - 1) / parts
        return stride(from: 0, to: events.count, by: size).map { Array(events[$0..<min($0 + size, events.count)]) }
    }

    /// Told which batch comes next, the store folds it while the one before is written and
    /// committed, over that batch's documents: the result is what folding each inside its
    /// transaction gives, and the folds ahead were used, not thrown away.
    @Test func batchesFoldedAheadOverTheBatchBeforeEqualBatchesFoldedInside() async throws {
        let (scratch, _, events) = try await Self.seededEvents("canon-fold-ahead", cases: 300)
        let batches = Self.split(events, into: 4)
        #expect(batches.allSatisfy { $0.count >= SQLiteSearchStore.foldAheadThreshold })

        let ahead = try Self.store(scratch, "ahead.sqlite")
        try await Self.applyExpecting(batches, to: ahead)
        let small = try await Self.inSmallBatches(events, scratch)

        #expect(try await ahead.contentSummary() == (try await small.contentSummary()))
        let counts = ahead.foldAheadCounts.withLock { $0 }
        #expect(counts.batches == 3, "every batch after the first was folded ahead")
        #expect(counts.chunksHeld > 0 && counts.chunksRefolded == 0)
        let misspelt = try await ahead.search(SearchQuery(text: "finacial", limit: 5, facets: false))
        #expect(misspelt.correctedQuery == (try await small.search(SearchQuery(text: "finacial", limit: 5, facets: false))).correctedQuery)
    }

    /// A refold (a drift repair) rewrites a document after the next batch was folded ahead: the
    /// writer folds that batch again itself instead of writing what was folded over the stale one.
    @Test func aDocumentRewrittenAfterTheFoldAheadIsFoldedAgainInsideTheTransaction() async throws {
        let (scratch, _, events) = try await Self.seededEvents("canon-fold-ahead-race", cases: 200)
        let projection = CaseSearchProjection()
        // Thirds, with the second boundary moved just past the opening of a case that has events
        // after it, so that `second` changes a case opened before it.
        let third = events.count / 3
        let keys = events.map { projection.documentKey(for: $0) }
        let boundary = try #require((2 * third..<events.count).first { index in
            events[index].type == CaseEvents.caseOpened && keys[(index + 1)...].contains(keys[index])
        }) + 1
        let (base, first, second) = (Array(events[..<third]), Array(events[third..<boundary]), Array(events[boundary...]))
        #expect(first.count >= SQLiteSearchStore.foldAheadThreshold && second.count >= SQLiteSearchStore.foldAheadThreshold)
        // A case opened before `second` that `second` changes: the repair gives it another title.
        let later = Set(second.compactMap(projection.documentKey(for:)))
        let opened = try #require((base + first).first { $0.type == CaseEvents.caseOpened && later.contains(projection.documentKey(for: $0) ?? "") })
        let key = try #require(projection.documentKey(for: opened))
        var history = (base + first).filter { projection.documentKey(for: $0) == key }
        let index = try #require(history.firstIndex { $0.type == CaseEvents.caseOpened })
        var payload = try #require(try JSONSerialization.jsonObject(with: history[index].payload) as? [String: Any])
        payload["title"] = "Repaired title"
        history[index].payload = try JSONSerialization.data(withJSONObject: payload)
        let afterFirst = try #require(first.last).position

        let raced = try Self.store(scratch, "raced.sqlite")
        try await Self.apply(base, to: raced, inBatchesOf: 7)
        // Two snapshots: the fold of `first`, then the fold of `second` ahead.
        let snapshots = PositionWaiters()
        let taken = Mutex(Int64(0))
        raced.foldHooks.withLock {
            $0 = .init(afterSnapshot: { snapshots.advance(to: OutboxPosition(taken.withLock { $0 += 1; return $0 })) }, beforeWrite: {})
        }
        let upcoming = second
        raced.expect(Task { upcoming }, after: afterFirst)
        try await raced.apply(first, from: try #require(base.last).position, to: Checkpoint(position: afterFirst, committedAt: nil))
        #expect(await snapshots.wait(until: OutboxPosition(2), timeout: .seconds(60)), "the next batch was folded ahead")
        try await raced.refold(stream: opened.streamID, events: history, at: afterFirst)
        try await raced.apply(second, from: afterFirst, to: Checkpoint(position: try #require(second.last).position, committedAt: nil))

        let counts = raced.foldAheadCounts.withLock { $0 }
        #expect(counts.batches == 1 && counts.chunksHeld == 0 && counts.chunksRefolded > 0)
        #expect(try await raced.document(key)?.text["title"] == "Repaired title", "the batch was folded onto the repaired document")
        let ordered = try Self.store(scratch, "ordered.sqlite")
        try await Self.apply(base + first, to: ordered, inBatchesOf: 7)
        try await ordered.refold(stream: opened.streamID, events: history, at: afterFirst)
        try await Self.apply(second, to: ordered, inBatchesOf: 7)
        #expect(try await raced.contentSummary() == (try await ordered.contentSummary()))
    }

    /// A poison event in a batch folded ahead fails that batch when it is applied, and writes
    /// nothing of it; the batch before stays written, and the batch applies once healed.
    @Test func aPoisonEventInABatchFoldedAheadFailsThatBatchAndWritesNothingOfIt() async throws {
        let (scratch, _, events) = try await Self.seededEvents("canon-fold-ahead-poison", cases: 150)
        let parts = Self.split(events, into: 2)
        var second = parts[1]
        let poisoned = try #require(second.lastIndex { $0.type == CaseEvents.caseOpened })
        second[poisoned].payload = Data("not json".utf8)
        let store = try Self.store(scratch, "poison-ahead.sqlite")
        let afterFirst = try #require(parts[0].last).position
        let upcoming = second
        store.expect(Task { upcoming }, after: afterFirst)
        try await store.apply(parts[0], from: .start, to: Checkpoint(position: afterFirst, committedAt: nil))
        let written = try await store.count()
        let end = Checkpoint(position: try #require(second.last).position, committedAt: nil)
        await #expect(throws: (any Error).self) { try await store.apply(second, from: afterFirst, to: end) }
        #expect(try await store.checkpoint().position == afterFirst)
        #expect(try await store.count() == written)
        #expect(store.foldAheadCounts.withLock { $0.batches } == 1, "the failing batch was the one folded ahead")
        // Healed, it applies (folded beside the writer this time).
        try await store.apply(parts[1], from: afterFirst, to: end)
        let small = try await Self.inSmallBatches(events, scratch)
        #expect(try await store.contentSummary() == (try await small.contentSummary()))
    }

    /// A document the batch before deleted (a purge) and the batch folded ahead opens again is
    /// inserted as a new row, not written to the row the purge removed.
    @Test func aDocumentPurgedInOneBatchAndOpenedInTheBatchFoldedAheadIsInsertedAgain() async throws {
        let (scratch, _, events) = try await Self.seededEvents("canon-fold-ahead-purge", cases: 150)
        let projection = CaseSearchProjection()
        let opened = try #require(events.first { $0.type == CaseEvents.caseOpened })
        let registered = try #require(events.first { $0.type == CaseEvents.partyRegistered })
        var position = try #require(events.last).position.rawValue
        func next(_ event: EventEnvelope, type: String? = nil) -> EventEnvelope {
            var copy = event
            position += 1
            copy.position = OutboxPosition(position)
            if let type { copy.type = type }
            return copy
        }
        // After the history is stored, one batch purges the case and the next opens it again;
        // events no document handles make each large enough to be folded beside the writer.
        let filler = { (0..<SQLiteSearchStore.foldAheadThreshold).map { _ in next(registered) } }
        let first = [next(opened, type: CaseEvents.casePurged)] + filler()
        let second = [next(opened)] + filler()
        let store = try Self.store(scratch, "purge-ahead.sqlite")
        try await Self.apply(events, to: store, inBatchesOf: 500)
        try await Self.applyExpecting([first, second], to: store)
        #expect(store.foldAheadCounts.withLock { $0.batches } == 1)
        let key = try #require(projection.documentKey(for: opened))
        #expect(try await store.document(key) != nil, "the case opened again is stored")
        let small = try await Self.inSmallBatches(events + first + second, scratch)
        #expect(try await store.contentSummary() == (try await small.contentSummary()))
        #expect(try await store.count() == (try await small.count()))
    }

    /// The batch expected next arrives small (the agent reached the head): it folds inside its
    /// transaction, and the store lets go of what it folded ahead instead of keeping it.
    @Test func aBatchFoldedAheadThatArrivesSmallIsLetGo() async throws {
        let (scratch, _, events) = try await Self.seededEvents("canon-fold-ahead-small", cases: 150)
        let first = Array(events.dropLast(100)), rest = Array(events.suffix(100))
        #expect(first.count >= SQLiteSearchStore.foldAheadThreshold && rest.count < SQLiteSearchStore.foldAheadThreshold)
        let store = try Self.store(scratch, "small-after-ahead.sqlite")
        let afterFirst = try #require(first.last).position
        store.expect(Task { rest }, after: afterFirst)
        try await store.apply(first, from: .start, to: Checkpoint(position: afterFirst, committedAt: nil))
        #expect(store.holdsFoldAhead)
        try await store.apply(rest, from: afterFirst, to: Checkpoint(position: try #require(rest.last).position, committedAt: nil))
        #expect(!store.holdsFoldAhead)
        let small = try await Self.inSmallBatches(events, scratch)
        #expect(try await store.contentSummary() == (try await small.contentSummary()))
    }

    /// An agent catching up tells the store each next batch and keeps the size it promised: its
    /// store ends equal to one fed in small batches, and batches were folded ahead.
    @Test func anAgentCatchingUpHasItsNextBatchesFoldedAhead() async throws {
        let (scratch, platform, events) = try await Self.seededEvents("canon-fold-ahead-agent", cases: 300)
        let store = try Self.store(scratch, "agent.sqlite")
        let agent = ProjectionAgent(
            store: store, source: platform.canonical, commits: PositionWaiters(),
            configuration: .init(batchSize: 300, maxBatchSize: 600, batchTarget: .seconds(60)))
        let running = Task { await agent.run() }
        defer { running.cancel() }
        #expect(await agent.applied.wait(until: events.last!.position, timeout: .seconds(120)))
        let small = try await Self.inSmallBatches(events, scratch)
        #expect(try await store.contentSummary() == (try await small.contentSummary()))
        #expect(store.foldAheadCounts.withLock { $0.batches } > 0)
    }

    @Test func aDocumentIsLookedUpThroughTheOneIndexOfItsKey() async throws {
        let (scratch, _, events) = try await Self.seededEvents("canon-one-key-index", cases: 20)
        let store = try Self.store(scratch, "keys.sqlite")
        try await Self.apply(events, to: store, inBatchesOf: 500)
        let file = try DatabaseQueue(path: store.path)
        // Every write keeps one index of the key text, the one drift scans in key order.
        let indexes = try await file.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'docs' ORDER BY name")
        }
        #expect(indexes == ["docs_key_digest", "docs_sort"])
        let plan = try await file.read { db in
            try GRDB.Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT id FROM docs WHERE key = 'k'").map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("COVERING INDEX docs_key_digest") }, "\(plan)")
        #expect(try await store.count() == 20)
    }

    @Test func batchesOnEitherSideOfTheFoldAheadThresholdInTurnDoNotResizeTheCacheEveryTime() async throws {
        let (scratch, _, events) = try await Self.seededEvents("canon-cache-settings", cases: 200)
        let store = try Self.store(scratch, "bursty.sqlite")
        let large = SQLiteSearchStore.foldAheadThreshold
        #expect(events.count > 4 * large + 2 * SQLiteProjectionDatabase.liveWritesBeforeCacheShrinks)
        var applied = 0
        func apply(_ count: Int) async throws {
            try await Self.apply(Array(events[applied..<applied + count]), to: store, inBatchesOf: count)
            applied += count
        }
        // Large, small, large, small: the bulk cache is taken once and kept.
        for _ in 0..<3 {
            try await apply(large)
            try await apply(3)
        }
        #expect(store.cacheChanges == 1)
        // Enough small batches in a row give the live cache back: the last small one above and
        // these, one short of the threshold, keep the bulk cache; the next one shrinks it.
        for _ in 0..<SQLiteProjectionDatabase.liveWritesBeforeCacheShrinks - 2 { try await apply(1) }
        #expect(store.cacheChanges == 1)
        try await apply(1)
        #expect(store.cacheChanges == 2)
        try await apply(large)
        #expect(store.cacheChanges == 3)
        // What was written equals the same events applied in small batches.
        let small = try Self.store(scratch, "small.sqlite")
        try await Self.apply(Array(events[..<applied]), to: small, inBatchesOf: 7)
        #expect(try await store.contentSummary() == small.contentSummary())
    }

    @Test func aStoreThatGoesQuietAfterABulkBatchGivesItsCacheBackAfterEnoughIdleHeartbeats() async throws {
        let (scratch, _, events) = try await Self.seededEvents("canon-cache-idle", cases: 100)
        let store = try Self.store(scratch, "quiet.sqlite")
        let large = SQLiteSearchStore.foldAheadThreshold
        let beats = SQLiteProjectionDatabase.idleBeatsBeforeCacheShrinks
        #expect(events.count >= 2 * large)
        func beat(_ state: AgentState, times: Int = 1) async throws {
            for _ in 0..<times { try await store.recordHeartbeat(AgentHeartbeat(at: Date(), state: state, lastError: nil, owner: "test")) }
        }
        try await Self.apply(Array(events[..<large]), to: store, inBatchesOf: large)
        #expect(store.cacheChanges == 1)
        // Catching up, the cache stays whatever the heartbeats say.
        try await beat(.catchingUp, times: beats + 1)
        #expect(store.cacheChanges == 1)
        // Idle one beat short, then a non-idle beat: the count starts over.
        try await beat(.idle, times: beats - 1)
        try await beat(.catchingUp)
        try await beat(.idle, times: beats - 1)
        #expect(store.cacheChanges == 1)
        // A bulk batch between idle beats starts it over too (bursts keep the cache).
        try await Self.apply(Array(events[large..<2 * large]), to: store, inBatchesOf: large)
        try await beat(.idle)
        #expect(store.cacheChanges == 1)
        try await beat(.idle, times: beats - 2)
        #expect(store.cacheChanges == 1)
        // The last of enough idle beats in a row gives the live cache back, once.
        try await beat(.idle)
        #expect(store.cacheChanges == 2)
        try await beat(.idle, times: 3)
        #expect(store.cacheChanges == 2)
    }

    @Test func sqliteMemoryStatisticsAreOffSoThreadsDoNotContendForTheirMutex() {
        #expect(SQLiteTuning.memoryStatisticsOff)
    }
}
