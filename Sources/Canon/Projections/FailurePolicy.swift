import Foundation

/// What a projection agent does when applying events fails: explicit and visible.
public struct FailurePolicy: Hashable, Sendable {
    /// What happens to an event that still fails after `maxAttempts`.
    public enum Exhausted: String, Hashable, Sendable, Codable {
        /// Park it in the dead-letter store and go on with later events.
        case deadLetter = "dead-letter"
        /// Stop the projection until an operator resumes it.
        case pause
    }

    public var maxAttempts: Int
    public var onExhausted: Exhausted
    /// The first retry waits about this long; each next one twice as long, up to `maxBackoff`.
    public var initialBackoff: Duration
    public var maxBackoff: Duration

    public init(maxAttempts: Int = 5, onExhausted: Exhausted = .deadLetter, initialBackoff: Duration = .milliseconds(50), maxBackoff: Duration = .seconds(5)) {
        self.maxAttempts = max(1, maxAttempts)
        self.onExhausted = onExhausted
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    /// The wait before retry number `attempt` (1-based): exponential with full jitter, so that
    /// agents failing together do not retry in lockstep.
    public func backoff(attempt: Int, random: inout some RandomNumberGenerator) -> Duration {
        let exponent = min(attempt - 1, 20)
        let ceiling = min(initialBackoff * (1 << exponent), maxBackoff)
        let nanos = ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000
        guard nanos > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: nanos / 2...nanos, using: &random))
    }
}
