import Canon
import Synchronization
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

    /// Publishes each declared store's health (`canon_store_health`: 0 ok, 1 lagging, 2 degraded,
    /// -1 planned) and lag (`canon_store_lag_seconds`), as judged against its freshness contract.
    public static func record(_ statuses: [PortfolioStoreStatus]) {
        bootstrap()
        publishing.withLock { _ in publish(statuses) }
    }

    /// The Prometheus text of the registry with `statuses` published first, in one step, so a
    /// scrape shows the health its own server judged even when several servers share the process
    /// (as in tests).
    /// - Parameter readable: whether `statuses` were judged (`canon_store_status_readable`).
    public static func scrape(_ statuses: [PortfolioStoreStatus], readable: Bool = true) -> [UInt8] {
        bootstrap()
        return publishing.withLock { _ in
            publish(statuses)
            Gauge(label: "canon_store_status_readable").record(readable ? 1 : 0)
            return registry.emitToBuffer()
        }
    }

    private static let publishing = Mutex(())

    /// How long each store's last rebuild took (`canon_rebuild_duration_seconds`), by store name.
    public static func recordRebuilds(_ seconds: [String: Double]) {
        bootstrap()
        for (store, value) in seconds { Gauge(label: "canon_rebuild_duration_seconds", dimensions: [("store", store)]).record(value) }
    }

    /// Store sizes in bytes by store name (`canon_store_bytes`), published at each scrape.
    public static func recordSizes(_ sizes: [String: Int64]) {
        bootstrap()
        for (store, bytes) in sizes { Gauge(label: "canon_store_bytes", dimensions: [("store", store)]).record(Double(bytes)) }
    }

    private static func publish(_ statuses: [PortfolioStoreStatus]) {
        for status in statuses {
            Gauge(label: "canon_store_health", dimensions: [("store", status.name), ("role", status.role)]).record(status.health.gaugeValue)
            if let freshness = status.freshness {
                Gauge(label: "canon_store_lag_seconds", dimensions: [("store", status.name)]).record(Double(freshness.lagMilliseconds) / 1000)
            }
        }
    }
}
