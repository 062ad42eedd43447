/// An engine-neutral read of canonical rows: equality filters, order and limit.
///
/// Deliberately small: canonical reads fetch aggregates by key and short lists by parent key.
/// Anything richer belongs in a derived store.
public struct RowQuery: Hashable, Sendable {
    public var table: String
    public var filter: Row
    public var order: [Ordering]
    public var limit: Int?

    public init(table: String, filter: Row = [:], order: [Ordering] = [], limit: Int? = nil) {
        self.table = table
        self.filter = filter
        self.order = order
        self.limit = limit
    }

    public struct Ordering: Hashable, Sendable {
        public var column: String
        public var ascending: Bool

        public init(_ column: String, ascending: Bool = true) {
            self.column = column
            self.ascending = ascending
        }
    }
}
