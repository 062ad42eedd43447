import Metrics
import Prometheus

/// The process's Prometheus registry, bootstrapped into swift-metrics once: every metric the
/// runtime records (projection lag, apply duration, errors, dead letters, outbox writes, HTTP
/// request durations) is served at `/metrics`.
public enum CanonMetrics {
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    /// Installs the registry as the metrics backend (idempotent).
    public static func bootstrap() { _ = registry }
}
