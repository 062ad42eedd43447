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

/// The rules every engine applies the same way when it commits units of work: expectations,
/// stream versions, positions and commit times. They live in one place, so engines differ only in
/// how they read and write.
public enum OutboxWriter {
    /// Applies `units` in order inside the caller's open transaction (engines with synchronous,
    /// serialized write transactions: SQLite, in-memory).
    ///
    /// - Throws: `CanonicalStoreError` or the engine's error; the caller must roll back.
    public static func write<Transaction: OutboxTransaction>(
        _ units: [UnitOfWork], in transaction: inout Transaction, now: Date, faults: FaultInjector?
    ) throws -> [CommitResult] {
        var versions: [StreamID: Int64] = [:]
        for stream in streams(of: units) {
            if let version = try transaction.currentVersion(of: stream) { versions[stream] = version }
        }
        let results = try number(units, versions: versions, last: try transaction.lastCommitted(), now: now)
        for (work, result) in zip(units, results) {
            for mutation in work.mutations {
                try transaction.apply(mutation)
            }
            try faults?(.afterMutations)
            var last: [StreamID: Int64] = [:]
            for envelope in result.events {
                try transaction.append(envelope)
                last[envelope.streamID] = envelope.streamVersion
            }
            for (stream, version) in last {
                try transaction.setVersion(version, of: stream)
            }
        }
        try faults?(.beforeCommit)
        return results
    }

    /// Every stream `units` expect a version of or append to, each once, in first-seen order.
    public static func streams(of units: [UnitOfWork]) -> [StreamID] {
        var seen: Set<StreamID> = []
        var streams: [StreamID] = []
        for work in units {
            for stream in work.expectations.map(\.streamID) + work.events.map(\.streamID) where seen.insert(stream).inserted {
                streams.append(stream)
            }
        }
        return streams
    }

    /// Checks every expectation and numbers every event of `units`, in order: a pure function of
    /// the streams' current versions (`versions`, absent: no events) and the last committed event.
    ///
    /// Positions continue from `last` without gaps. Commit times never go backwards, even if the
    /// wall clock does, so time order agrees with position order. A unit sees the versions that
    /// the units before it in the batch appended.
    ///
    /// - Throws: `CanonicalStoreError.streamVersionConflict` for the first expectation not met.
    public static func number(
        _ units: [UnitOfWork], versions: [StreamID: Int64], last: (position: OutboxPosition, committedAt: Date)?, now: Date
    ) throws -> [CommitResult] {
        var versions = versions
        var position = last?.position ?? .start
        let committedAt = Timestamp.stored(max(now, last?.committedAt ?? now))
        var results: [CommitResult] = []
        results.reserveCapacity(units.count)
        for work in units {
            for expectation in work.expectations {
                let current = versions[expectation.streamID]
                guard expectation.expected.isSatisfied(by: current) else {
                    throw CanonicalStoreError.streamVersionConflict(expectation.streamID, expected: expectation.expected, actual: current)
                }
            }
            var envelopes: [EventEnvelope] = []
            envelopes.reserveCapacity(work.events.count)
            for event in work.events {
                let version = (versions[event.streamID] ?? 0) + 1
                versions[event.streamID] = version
                position = position.next
                envelopes.append(EventEnvelope(
                    position: position, streamID: event.streamID, streamVersion: version, type: event.type,
                    schemaVersion: event.schemaVersion, payload: event.payload, actor: work.metadata.actor,
                    correlationID: work.metadata.correlationID, causationID: work.metadata.causationID,
                    occurredAt: Timestamp.stored(event.occurredAt), committedAt: committedAt, priority: event.priority))
            }
            results.append(CommitResult(events: envelopes, position: position))
        }
        return results
    }
}
