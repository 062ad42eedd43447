import Foundation

/// Starts child processes one at a time.
///
/// Foundation's `Process.run()` on Linux is not safe to call from several threads at once: the
/// suite runs tests in parallel, and a run of it crashed inside `Process.run` (a bad pointer in
/// its copy of the launch data) while another test was starting a process.
public enum ProcessLaunch {
    private static let lock = NSLock()

    public static func run(_ process: Process) throws {
        lock.lock()
        defer { lock.unlock() }
        try process.run()
    }
}
