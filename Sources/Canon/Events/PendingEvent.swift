import Foundation

/// An event that a unit of work will append to the outbox when it commits.
///
/// The store assigns the position, the stream version and the commit time; the unit of work's
/// metadata supplies the actor and the correlation and causation ids.
public struct PendingEvent: Hashable, Sendable {
    public var streamID: StreamID
    public var type: String
    public var schemaVersion: Int
    public var payload: Data
    public var occurredAt: Date
    public var priority: Bool

    public init(streamID: StreamID, type: String, schemaVersion: Int = 1, payload: Data, occurredAt: Date, priority: Bool = false) {
        self.streamID = streamID
        self.type = type
        self.schemaVersion = schemaVersion
        self.payload = payload
        self.occurredAt = occurredAt
        self.priority = priority
    }

    /// An event whose payload is `payload` encoded as JSON with sorted keys (by the flat writer
    /// when the payload is `FlatEncodable`: the same bytes, without `JSONEncoder`'s cost).
    ///
    /// - Throws: `EncodingError` when the payload cannot be encoded.
    public init(
        streamID: StreamID, type: String, schemaVersion: Int = 1, encoding payload: some Encodable,
        occurredAt: Date, priority: Bool = false
    ) throws {
        self.init(
            streamID: streamID, type: type, schemaVersion: schemaVersion,
            payload: try Self.encode(payload), occurredAt: occurredAt, priority: priority)
    }

    /// `payload` as an event's JSON.
    private static func encode(_ payload: some Encodable) throws -> Data {
        guard let flat = payload as? any FlatEncodable else { return try encoder.encode(payload) }
        var writer = FlatJSONWriter(escapingSlashes: false)
        flat.encode(into: &writer)
        return writer.finish()
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = Timestamp.encodingStrategy
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = Timestamp.decodingStrategy
        return decoder
    }()
}
