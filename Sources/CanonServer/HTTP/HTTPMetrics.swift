import Canon
import HTTPTypes
import Metrics

/// Request latency histograms, `canon_http_request_duration_seconds{route, method, status}`,
/// by route template (`/v1/cases/{id}`, so ids do not multiply the series; Hummingbird's `NotFound` for a
/// path no route serves), and derived reads by freshness, `canon_derived_reads_total{store,
/// freshness}` (`fresh`: nothing left to apply; `lagging`: behind, within the store's declared
/// p95; `stale`: lag above it; `not_yet_fresh`: a read that waited for `min_position` and was
/// answered 503): the stale-read rate is stale over all.
enum HTTPMetrics {
    private struct Key: Hashable, Sendable {
        var route: String
        var method: HTTPRequest.Method
        var status: Int
    }

    private static let timers = KeptValues<Key, Timer>(capacity: 4_096)

    static func record(route: String?, method: HTTPRequest.Method, status: HTTPResponse.Status, elapsed: Duration) {
        let key = Key(route: route ?? "unmatched", method: method, status: status.code)
        let timer: Timer
        if let kept = timers[key] {
            timer = kept
        } else {
            timer = Timer(
                label: "canon_http_request_duration_seconds",
                dimensions: [("route", key.route), ("method", method.rawValue), ("status", String(key.status))], preferredDisplayUnit: .seconds)
            timers.keep(timer, for: key)
        }
        timer.record(duration: elapsed)
    }

    enum ReadFreshness: String, Sendable {
        case fresh, lagging, stale
        case notYetFresh = "not_yet_fresh"
    }

    private static let reads = KeptValues<String, Counter>(capacity: 256)

    static func recordRead(store: String, _ freshness: ReadFreshness) {
        let key = store + "|" + freshness.rawValue
        let counter: Counter
        if let kept = reads[key] {
            counter = kept
        } else {
            counter = Counter(label: "canon_derived_reads_total", dimensions: [("store", store), ("freshness", freshness.rawValue)])
            reads.keep(counter, for: key)
        }
        counter.increment()
    }
}
