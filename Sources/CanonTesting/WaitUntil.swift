import Canon

/// Waits until `condition` holds, re-checking each time `signal` moves (for an agent, its
/// `activity`), and gives up at `timeout`. No timer polling: a check happens only when something
/// the condition depends on may have changed.
///
/// - Returns: whether the condition held within `timeout`.
public func waitUntil(
    wakingOn signal: PositionWaiters, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        let seen = signal.reached
        if try await condition() { return true }
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { return false }
        _ = await signal.wait(until: seen.next, timeout: remaining)
    }
}
