import Foundation

/// An event as committed to the outbox: the only thing derived stores ever learn from.
///
/// The envelope is written in the same transaction as the domain rows it describes, so an
/// envelope exists if and only if its change committed.
public struct EventEnvelope: Hashable, Codable, Sendable {
    /// Global outbox position: gap-free, strictly increasing in commit order.
    public var position: OutboxPosition
    /// The aggregate the event belongs to.
    public var streamID: StreamID
    /// The event's number within its stream, starting at 1; `(streamID, streamVersion)` is unique.
    public var streamVersion: Int64
    /// The event type, e.g. `case.opened`.
    public var type: String
    /// The version of the payload's schema, so consumers can upcast old events.
    public var schemaVersion: Int
    /// The payload as UTF-8 JSON.
    public var payload: Data
    /// Who caused the change (a principal id, or `system`).
    public var actor: String
    /// Ties together every event caused by one request.
    public var correlationID: String?
    /// The event or request that directly caused this one.
    public var causationID: String?
    /// When the change happened in the domain.
    public var occurredAt: Date
    /// When the transaction that wrote the event committed.
    public var committedAt: Date
    /// Permission and deletion changes travel a priority path to derived stores.
    public var priority: Bool

    public init(
        position: OutboxPosition, streamID: StreamID, streamVersion: Int64, type: String,
        schemaVersion: Int, payload: Data, actor: String, correlationID: String?,
        causationID: String?, occurredAt: Date, committedAt: Date, priority: Bool
    ) {
        self.position = position
        self.streamID = streamID
        self.streamVersion = streamVersion
        self.type = type
        self.schemaVersion = schemaVersion
        self.payload = payload
        self.actor = actor
        self.correlationID = correlationID
        self.causationID = causationID
        self.occurredAt = occurredAt
        self.committedAt = committedAt
        self.priority = priority
    }

    /// Decodes the payload as `T`.
    ///
    /// A type that is also `FlatDecodable` is read by the flat JSON reader first (projections
    /// decode every event they apply; `JSONDecoder` was the largest share of a catch-up); a
    /// payload it does not take goes through `JSONDecoder`, which gives the typed error.
    ///
    /// - Throws: `DecodingError` when the payload does not match `T`.
    public func decodePayload<T: Decodable>(as type: T.Type = T.self) throws -> T {
        if let flat = T.self as? any FlatDecodable.Type, let object = FlatObject(payload), let value = flat.init(flat: object) as? T {
            return value
        }
        return try PendingEvent.decoder.decode(T.self, from: payload)
    }

    /// `decodePayload` for a type known to read flat JSON: the same result, without the dynamic
    /// casts of the general one, or the box (a heap allocation for a type as large as a case)
    /// its value went through on the way back to `T`.
    public func decodePayload<T: FlatDecodable>(as type: T.Type = T.self) throws -> T {
        if let object = FlatObject(payload), let value = T(flat: object) {
            return value
        }
        return try PendingEvent.decoder.decode(T.self, from: payload)
    }
}
