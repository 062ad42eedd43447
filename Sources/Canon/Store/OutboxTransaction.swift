import Foundation

/// The primitive operations an engine offers inside one open write transaction.
///
/// Engines implement these few operations; `OutboxWriter` holds the rules that every engine
/// must apply the same way (expectations, stream versions, positions, commit times, fault
/// points), so the rules live in one place.
public protocol OutboxTransaction {
    /// The version of the stream's last event, or nil.
    mutating func currentVersion(of stream: StreamID) throws -> Int64?
    /// Records the stream's new version.
    mutating func setVersion(_ version: Int64, of stream: StreamID) throws
    /// Applies one row mutation.
    mutating func apply(_ mutation: RowMutation) throws
    /// The last committed event's position and commit time, or nil when the outbox is empty.
    mutating func lastCommitted() throws -> (position: OutboxPosition, committedAt: Date)?
    /// Appends one fully numbered event to the outbox.
    mutating func append(_ event: EventEnvelope) throws
}

/// Writes units of work through an `OutboxTransaction`, the same way for every engine.
public enum OutboxWriter {
    /// Applies `units` in order inside the caller's open transaction.
    ///
    /// Positions continue from the last committed event without gaps. Commit times never go
    /// backwards, even if the wall clock does, so time order agrees with position order.
    ///
    /// - Throws: `CanonicalStoreError` or the engine's error; the caller must roll back.
    public static func write<Transaction: OutboxTransaction>(
        _ units: [UnitOfWork], in transaction: inout Transaction, now: Date, faults: FaultInjector?
    ) throws -> [CommitResult] {
        let last = try transaction.lastCommitted()
        var position = last?.position ?? .start
        let committedAt = Timestamp.stored(max(now, last?.committedAt ?? now))
        var results: [CommitResult] = []
        results.reserveCapacity(units.count)
        for work in units {
            // Versions read for the expectations number this unit's first events too.
            var checked: [StreamID: Int64] = [:]
            for expectation in work.expectations {
                let current = try transaction.currentVersion(of: expectation.streamID)
                guard expectation.expected.isSatisfied(by: current) else {
                    throw CanonicalStoreError.streamVersionConflict(expectation.streamID, expected: expectation.expected, actual: current)
                }
                checked[expectation.streamID] = current ?? 0
            }
            for mutation in work.mutations {
                try transaction.apply(mutation)
            }
            try faults?(.afterMutations)
            var versions: [StreamID: Int64] = [:]
            var envelopes: [EventEnvelope] = []
            envelopes.reserveCapacity(work.events.count)
            for event in work.events {
                let version: Int64
                if let known = versions[event.streamID] {
                    version = known + 1
                } else if let current = checked[event.streamID] {
                    version = current + 1
                } else {
                    version = (try transaction.currentVersion(of: event.streamID) ?? 0) + 1
                }
                versions[event.streamID] = version
                position = position.next
                let envelope = EventEnvelope(
                    position: position, streamID: event.streamID, streamVersion: version, type: event.type,
                    schemaVersion: event.schemaVersion, payload: event.payload, actor: work.metadata.actor,
                    correlationID: work.metadata.correlationID, causationID: work.metadata.causationID,
                    occurredAt: Timestamp.stored(event.occurredAt), committedAt: committedAt, priority: event.priority)
                try transaction.append(envelope)
                envelopes.append(envelope)
            }
            for (stream, version) in versions {
                try transaction.setVersion(version, of: stream)
            }
            results.append(CommitResult(events: envelopes, position: position))
        }
        try faults?(.beforeCommit)
        return results
    }
}
