import Foundation

/// One entry of a per-key chronological read model (a case's timeline).
public struct TimelineEntry: Hashable, Codable, Sendable {
    public var key: String
    public var position: OutboxPosition
    /// Orders several entries made from one event.
    public var sequence: Int
    public var at: Date
    public var kind: String
    public var actor: String
    public var summary: String
    public var details: [String: String]

    public init(key: String, position: OutboxPosition, sequence: Int = 0, at: Date, kind: String, actor: String, summary: String, details: [String: String] = [:]) {
        self.key = key
        self.position = position
        self.sequence = sequence
        self.at = at
        self.kind = kind
        self.actor = actor
        self.summary = summary
        self.details = details
    }
}

/// A projection into a timeline store: the entries an event adds.
public protocol TimelineProjection: Sendable {
    var identity: ProjectionIdentity { get }
    /// The entries `event` adds (none when the projection ignores it).
    ///
    /// - Throws: when the event cannot be applied (a poison event).
    func entries(for event: EventEnvelope) throws -> [TimelineEntry]

    /// The key whose entries `event` removes (a purge), if any.
    func clearedKey(by event: EventEnvelope) -> String?

    /// The events the projection handles (no entries and no cleared key for every other one):
    /// the agent reads only these. Every event unless a projection says otherwise.
    var selection: EventSelection { get }
}

extension TimelineProjection {
    public var selection: EventSelection { .all }
    public func clearedKey(by event: EventEnvelope) -> String? { nil }

    /// What `events`, applied in order, leave: entries added, keys cleared.
    public func changes(for events: [EventEnvelope]) throws -> [TimelineChange] {
        var changes: [TimelineChange] = []
        for event in events {
            if let key = clearedKey(by: event) {
                changes.append(.clear(key))
            } else {
                let added = try entries(for: event)
                if !added.isEmpty { changes.append(.add(added)) }
            }
        }
        return changes
    }

    /// The entries a key's whole history leaves, keys cleared by a purge included (none left).
    public func replay(_ history: [EventEnvelope]) throws -> [TimelineEntry] {
        var entries: [TimelineEntry] = []
        for change in try changes(for: history) {
            switch change {
            case .add(let added): entries += added
            case .clear(let key): entries.removeAll { $0.key == key }
            }
        }
        return entries
    }
}

/// One step of applying events to a timeline.
public enum TimelineChange: Sendable {
    case add([TimelineEntry])
    case clear(String)
}
