/// Retrying and skipping dead letters: the same logic for the HTTP API and the CLI.
public enum DeadLetterOperations {
    /// Re-applies a parked event by refolding its whole stream (up to the checkpoint) from the
    /// outbox, so the event lands once and in its stream's order even though later events were
    /// applied meanwhile.
    ///
    /// - Throws: `ProjectionError.unknownDeadLetter`, or the projection's error when it still
    ///   fails (the letter then stays parked).
    public static func retry(position: OutboxPosition, in store: any ProjectionStore, source: any CanonicalStore) async throws -> DeadLetter {
        guard var letter = try await store.deadLetters().first(where: { $0.position == position }) else {
            throw ProjectionError.unknownDeadLetter(store.identity, position: position)
        }
        do {
            try await refold(stream: letter.streamID, in: store, source: source)
        } catch let error as ProjectionError {
            throw error
        } catch {
            throw ProjectionError.stillFailing(store.identity, position: position, error: error)
        }
        try await store.setDeadLetterState(position: position, to: .retried)
        letter.state = .retried
        return letter
    }

    /// Re-derives everything `stream` contributes to `store` from its outbox history up to the
    /// store's checkpoint, through the store's normal refold, so the checkpoint rules hold while
    /// the agent runs: when the agent moves meanwhile, the history is loaded again. Used to retry
    /// dead letters and for targeted repair of one key.
    ///
    /// - Throws: `ProjectionError`, or the projection's own error when the stream cannot be folded.
    public static func refold(stream: StreamID, in store: any ProjectionStore, source: any CanonicalStore) async throws {
        var attempts = 0
        while true {
            attempts += 1
            let checkpoint = try await store.checkpoint().position
            let events = try await source.events(in: stream, through: checkpoint)
            do {
                try await store.refold(stream: stream, events: events, at: checkpoint)
                return
            } catch let error as ProjectionError where error.code == .checkpointConflict && attempts < 20 {
                continue
            }
        }
    }

    /// Leaves a parked event unapplied, on purpose, and records that decision.
    public static func skip(position: OutboxPosition, in store: any ProjectionStore) async throws -> DeadLetter {
        guard var letter = try await store.deadLetters().first(where: { $0.position == position }) else {
            throw ProjectionError.unknownDeadLetter(store.identity, position: position)
        }
        try await store.setDeadLetterState(position: position, to: .skipped)
        letter.state = .skipped
        return letter
    }
}
