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
        // Load the stream's history for the current checkpoint and refold it only if the agent
        // has not moved meanwhile; otherwise load again.
        var attempts = 0
        while true {
            attempts += 1
            let checkpoint = try await store.checkpoint().position
            let events = try await source.events(in: letter.streamID, through: checkpoint)
            do {
                try await store.refold(stream: letter.streamID, events: events, at: checkpoint)
                break
            } catch let error as ProjectionError where error.code == .checkpointConflict && attempts < 20 {
                continue
            } catch let error as ProjectionError {
                throw error
            } catch {
                throw ProjectionError.stillFailing(store.identity, position: position, error: error)
            }
        }
        try await store.setDeadLetterState(position: position, to: .retried)
        letter.state = .retried
        return letter
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
