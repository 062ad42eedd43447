import Foundation

/// How fresh a derived read is: answered on every derived read, in the body and as headers.
public struct Freshness: Hashable, Codable, Sendable {
    /// The last outbox position the store has applied.
    public var asOfPosition: OutboxPosition
    /// When the transaction of that position committed (nil before the first event).
    public var asOf: Date?
    /// How long the oldest event the store has not applied has been waiting; 0 when caught up.
    public var lagMilliseconds: Int64
    /// How many committed events the store has not applied.
    public var lagEvents: Int64

    public init(asOfPosition: OutboxPosition, asOf: Date?, lagMilliseconds: Int64, lagEvents: Int64) {
        self.asOfPosition = asOfPosition
        self.asOf = asOf
        self.lagMilliseconds = lagMilliseconds
        self.lagEvents = lagEvents
    }

    enum CodingKeys: String, CodingKey {
        case asOfPosition = "as_of_position", asOf = "as_of", lagMilliseconds = "lag_ms", lagEvents = "lag_events"
    }

    /// Measures a store at `checkpoint` against the canonical outbox.
    public static func measure(
        checkpoint: Checkpoint, source: any CanonicalStore, now: Date = Date()
    ) async throws -> Freshness {
        let head = try await source.headPosition()
        guard head > checkpoint.position else {
            return Freshness(asOfPosition: checkpoint.position, asOf: checkpoint.committedAt, lagMilliseconds: 0, lagEvents: 0)
        }
        let oldestPending = try await source.events(after: checkpoint.position, limit: 1).first
        let waited = oldestPending.map { max(0, now.timeIntervalSince($0.committedAt)) } ?? 0
        return Freshness(
            asOfPosition: checkpoint.position, asOf: checkpoint.committedAt, lagMilliseconds: Int64(waited * 1000),
            lagEvents: head.rawValue - checkpoint.position.rawValue)
    }
}

/// A projection's checkpoint: the last position it applied and when that position committed.
public struct Checkpoint: Hashable, Codable, Sendable {
    public var position: OutboxPosition
    public var committedAt: Date?

    public init(position: OutboxPosition, committedAt: Date?) {
        self.position = position
        self.committedAt = committedAt
    }

    public static let start = Checkpoint(position: .start, committedAt: nil)
}
