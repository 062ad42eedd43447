import Hummingbird

/// Checks of a request's query string shared by the routes: a parameter a route does not know,
/// or one given twice or empty, is refused (422 naming it), never ignored.
enum QueryParameters {
    /// Refuses a query parameter the route does not know (a misspelt filter must not widen the
    /// answer to everything unfiltered).
    static func requireKnown<Parameters: Sequence>(_ parameters: Parameters, _ known: Set<String>) throws
    where Parameters.Element == (key: Substring, value: Substring) {
        for (key, _) in parameters where !known.contains(String(key)) {
            throw ProblemDetails.invalidBody("unknown query parameter \(key); known: \(known.sorted().joined(separator: ", "))", field: String(key))
        }
    }

    /// Refuses any query parameter, for a route that takes none (a typo such as `?mdoe=sample`
    /// is answered 422, not ignored).
    static func requireNone(_ request: Request) throws {
        guard let query = request.uri.query, !query.isEmpty else { return }
        try requireKnown(request.uri.queryParameters, [])
    }

    /// The one value of `field` among `values` (all that the query gave it), nil when absent;
    /// given twice (with different values) or empty, refused.
    static func single(_ values: [Substring], _ field: String) throws -> Substring? {
        guard let first = values.first else { return nil }
        guard values.allSatisfy({ $0 == first }) else {
            throw ProblemDetails.invalidBody("\(field) is given more than once; one value is allowed", field: field)
        }
        guard !first.isEmpty else { throw ProblemDetails.invalidBody("\(field) is empty; leave it out to match any", field: field) }
        return first
    }
}
