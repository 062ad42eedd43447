import Dispatch
import Foundation
import ServiceLifecycle
import Synchronization

/// SIGTERM and SIGINT for a command that does long work before a service group runs (demo
/// seeding) or instead of one (a rebuild): one handling for the whole process, so no signal
/// falls between the work and the server.
///
/// The sources stay for the life of the process. (Handing over to the service group's own
/// signal handling left an instant in which a signal found neither; and on Linux, resetting a
/// signal's disposition after libdispatch has installed its handler leaves later sources deaf.)
final class StopSignals: Sendable {
    private struct State {
        var requested = false
        var handlers: [@Sendable () -> Void] = []
    }
    private let state = Mutex(State())
    nonisolated(unsafe) private var sources: [any DispatchSourceSignal] = []

    init() {
        sources = [SIGTERM, SIGINT].map { number in
            // Darwin delivers to dispatch sources only signals whose action is to be ignored;
            // on Linux libdispatch installs its own handler.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { [weak self] in self?.stopRequested() }
            source.resume()
            return source
        }
    }

    /// Whether a stop signal has arrived.
    var requested: Bool { state.withLock { $0.requested } }

    private func stopRequested() {
        let handlers = state.withLock { state in
            state.requested = true
            return state.handlers
        }
        for handler in handlers { handler() }
    }

    /// Calls `handler` on every stop signal from now on, and at once if one has already arrived.
    func onStop(_ handler: @escaping @Sendable () -> Void) {
        let already = state.withLock { state in
            state.handlers.append(handler)
            return state.requested
        }
        if already { handler() }
    }

    /// Runs `operation` in a task that a stop signal cancels: it stops where it checks for
    /// cancellation (between chunks, each one committed) and throws `CancellationError`.
    func cancelling<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let work = Task { try await operation() }
        onStop { work.cancel() }
        return try await work.value
    }

    /// Shuts `group` down gracefully on a stop signal (at once if one has already arrived): for a
    /// group made without signals of its own.
    func shutDownGracefully(_ group: ServiceGroup) {
        onStop { Task { await group.triggerGracefulShutdown() } }
    }
}
