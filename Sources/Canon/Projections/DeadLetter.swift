import Foundation

/// An event a projection could not apply after its attempts, parked so later events go on.
public struct DeadLetter: Hashable, Codable, Sendable {
    public enum State: String, Hashable, Codable, Sendable {
        /// Waiting for an operator.
        case parked
        /// Re-applied successfully after a fix.
        case retried
        /// Deliberately left unapplied by an operator.
        case skipped
    }

    public var projection: ProjectionIdentity
    public var position: OutboxPosition
    public var streamID: StreamID
    public var type: String
    public var error: String
    public var attempts: Int
    public var firstFailedAt: Date
    public var lastFailedAt: Date
    public var state: State

    public init(
        projection: ProjectionIdentity, position: OutboxPosition, streamID: StreamID, type: String, error: String,
        attempts: Int, firstFailedAt: Date, lastFailedAt: Date, state: State = .parked
    ) {
        self.projection = projection
        self.position = position
        self.streamID = streamID
        self.type = type
        self.error = error
        self.attempts = attempts
        self.firstFailedAt = firstFailedAt
        self.lastFailedAt = lastFailedAt
        self.state = state
    }

    enum CodingKeys: String, CodingKey {
        case projection, position, type, error, attempts, state
        case streamID = "stream_id", firstFailedAt = "first_failed_at", lastFailedAt = "last_failed_at"
    }
}
