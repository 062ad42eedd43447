import ArgumentParser
import CanonServer
import Logging
import NIOCore
import NIOPosix

/// The threads a scaled-out process (`canon serve --database`, `canon worker`) runs on.
///
/// Such a process is I/O: HTTP connections, PostgreSQL connections, and short tasks between
/// them. By default SwiftNIO runs the I/O on one event-loop thread per core and Swift
/// concurrency runs the tasks on a pool of its own, so every request crosses threads four
/// times (read on a loop, handled in the pool, its commit's reply read on a loop, handled in
/// the pool, written on a loop), each crossing a futex wake-up and a context switch. Here the
/// tasks run on the event loops themselves (NIO's takeover of the global executor), and there is
/// one loop unless asked: a request no longer crosses threads. (Timers still fire on the
/// runtime's own threads: NIO takes over the global queue, not delayed jobs, so a task woken from
/// `Task.sleep` runs there until it next suspends.) On 2 cores the server's CPU per write fell
/// 2-13% in every one of nine pairs measured (BENCHMARKS.md, "Thirteenth session"). One process then uses at
/// most `eventLoops` cores, which is the scale-out model: run more processes, or raise it.
///
/// The embedded engine keeps the default executor: its SQLite calls block the thread they run on.
struct EventLoopOptions: ParsableArguments {
    @Option(name: .long, help: "With --database: the event-loop threads that run this process's HTTP, PostgreSQL connections and tasks. One avoids hand-offs between threads; run more processes, or raise it, to use more cores.")
    var eventLoops: Int?

    func validate() throws {
        if let eventLoops, !(1...64).contains(eventLoops) {
            throw ValidationError("--event-loops must be between 1 and 64; got \(eventLoops)")
        }
    }

    /// The embedded engine keeps the default threads: the option is an error there, not ignored.
    func rejectEmbedded() throws {
        if eventLoops != nil { throw ValidationError("--event-loops applies with --database only (the embedded engine's SQLite calls block their thread)") }
    }

    /// Sizes NIO's shared event-loop group and runs Swift concurrency's tasks on it. Call it once,
    /// first thing in `run()`, before anything opens a connection or a listener: both are
    /// settings SwiftNIO accepts only before its shared group starts.
    /// - Returns: a phrase for the start-up line, such as "1 event-loop thread".
    func adopt() -> String {
        let eventLoops = self.eventLoops ?? 1
        NIOSingletons.groupLoopCountSuggestion = eventLoops
        let threads = eventLoops == 1 ? "1 event-loop thread" : "\(eventLoops) event-loop threads"
        return NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
            ? threads : "\(threads) (tasks on Swift's own executor)"
    }

    /// Measures how long work waits for each of the process's event loops (`/metrics`, and a
    /// warning in the log past 100 ms): on one thread, whatever holds it delays everything.
    func delayMonitor(logger: Logger) -> EventLoopDelayMonitor {
        EventLoopDelayMonitor(loops: Array(MultiThreadedEventLoopGroup.singleton.makeIterator()), logger: logger)
    }
}
