import Canon
import CanonTesting
import Foundation
import Logging
import Synchronization
import Testing

/// What an agent logs about its heartbeat: a real failure to record one is a warning; being
/// stopped while recording one is not (it is how every agent ends).
@Suite("Agent logging")
struct AgentLoggingTests {
    @Test(arguments: [HeartbeatOutcome.stoppedWhileWriting, .failed])
    func aHeartbeatWriteWarnsOnlyWhenItReallyFailed(_ outcome: HeartbeatOutcome) async throws {
        let canonical = try await ProjectionRuntimeTests.Canonical(.sqlite)
        let store = HeartbeatProbe(try await canonical.timeline(), outcome: outcome)
        let logs = CapturedLogs()
        let agent = ProjectionAgent(
            store: store, source: canonical.store, commits: canonical.commits,
            configuration: .init(batchSize: 50, idleWait: .milliseconds(20), heartbeatInterval: .milliseconds(20)),
            logger: Logger(label: "test") { _ in CapturingLogHandler(logs: logs) })
        let running = Task { await agent.run() }
        #expect(await store.entered.wait(until: OutboxPosition(1), timeout: .seconds(20)), "the agent writes a heartbeat")
        if outcome == .failed {
            #expect(await logs.logged.wait(until: OutboxPosition(1), timeout: .seconds(20)), "the failure is logged")
        }
        running.cancel()
        await running.value
        let warnings = logs.lines.withLock { $0 }.filter { $0.level >= .warning && $0.message == "cannot record heartbeat" }
        switch outcome {
        case .stoppedWhileWriting: #expect(warnings.isEmpty, "stopping is not a failure: \(warnings)")
        case .failed: #expect(!warnings.isEmpty, "a heartbeat the store refused is a warning")
        }
    }
}

enum HeartbeatOutcome: Sendable, CustomStringConvertible {
    /// The write is held until the agent is cancelled, and then ends in `CancellationError`.
    case stoppedWhileWriting
    /// The store refuses the write.
    case failed

    var description: String { self == .failed ? "failed" : "stopped while writing" }
}

/// A store whose heartbeat writes end as `outcome` says.
final class HeartbeatProbe: ProjectionStoreWrapper, Sendable {
    struct Refused: Error {}
    let base: any ProjectionStore
    let outcome: HeartbeatOutcome
    /// Moves to 1 when a heartbeat write begins.
    let entered = PositionWaiters()

    init(_ base: any ProjectionStore, outcome: HeartbeatOutcome) {
        self.base = base
        self.outcome = outcome
    }

    func recordHeartbeat(_ heartbeat: AgentHeartbeat) async throws {
        entered.advance(to: OutboxPosition(1))
        switch outcome {
        case .stoppedWhileWriting:
            // Held, not timed: only the agent's cancellation ends it.
            let never = PositionWaiters()
            _ = await never.wait(until: OutboxPosition(1), timeout: .seconds(600))
            try Task.checkCancellation()
            throw Refused()
        case .failed:
            throw Refused()
        }
    }
}

final class CapturedLogs: Sendable {
    let lines = Mutex<[(level: Logger.Level, message: String)]>([])
    /// Moves to the number of lines logged at warning or above.
    let logged = PositionWaiters()
}

struct CapturingLogHandler: LogHandler {
    let logs: CapturedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let count = logs.lines.withLock { lines in
            lines.append((event.level, event.message.description))
            return lines.filter { $0.level >= .warning }.count
        }
        logs.logged.advance(to: OutboxPosition(Int64(count)))
    }
}
