import Canon
import CanonTesting
import Foundation
import Synchronization
import Testing

/// The group committer's logic, against a fake store: what it gathers, and who sees which error.
/// (On a real PostgreSQL server: `PostgresConformanceTests` and the conformance check
/// `concurrentCommitsThatFailFailAloneAndTheRestCommit`.)
@Suite("Group commit")
struct GroupCommitTests {
    /// A fake all-or-nothing batch commit: records each call's actors, holds the first call until
    /// released, and fails a batch holding a unit whose actor names an error.
    final class FakeStore: Sendable {
        let calls = Mutex<[[String]]>([])
        let gate = PositionWaiters()
        /// Moves to the number of calls made so far.
        let called = PositionWaiters()
        let positions = Mutex<Int64>(0)

        func commit(_ batch: [UnitOfWork]) async throws -> [CommitResult] {
            let actors = batch.map(\.metadata.actor)
            let first = calls.withLock { calls in
                calls.append(actors)
                return calls.count == 1
            }
            called.advance(to: OutboxPosition(Int64(calls.withLock { $0.count })))
            if first { _ = await gate.wait(until: OutboxPosition(1), timeout: .seconds(30)) }
            if actors.contains("conflict") {
                throw CanonicalStoreError.streamVersionConflict(StreamID(category: "t", id: "x"), expected: .exactly(1), actual: 2)
            }
            if actors.contains("storage") { throw CanonicalStoreError.unavailable("connection lost during COMMIT", outcomeUnknown: true) }
            if actors.contains("deadlock") { throw CanonicalStoreError.contended("deadlock detected") }
            return positions.withLock { position in
                batch.map { _ in
                    position += 1
                    return CommitResult(events: [], position: OutboxPosition(position))
                }
            }
        }
    }

    static func work(_ actor: String) -> UnitOfWork { UnitOfWork(metadata: CommandMetadata(actor: actor)) }

    /// Starts `first` (which the fake holds), queues `others` behind it, then releases it, and
    /// returns every outcome by actor.
    static func run(
        first: String, others: [String], maxBatch: Int = 64, maxWaiting: Int = 10_000, on store: FakeStore
    ) async throws -> (outcomes: [String: Result<CommitResult, CanonicalStoreError>], committer: GroupCommitter) {
        let committer = GroupCommitter(configuration: .init(maxBatch: maxBatch, maxConcurrent: 1, maxWaiting: maxWaiting))
        let commit: GroupCommitter.CommitBatch = { try await store.commit($0) }
        let outcomes = try await withThrowingTaskGroup(of: (String, Result<CommitResult, CanonicalStoreError>).self) { group in
            func add(_ actor: String) {
                group.addTask {
                    do { return (actor, .success(try await committer.commit(work(actor), through: commit))) } catch let error as CanonicalStoreError {
                        return (actor, .failure(error))
                    }
                }
            }
            add(first)
            #expect(await store.called.wait(until: OutboxPosition(1), timeout: .seconds(20)), "the first commit reached the store")
            for actor in others { add(actor) }
            let settled = try await waitUntil(wakingOn: committer.activity) {
                committer.waiting == min(others.count, maxWaiting) && committer.refused == max(0, others.count - maxWaiting)
            }
            try #require(settled, "the others queued (or were refused) in time")
            store.gate.advance(to: OutboxPosition(1))
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        return (outcomes, committer)
    }

    @Test func commitsThatArriveWhileOneIsInFlightGoTogetherInArrivalOrderUpToTheBatchLimit() async throws {
        let store = FakeStore()
        let others = (1...7).map { "w\($0)" }
        let (outcomes, committer) = try await Self.run(first: "w0", others: others, maxBatch: 4, on: store)
        let calls = store.calls.withLock { $0 }
        #expect(calls.map(\.count) == [1, 4, 3], "\(calls)")
        #expect(Set(calls.dropFirst().flatMap { $0 }) == Set(others))
        #expect(committer.totals == (3, 8))
        // Each caller has its own position, in the order its batch committed it.
        let positions = calls.flatMap { $0 }.map { try? outcomes[$0]?.get().position.rawValue }
        #expect(positions == (1...8).map { Int64($0) })
    }

    @Test func aUnitThatFailsTheGatheredTransactionFailsAloneAndTheOthersCommit() async throws {
        let store = FakeStore()
        let (outcomes, _) = try await Self.run(first: "w0", others: ["w1", "conflict", "w2"], on: store)
        let calls = store.calls.withLock { $0 }
        // The gathered transaction failed, then each of its units went alone.
        #expect(calls.count == 5, "\(calls)")
        #expect(Set(calls.suffix(3)) == [["w1"], ["conflict"], ["w2"]])
        #expect(outcomes.count == 4)
        for actor in ["w0", "w1", "w2"] { #expect((try? outcomes[actor]?.get()) != nil, "\(actor)") }
        #expect(throws: CanonicalStoreError.self) { try outcomes["conflict"]?.get() }
        if case .failure(let error) = outcomes["conflict"] { #expect(error.code == .streamVersionConflict) }
    }

    /// A transaction the store rolled back for contention (a deadlock) is retried unit by unit,
    /// like one a unit failed: the culprit alone fails; here nobody is at fault and all commit.
    @Test func aDeadlockedTransactionIsRetriedUnitByUnit() async throws {
        let store = FakeStore()
        let (outcomes, _) = try await Self.run(first: "w0", others: ["w1", "w2"], on: store)
        #expect(outcomes.values.allSatisfy { (try? $0.get()) != nil })
        let deadlocked = FakeStore()
        let (again, _) = try await Self.run(first: "w0", others: ["w1", "deadlock", "w2"], on: deadlocked)
        #expect(deadlocked.calls.withLock { $0 }.count == 5, "the gathered transaction, then each unit alone")
        for actor in ["w0", "w1", "w2"] { #expect((try? again[actor]?.get()) != nil, "\(actor)") }
        if case .failure(let error) = again["deadlock"] { #expect(error.transience == .contention) } else { Issue.record("the deadlocking unit committed") }
    }

    /// Behind a store that does not keep up, at most `maxWaiting` commits wait; the others are
    /// refused at once with a transient error and nothing of theirs is written.
    @Test func pastTheWaitingLimitACommitIsRefusedAtOnce() async throws {
        let store = FakeStore()
        let others = (1...6).map { "w\($0)" }
        // The first is held by the fake; four may wait; the rest are refused (the test waits only for the four).
        let (outcomes, committer) = try await Self.run(first: "w0", others: others, maxWaiting: 4, on: store)
        let refused = outcomes.filter { if case .failure(let error) = $0.value { error.transience == .contention } else { false } }
        #expect(refused.count == 2, "\(outcomes)")
        #expect(outcomes.values.filter { (try? $0.get()) != nil }.count == 5)
        let committed = Set(store.calls.withLock { $0 }.flatMap { $0 })
        #expect(committed.isDisjoint(with: refused.keys), "a refused commit was written")
        #expect(committer.totals.units == 5)
        #expect(committer.refused == 2)
    }

    /// A caller that gives up while its unit waits gets `CancellationError`, and the unit is
    /// never written; the units around it commit as usual.
    @Test func aCommitCancelledWhileItWaitsIsTakenOutAndNeverWritten() async throws {
        let store = FakeStore()
        let committer = GroupCommitter(configuration: .init(maxBatch: 64, maxConcurrent: 1, maxWaiting: 100))
        let commit: GroupCommitter.CommitBatch = { try await store.commit($0) }
        let first = Task { try await committer.commit(Self.work("w0"), through: commit) }
        #expect(await store.called.wait(until: OutboxPosition(1), timeout: .seconds(20)), "the first commit reached the store")
        let before = Task { try await committer.commit(Self.work("w1"), through: commit) }
        try #require(try await waitUntil(wakingOn: committer.activity) { committer.waiting == 1 })
        let cancelled = Task { try await committer.commit(Self.work("gave-up"), through: commit) }
        try #require(try await waitUntil(wakingOn: committer.activity) { committer.waiting == 2 })
        let after = Task { try await committer.commit(Self.work("w2"), through: commit) }
        try #require(try await waitUntil(wakingOn: committer.activity) { committer.waiting == 3 })

        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(committer.waiting == 2)
        store.gate.advance(to: OutboxPosition(1))
        for task in [first, before, after] { _ = try await task.value }
        let written = store.calls.withLock { $0 }.flatMap { $0 }
        #expect(Set(written) == ["w0", "w1", "w2"], "\(written)")
        #expect(committer.totals.units == 3)

        // A caller cancelled before it queues is refused at once, and nothing is written.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await committer.commit(Self.work("never"), through: commit)
        }
        await #expect(throws: CancellationError.self) { try await early.value }
        #expect(!store.calls.withLock { $0 }.flatMap { $0 }.contains("never"))
    }

    /// A connection lost with the work in flight leaves the outcome unknown (the COMMIT may have
    /// landed): nobody retries, every unit of that transaction gets the error.
    @Test func aStorageErrorIsReportedToEveryUnitOfTheTransactionAndNothingIsRetried() async throws {
        let store = FakeStore()
        let (outcomes, _) = try await Self.run(first: "w0", others: ["w1", "storage", "w2"], on: store)
        let calls = store.calls.withLock { $0 }
        #expect(calls.count == 2, "\(calls)")
        #expect((try? outcomes["w0"]?.get()) != nil)
        for actor in ["w1", "storage", "w2"] {
            guard case .failure(let error) = outcomes[actor] else {
                Issue.record("\(actor) committed")
                continue
            }
            #expect(error.code == .storage)
        }
    }
}
