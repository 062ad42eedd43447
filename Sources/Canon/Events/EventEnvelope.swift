import Foundation

/// An event as committed to the outbox: the only thing derived stores ever learn from.
///
/// The envelope is written in the same transaction as the domain rows it describes, so an
/// envelope exists if and only if its change committed.
///
/// Its fields live in one shared, copy-on-write box: agents copy events by the hundred
/// thousand (grouping a batch by document, handing it to a store, freeing it), and a copy of
/// the box is one reference count, where the fields themselves hold up to six (the stream, the
/// type, the payload, the actor, the correlation and causation ids).
public struct EventEnvelope: Hashable, Codable, Sendable, CustomReflectable {
    /// Global outbox position: gap-free, strictly increasing in commit order.
    public var position: OutboxPosition {
        get { box.fields.position }
        set { unique().fields.position = newValue }
    }
    /// The aggregate the event belongs to.
    public var streamID: StreamID {
        get { box.fields.streamID }
        set { unique().fields.streamID = newValue }
    }
    /// The event's number within its stream, starting at 1; `(streamID, streamVersion)` is unique.
    public var streamVersion: Int64 {
        get { box.fields.streamVersion }
        set { unique().fields.streamVersion = newValue }
    }
    /// The event type, e.g. `case.opened`.
    public var type: String {
        get { box.fields.type }
        set { unique().fields.type = newValue }
    }
    /// The version of the payload's schema, so consumers can upcast old events.
    public var schemaVersion: Int {
        get { box.fields.schemaVersion }
        set { unique().fields.schemaVersion = newValue }
    }
    /// The payload as UTF-8 JSON.
    public var payload: Data {
        get { box.fields.payload }
        set { unique().fields.payload = newValue }
    }
    /// Who caused the change (a principal id, or `system`).
    public var actor: String {
        get { box.fields.actor }
        set { unique().fields.actor = newValue }
    }
    /// Ties together every event caused by one request.
    public var correlationID: String? {
        get { box.fields.correlationID }
        set { unique().fields.correlationID = newValue }
    }
    /// The event or request that directly caused this one.
    public var causationID: String? {
        get { box.fields.causationID }
        set { unique().fields.causationID = newValue }
    }
    /// When the change happened in the domain.
    public var occurredAt: Date {
        get { box.fields.occurredAt }
        set { unique().fields.occurredAt = newValue }
    }
    /// When the transaction that wrote the event committed.
    public var committedAt: Date {
        get { box.fields.committedAt }
        set { unique().fields.committedAt = newValue }
    }
    /// Permission and deletion changes travel a priority path to derived stores.
    public var priority: Bool {
        get { box.fields.priority }
        set { unique().fields.priority = newValue }
    }

    private var box: Box

    public init(
        position: OutboxPosition, streamID: StreamID, streamVersion: Int64, type: String,
        schemaVersion: Int, payload: Data, actor: String, correlationID: String?,
        causationID: String?, occurredAt: Date, committedAt: Date, priority: Bool
    ) {
        box = Box(Fields(
            position: position, streamID: streamID, streamVersion: streamVersion, type: type, schemaVersion: schemaVersion,
            payload: payload, actor: actor, correlationID: correlationID, causationID: causationID, occurredAt: occurredAt,
            committedAt: committedAt, priority: priority))
    }

    private var fields: Fields { box.fields }

    /// The box, copied first when another envelope shares it.
    private mutating func unique() -> Box {
        if !isKnownUniquelyReferenced(&box) { box = Box(box.fields) }
        return box
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

    // MARK: - Equality, hashing and coding: those of the fields, as when they were stored here

    public static func == (lhs: EventEnvelope, rhs: EventEnvelope) -> Bool { lhs.box === rhs.box || lhs.fields == rhs.fields }

    public func hash(into hasher: inout Hasher) { fields.hash(into: &hasher) }

    public init(from decoder: any Decoder) throws { box = Box(try Fields(from: decoder)) }

    public func encode(to encoder: any Encoder) throws { try fields.encode(to: encoder) }

    /// Printed (and dumped) as its fields, not as the box that holds them.
    public var customMirror: Mirror { Mirror(reflecting: fields) }

    private struct Fields: Hashable, Codable {
        var position: OutboxPosition
        var streamID: StreamID
        var streamVersion: Int64
        var type: String
        var schemaVersion: Int
        var payload: Data
        var actor: String
        var correlationID: String?
        var causationID: String?
        var occurredAt: Date
        var committedAt: Date
        var priority: Bool
    }

    /// Its fields change only through `unique()`, on a box no other envelope holds.
    private final class Box: @unchecked Sendable {
        var fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }
}
