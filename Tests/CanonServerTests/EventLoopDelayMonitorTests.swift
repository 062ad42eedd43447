import Canon
@testable import CanonServer
import Dispatch
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The event-loop delay monitor of the scaled-out processes (`canon serve --database`,
/// `canon worker`), which run everything on one event loop by default.
@Suite("Event-loop delay monitor")
struct EventLoopDelayMonitorTests {
    /// A clock that reads the given instants in turn, then stays on the last.
    final class ScriptedClock: Sendable {
        private let readings: Mutex<[ContinuousClock.Instant]>
        init(_ readings: [ContinuousClock.Instant]) { self.readings = Mutex(readings) }
        func now() -> ContinuousClock.Instant { readings.withLock { $0.count > 1 ? $0.removeFirst() : $0[0] } }
    }

    @Test func aDelayPastTheThresholdIsMeasuredCountedAndPublished() async throws {
        CanonMetrics.bootstrap()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let start = ContinuousClock.now
        // Sent at `start`, run 250 ms later by the scripted clock; then sent and run at once.
        let clock = ScriptedClock([start, start + .milliseconds(250), start + .seconds(1), start + .seconds(1)])
        let monitor = EventLoopDelayMonitor(loops: [group.next()], warnAbove: .milliseconds(100), now: { clock.now() })
        #expect(await monitor.probe() == [.milliseconds(250)])
        #expect(monitor.totals.probes == 1 && monitor.totals.stalls == 1)
        #expect(await monitor.probe() == [.zero])
        #expect(monitor.totals.probes == 2 && monitor.totals.stalls == 1, "a prompt loop is not a stall")
        let metrics = String(decoding: CanonMetrics.scrape([]), as: UTF8.self)
        #expect(metrics.contains("canon_event_loop_delay_seconds_count{loop=\"0\"}"), "\(metrics.prefix(2000))")
        try await group.shutdownGracefully()
    }

    /// On a real loop held by other work, the probe waits behind it and measures at least the
    /// time it was held after the probe was sent.
    @Test func aHeldLoopDelaysTheProbeByAtLeastTheHold() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let gate = DispatchSemaphore(value: 0)
        loop.execute { gate.wait() }
        let sent = PositionWaiters()
        let sentAt = Mutex<ContinuousClock.Instant?>(nil)
        let monitor = EventLoopDelayMonitor(loops: [loop], warnAbove: .seconds(3600), now: {
            let now = ContinuousClock.now
            let first = sentAt.withLock { at -> Bool in
                guard at == nil else { return false }
                at = now
                return true
            }
            if first { sent.advance(to: OutboxPosition(1)) }
            return now
        })
        let probe = Task { await monitor.probe() }
        #expect(await sent.wait(until: OutboxPosition(1), timeout: .seconds(20)), "the probe was sent")
        // The loop is still held: release it, and the probe's task runs only then.
        let releasedAt = ContinuousClock.now
        gate.signal()
        let delays = await probe.value
        let held = releasedAt - (sentAt.withLock { $0 } ?? releasedAt)
        #expect(delays.count == 1 && delays[0] >= held, "measured \(delays), held at least \(held)")
        #expect(monitor.totals.stalls == 0)
        try await group.shutdownGracefully()
    }
}
