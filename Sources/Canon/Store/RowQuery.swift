/// An engine-neutral read of canonical rows: equality filters, one optional set membership
/// (`column IN values`, to read a batch of keys in one statement), order and limit.
///
/// Deliberately small: canonical reads fetch aggregates by key and short lists by parent key.
/// Anything richer belongs in a derived store.
public struct RowQuery: Hashable, Sendable {
    public var table: String
    public var filter: Row
    public var order: [Ordering]
    public var limit: Int?
    /// Rows skipped, in `order`, before the first returned (a random offset samples rows
    /// uniformly, whatever the distribution of their keys).
    public var offset: Int?
    /// Rows whose `column` is one of `values` (an empty list matches nothing).
    public var anyOf: AnyOf?
    /// Rows whose `column` sorts after `value`: a keyset page of a scan in `column` order.
    public var after: After?
    /// Only these columns of each row (nil: every column); a scan of a few columns reads less.
    public var columns: [String]?

    public struct After: Hashable, Sendable {
        public var column: String
        public var value: CanonValue

        public init(_ column: String, _ value: CanonValue) {
            self.column = column
            self.value = value
        }
    }

    public struct AnyOf: Hashable, Sendable {
        public var column: String
        public var values: [CanonValue]

        public init(_ column: String, _ values: [CanonValue]) {
            self.column = column
            self.values = values
        }
    }

    public init(
        table: String, filter: Row = [:], anyOf: AnyOf? = nil, after: After? = nil, columns: [String]? = nil, order: [Ordering] = [], limit: Int? = nil,
        offset: Int? = nil
    ) {
        self.table = table
        self.columns = columns
        self.filter = filter
        self.anyOf = anyOf
        self.after = after
        self.order = order
        self.limit = limit
        self.offset = offset
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
