import Foundation

/// One document of a full-text search store, as a projection folds it from events.
public struct SearchDocument: Hashable, Codable, Sendable {
    public var key: String
    /// Searchable text by field (the fields the schema declares).
    public var text: [String: String]
    /// Exact-match fields used for filters and facet counts.
    public var facets: [String: String]
    /// Who may see the document: its team, whether it is restricted, and the clearance a team
    /// member needs while it is.
    public var team: String
    public var restricted: Bool
    public var clearance: Int
    /// Orders results when there is no text query (newest first).
    public var sortTime: Date
    /// What a result shows, as JSON.
    public var display: Data

    public init(
        key: String, text: [String: String], facets: [String: String], team: String, restricted: Bool, clearance: Int = 1, sortTime: Date,
        display: Data
    ) {
        self.key = key
        self.text = text
        self.facets = facets
        self.team = team
        self.restricted = restricted
        self.clearance = clearance
        self.sortTime = sortTime
        self.display = display
    }
}

/// The shape of a search store: its text fields with their bm25 weights, and its facet fields.
public struct SearchSchema: Hashable, Sendable {
    public var textFields: [TextField]
    public var facetFields: [String]

    public init(textFields: [TextField], facetFields: [String]) {
        self.textFields = textFields
        self.facetFields = facetFields
    }

    public struct TextField: Hashable, Sendable {
        public var name: String
        public var weight: Double

        public init(_ name: String, weight: Double = 1) {
            self.name = name
            self.weight = weight
        }
    }
}

/// A projection into a search store: which document an event touches and how it changes it.
///
/// Folding must be deterministic: the same events in the same order give the same document.
public protocol DocumentProjection: Sendable {
    var identity: ProjectionIdentity { get }
    var schema: SearchSchema { get }
    /// The key of the document `event` changes, or nil when the projection ignores the event.
    func documentKey(for event: EventEnvelope) -> String?
    /// Whether `documentKey(for:)` depends on the event's stream alone (each document is one
    /// stream's aggregate): the events of a stream that come together in a batch then share the
    /// key made for the first of them. False unless a projection says so.
    var keysFollowStreams: Bool { get }
    /// The events the projection handles (`documentKey` is nil for every other one): the agent
    /// reads only these. Every event unless a projection says otherwise.
    var selection: EventSelection { get }
    /// `event` folded into `current` (nil when there is no document yet); nil deletes it.
    ///
    /// - Throws: when the event cannot be applied (a poison event).
    func fold(_ event: EventEnvelope, into current: SearchDocument?) throws -> SearchDocument?
    /// `events` (of one document, in order) folded into `current`. Override when folding several
    /// events at once is cheaper than one at a time.
    func fold(_ events: [EventEnvelope], into current: SearchDocument?) throws -> SearchDocument?
    /// The permission change a priority event makes, applied ahead of the ordinary events on the
    /// priority path; nil for every other event.
    func securityChange(for event: EventEnvelope) throws -> SecurityChange?
}

/// What a permission change does to a document's visibility, applied on the priority path.
public struct SecurityChange: Hashable, Sendable {
    public var key: String
    /// Nil keeps the stored value (each change names only what it changes).
    public var restricted: Bool?
    public var clearance: Int?
    public var team: String?

    public init(key: String, restricted: Bool? = nil, clearance: Int? = nil, team: String? = nil) {
        self.key = key
        self.restricted = restricted
        self.clearance = clearance
        self.team = team
    }
}

extension DocumentProjection {
    public func securityChange(for event: EventEnvelope) throws -> SecurityChange? { nil }

    public func fold(_ events: [EventEnvelope], into current: SearchDocument?) throws -> SearchDocument? {
        var document = current
        for event in events { document = try fold(event, into: document) }
        return document
    }
}

/// Who is searching: results and facet counts are filtered for them inside the engine.
public enum SearchVisibility: Hashable, Sendable {
    /// Every document (legal, admin).
    case everything
    /// Unrestricted documents, plus restricted ones of these teams (whatever their clearance).
    case unrestrictedAndTeams([String])
    /// Unrestricted documents, restricted ones of `supervised` teams, and restricted ones of
    /// `teams` that need no more than `clearance`.
    case scoped(teams: [String], clearance: Int, supervised: [String])
}

/// A search request.
public struct SearchQuery: Hashable, Sendable {
    public var text: String?
    public var filters: [String: String]
    public var limit: Int
    public var cursor: String?
    public var visibility: SearchVisibility
    /// Ask for facet counts (each facet honours every filter except its own).
    public var facets: Bool

    public init(text: String? = nil, filters: [String: String] = [:], limit: Int = 20, cursor: String? = nil,
                visibility: SearchVisibility = .everything, facets: Bool = true) {
        self.text = text
        self.filters = filters
        self.limit = limit
        self.cursor = cursor
        self.visibility = visibility
        self.facets = facets
    }
}

/// A page of search results.
public struct SearchResults: Sendable {
    public struct Hit: Sendable {
        public var key: String
        public var score: Double?
        /// Highlighted fragment with `<mark>…</mark>` around matches.
        public var snippet: String?
        public var display: Data

        public init(key: String, score: Double?, snippet: String?, display: Data) {
            self.key = key
            self.score = score
            self.snippet = snippet
            self.display = display
        }
    }

    public var hits: [Hit]
    public var facets: [String: [String: Int]]
    /// Pass back as `cursor` for the next page; nil on the last page.
    public var nextCursor: String?
    /// Set when the words found too little and a spelling correction was used instead.
    public var correctedQuery: String?

    public init(hits: [Hit], facets: [String: [String: Int]], nextCursor: String?, correctedQuery: String?) {
        self.hits = hits
        self.facets = facets
        self.nextCursor = nextCursor
        self.correctedQuery = correctedQuery
    }
}

extension DocumentProjection {
    public var keysFollowStreams: Bool { false }
    public var selection: EventSelection { .all }

    /// The events of `events` this projection handles, grouped by document in first-seen order,
    /// each group in position order: several events of one document in a batch fold into one
    /// document write.
    public func byDocument(_ events: [EventEnvelope]) -> [(key: String, events: [EventEnvelope])] {
        // Sized for one document per event, the most there can be: a catch-up batch's index
        // would otherwise rehash every key at each doubling.
        var groups: [(key: String, events: [EventEnvelope])] = []
        groups.reserveCapacity(events.count)
        var index: [String: Int] = [:]
        index.reserveCapacity(events.count)
        var lastStream: StreamID?
        var lastKey: String?
        for event in events {
            let key: String?
            if keysFollowStreams, event.streamID == lastStream {
                key = lastKey
            } else {
                key = documentKey(for: event)
                (lastStream, lastKey) = (event.streamID, key)
            }
            guard let key else { continue }
            // A document's events usually come together: the last group is checked first.
            if let last = groups.indices.last, groups[last].key == key {
                groups[last].events.append(event)
            } else if let group = index[key] {
                groups[group].events.append(event)
            } else {
                index[key] = groups.count
                groups.append((key, [event]))
            }
        }
        return groups
    }
}
