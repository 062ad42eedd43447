import Canon
import CanonEmbedded
import CanonTesting
import CasePlatform
import Foundation
import Synchronization
import Testing

/// Scaled out, an operator's resume may reach a server whose process does not run the paused
/// agent. The request goes to the process that holds the projection's lease (over
/// `canon_control`), which resumes it. Two platforms on one database stand for the two processes:
/// a worker that runs the agents and a server that runs none.
@Suite("Resume across processes", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipMessage)))
struct ResumeAcrossProcessesTests {
    final class Flag: Sendable { let value = Mutex(false) }

    static let investigator = User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2)

    @Test func aResumeSentToAServerReachesTheWorkerThatRunsThePausedAgent() async throws {
        let url = try await PostgresTestServer.createDatabase()
        // The worker's projection commits fail while `failing` is set; its policy pauses after two attempts.
        let failing = Flag()
        var projections = PostgresPlatform.Configuration.defaultProjections
        projections.agent.heartbeatInterval = .milliseconds(50)
        projections.agent.idleWait = .milliseconds(50)
        projections.leaseInterval = .milliseconds(50)
        let pause = FailurePolicy(maxAttempts: 2, onExhausted: .pause, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(5))
        projections.failurePolicies = ["case-search": pause, "case-timeline": pause]
        let worker = try await PostgresPlatform.open(
            url: url,
            configuration: .init(projections: projections, projectionFaults: { point in
                if point == .beforeCommit, failing.value.withLock({ $0 }) { throw CanonicalStoreError.constraintViolation("poison (injected)") }
            }))
        let server = try await PostgresPlatform.open(url: url, configuration: .init(runAgents: false))
        let running = worker.backgroundServices.map { service in Task { try await service.run() } } + [Task { try await server.notifications.run() }]
        // Stopped and closed on every path: a lease connection must be closed, not dropped.
        do {
            try await Self.resumeThroughTheServer(worker: worker, server: server, failing: failing)
        } catch {
            await Self.stop(running, [worker, server])
            throw error
        }
        await Self.stop(running, [worker, server])
    }

    static func stop(_ tasks: [Task<Void, any Error>], _ platforms: [PostgresPlatform]) async {
        for task in tasks { task.cancel() }
        for task in tasks { _ = await task.result }
        for platform in platforms { await platform.leases.close() }
    }

    static func resumeThroughTheServer(worker: PostgresPlatform, server: PostgresPlatform, failing: Flag) async throws {
        let commands = CaseCommands(store: server.store)
        _ = try await commands.registerUser(ResumeAcrossProcessesTests.investigator)
        let registered = try await server.canonical.headPosition()
        #expect(try await server.coordinator.waitUntilApplied("case-timeline", position: registered, timeout: .seconds(20)))

        failing.value.withLock { $0 = true }
        let opened = try await commands.openCase(
            OpenCaseRequest(title: "Paused on its way", summary: "", sector: "energy", region: "north", priority: "low"), by: ResumeAcrossProcessesTests.investigator)
        try await ResumeAcrossProcessesTests.poll("the worker's timeline agent is paused, as its heartbeat says", on: worker) {
            try await server.coordinator.statuses().first { $0.name == "case-timeline" }?.state == "paused"
        }
        // The server does not run the agent: it forwards the request, naming the worker.
        failing.value.withLock { $0 = false }
        let outcome = try await server.coordinator.resume("case-timeline")
        guard case .forwarded(let owner) = outcome else {
            Issue.record("expected the request to be forwarded, got \(outcome)")
            return
        }
        #expect(owner == (try await worker.coordinator.statuses().first { $0.name == "case-timeline" }?.owner))
        try await ResumeAcrossProcessesTests.poll("the worker resumes and applies the case", on: worker) {
            (try await server.coordinator.statuses().first { $0.name == "case-timeline" }?.position ?? .start) >= opened.position
        }
        #expect(try await worker.coordinator.agent(named: "case-timeline").snapshot().state != .paused)
        // Once the worker's heartbeat says it runs again, a resume is refused as it is locally.
        try await ResumeAcrossProcessesTests.poll("the worker's heartbeat shows the agent running", on: worker) {
            try await server.coordinator.statuses().first { $0.name == "case-timeline" }?.state != "paused"
        }
        let again = try await server.coordinator.resume("case-timeline")
        guard case .notPaused = again else {
            Issue.record("a running agent was resumed again: \(again)")
            return
        }
    }

    /// Waits until `condition` holds, checked each time the worker's timeline agent turns (it
    /// writes its heartbeat on its turns); fails after 30 seconds.
    static func poll(_ what: String, on worker: PostgresPlatform, _ condition: () async throws -> Bool) async throws {
        let agent = try worker.coordinator.agent(named: "case-timeline")
        guard try await waitUntil(wakingOn: agent.activity, timeout: .seconds(30), condition) else {
            Issue.record("timed out waiting until \(what)")
            throw CancellationError()
        }
    }
}
