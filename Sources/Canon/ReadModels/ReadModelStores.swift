/// A search store that can be queried: what the search route reads.
public protocol SearchStore: ProjectionStore {
    /// - Throws: `SearchError` for a bad cursor or an unknown filter field.
    func search(_ query: SearchQuery) async throws -> SearchResults

    /// The stored document of `key`, if any.
    func document(_ key: String) async throws -> SearchDocument?

    /// The number of documents.
    func count() async throws -> Int
}

/// A timeline store that can be read: what the timeline route reads.
public protocol TimelineStore: ProjectionStore {
    /// The entries of `key`, oldest first, at most `limit`.
    func entries(key: String, limit: Int) async throws -> [TimelineEntry]
}

/// Why a search request was refused.
public struct SearchError: Error, Hashable, Sendable, CustomStringConvertible {
    public let field: String
    public let message: String

    public init(field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { message }
}
