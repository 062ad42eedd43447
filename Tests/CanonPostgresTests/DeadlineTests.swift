import Canon
@testable import CanonPostgres
import Foundation
import Synchronization
import Testing

/// `Deadline` bounds every PostgreSQL operation (postgres-nio 1.33 can leave a request waiting
/// forever). A caller cancelled while it waits must not wait on: a process stopping on SIGTERM,
/// or a test past its time limit, hung on a request that never ended (a DDL statement's deadline
/// is six hours).
@Suite("Deadline: bounded waits for operations that may never end")
struct DeadlineTests {
    /// An operation that ignores cancellation and ends only when told.
    final class Gate: Sendable {
        private let stream: AsyncStream<Void>
        private let continuation: AsyncStream<Void>.Continuation
        let started = Atomic<Bool>(false)

        init() { (stream, continuation) = AsyncStream.makeStream(of: Void.self) }

        func wait() async -> Int {
            started.store(true, ordering: .releasing)
            // Not cancellable: iterates a stream in an unstructured task of its own.
            await Task { [stream] in for await _ in stream { break } }.value
            return 42
        }

        func open() { continuation.finish() }
    }

    @Test(.timeLimit(.minutes(1)))
    func aCallerCancelledWhileItWaitsStopsWaitingAtOnce() async throws {
        let deadline = Deadline(tick: .milliseconds(50))
        let gate = Gate()
        let caller = Task { try await deadline.run(.seconds(3600)) { await gate.wait() } }
        while !gate.started.load(ordering: .acquiring) { await Task.yield() }
        caller.cancel()
        // Should the caller wait on, the gate opens after 10 s, so a regression fails (with 42)
        // instead of hanging the run.
        let answered = PositionWaiters()
        let outcome = Task {
            let result = await caller.result
            answered.advance(to: OutboxPosition(1))
            return result
        }
        _ = await answered.wait(until: OutboxPosition(1), timeout: .seconds(10))
        gate.open()
        let result = await outcome.value
        switch result {
        case .failure(let error): #expect(error is CancellationError, "\(error)")
        case .success(let value): Issue.record("the cancelled caller waited for the operation's answer (\(value))")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aCallerCancelledBeforeItAskedStillGetsTheAnswer() async throws {
        let deadline = Deadline(tick: .milliseconds(50))
        let gate = Gate()
        let caller = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await deadline.run(.seconds(3600)) { await gate.wait() }
        }
        while !gate.started.load(ordering: .acquiring) { await Task.yield() }
        gate.open()
        #expect(try await caller.value == 42)
    }

    @Test(.timeLimit(.minutes(1)))
    func anOperationPastItsDeadlineFailsWithPassed() async throws {
        let deadline = Deadline(tick: .milliseconds(20))
        let gate = Gate()
        await #expect(throws: Deadline.Passed.self) { try await deadline.run(.milliseconds(100)) { await gate.wait() } }
        gate.open()
        #expect(try await deadline.run(.seconds(10)) { 7 } == 7)
    }
}
