/// Facet counts in which each facet honours every filter except its own, from one grouped pass.
///
/// The engine groups the matches (text, visibility, and the filters on fields that are not
/// counted) by every counted field at once, and hands each combination of values with its count
/// to `add`; each facet then sums the combinations that pass the other facets' filters.
public struct FacetCounts: Sendable {
    /// The fields counted, in the order the engine groups by them.
    public let counted: [String]
    /// Filters the engine applies in its grouped query (on fields not counted), by field.
    public let filtersInQuery: [(field: String, value: String)]
    private let filtersInCounting: [(field: String, value: String)]
    public private(set) var counts: [String: [String: Int]]

    /// - Parameter uncounted: facet fields used for filtering only (no counts are returned).
    public init(schema: SearchSchema, filters: [String: String], uncounted: Set<String> = ["team", "assignee"]) {
        let counted = schema.facetFields.filter { !uncounted.contains($0) }
        let sorted = filters.sorted { $0.key < $1.key }.map { (field: $0.key, value: $0.value) }
        self.counted = counted
        filtersInQuery = sorted.filter { !counted.contains($0.field) }
        filtersInCounting = sorted.filter { counted.contains($0.field) }
        counts = Dictionary(uniqueKeysWithValues: counted.map { ($0, [:]) })
    }

    /// Adds `count` matches whose counted fields hold `values` (in `counted` order).
    public mutating func add(values: [String?], count: Int) {
        for (index, facet) in counted.enumerated() {
            guard let value = values[index] else { continue }
            let passes = filtersInCounting.allSatisfy { filter in
                filter.field == facet || values[counted.firstIndex(of: filter.field)!] == filter.value
            }
            if passes { counts[facet]![value, default: 0] += count }
        }
    }
}
