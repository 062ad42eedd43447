import Logging
import Metrics
import NIOCore
import ServiceLifecycle
import Synchronization

/// How long work waits for its event loop, measured continuously: every `interval` a task is put
/// on each loop and the time until it runs is recorded in `canon_event_loop_delay_seconds{loop}`.
///
/// A scaled-out process runs everything on one event loop by default (`--event-loops`): HTTP,
/// PostgreSQL connections and every task. Anything that holds that thread (a synchronous call, a
/// long computation) delays every request and every commit of the process. This is the
/// measurement event-loop servers keep for that (Node's `monitorEventLoopDelay`): a delay past
/// `warnAbove` is also logged as a warning, naming the loop and how long it waited.
public final class EventLoopDelayMonitor: Service, Sendable {
    public let loops: [any EventLoop]
    public let interval: Duration
    public let warnAbove: Duration
    private let logger: Logger
    private let now: @Sendable () -> ContinuousClock.Instant
    private let timers: [Timer]
    private let counts = Mutex((probes: 0, stalls: 0))

    /// - Parameter now: the clock the delay is read from (tests script it).
    public init(
        loops: [any EventLoop], interval: Duration = .milliseconds(500), warnAbove: Duration = .milliseconds(100),
        logger: Logger = Logger(label: "canon"), now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.loops = loops
        self.interval = interval
        self.warnAbove = warnAbove
        self.logger = logger
        self.now = now
        timers = loops.indices.map {
            Timer(label: "canon_event_loop_delay_seconds", dimensions: [("loop", "\($0)")], preferredDisplayUnit: .seconds)
        }
    }

    /// Probes at once, says so in the log (with the first delays), then probes every `interval`.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            let first = await self.probe()
            self.logger.info("event-loop delay measured", metadata: [
                "loops": "\(self.loops.count)", "every": "\(self.interval)", "first": "\(first)", "metric": "canon_event_loop_delay_seconds",
            ])
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                guard !Task.isCancelled else { return }
                await self.probe()
            }
        }
    }

    /// Measures every loop once: how long a task put on it waited before it ran.
    @discardableResult
    public func probe() async -> [Duration] {
        var delays: [Duration] = []
        for (index, loop) in loops.enumerated() {
            let sent = now()
            let delay = await withCheckedContinuation { continuation in
                loop.execute { continuation.resume(returning: self.now() - sent) }
            }
            let nanoseconds = max(0, delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000)
            timers[index].recordNanoseconds(nanoseconds)
            let stalled = delay > warnAbove
            counts.withLock { $0.probes += 1; if stalled { $0.stalls += 1 } }
            if stalled {
                logger.warning("event loop delayed", metadata: [
                    "loop": "\(index)", "delay_ms": "\(nanoseconds / 1_000_000)",
                    "hint": "something ran synchronously on the event loop; every request of this process waited",
                ])
            }
            delays.append(delay)
        }
        return delays
    }

    /// Probes so far, and how many of them waited longer than `warnAbove`.
    public var totals: (probes: Int, stalls: Int) { counts.withLock { ($0.probes, $0.stalls) } }
}
