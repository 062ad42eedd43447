import Logging
import Metrics
import ServiceLifecycle

/// Continuous, rate-limited drift sampling as a service: every `interval`, each derived store is
/// checked on a random sample of keys (from both sides). Mismatches count in
/// `canon_drift_sample_mismatch_total{store}` (the `drift.sample.mismatch` signal), the last
/// result sets `canon_drift_differences{store}`, and each store keeps the summary, which its
/// health reads: a store with sampled drift is degraded.
public struct DriftSampler: Service {
    /// The checks to run each round; asked every round, so a blue-green switch is followed.
    public let checks: @Sendable () -> [DriftCheck]
    public let interval: Duration
    let logger: Logger

    public init(interval: Duration = .seconds(60), logger: Logger = Logger(label: "canon"), checks: @escaping @Sendable () -> [DriftCheck]) {
        self.interval = interval
        self.logger = logger
        self.checks = checks
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await sampleOnce()
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// One round over every store; a store that cannot be sampled now is logged and skipped
    /// this round.
    @discardableResult
    public func sampleOnce() async -> [DriftReport] {
        var reports: [DriftReport] = []
        for check in checks() {
            let name = check.store.identity.name
            do {
                let report = try await check.run(.sample)
                Counter(label: "canon_drift_sample_mismatch_total", dimensions: [("store", name)]).increment(by: report.count)
                Gauge(label: "canon_drift_differences", dimensions: [("store", name)]).record(report.count)
                if report.count > 0 {
                    logger.warning("drift sampled", metadata: [
                        "store": "\(name)", "differences": "\(report.count)", "keys": "\(report.keysCompared)",
                        "first": "\(report.differences.prefix(5).map { "\($0.key) \($0.kind.rawValue)" })",
                    ])
                } else {
                    logger.debug("drift sampled", metadata: ["store": "\(name)", "differences": "0", "keys": "\(report.keysCompared)"])
                }
                reports.append(report)
            } catch {
                logger.warning("drift sample failed", metadata: ["store": "\(name)", "error": "\(error)"])
            }
        }
        return reports
    }
}
