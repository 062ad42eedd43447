import Hummingbird
import Synchronization

/// The registered routes, so an unmatched request can be told whether its path exists with
/// other methods (405 with `Allow`) or not at all (404).
final class RouteTable: Sendable {
    private let routes = Mutex<[(segments: [Substring], method: String)]>([])

    func record(_ descriptions: [(path: String, method: String)]) {
        routes.withLock { $0 = descriptions.map { (path: Substring($0.path).split(separator: "/"), method: $0.method) }.map { ($0.path, $0.method) } }
    }

    /// The methods registered for `path`, sorted.
    func methods(for path: String) -> [String] {
        let segments = Substring(path).split(separator: "/")
        let matching = routes.withLock { routes in
            routes.filter { route in
                route.segments.count == segments.count
                    && zip(route.segments, segments).allSatisfy { pattern, actual in pattern.hasPrefix("{") || pattern == actual }
            }.map(\.method)
        }
        return Array(Set(matching)).sorted()
    }
}
