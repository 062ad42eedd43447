import ArgumentParser
import Canon
import CanonEmbedded
import CanonPostgres
import Foundation
import Synchronization

struct Rebuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild a projection blue-green beside the live one, compare, and switch atomically.",
        discussion: """
            Reads and writes go on throughout; a running `canon serve`/`canon demo` follows the switch within a second.
            With --database (PostgreSQL) the new version is built in a schema of its own, and every `canon serve` and
            `canon worker` on that database follows the switch at once (told over LISTEN/NOTIFY; read every --version-poll-interval, 5 s by default, otherwise).
            The previous version stays until --prune; --rollback switches back to it. An interrupted rebuild resumes.
            With --database, one rebuild, rollback or prune of a projection runs at a time: another is refused at once.
            SIGTERM or SIGINT stops it after the chunk in flight (exit status 3); run it again to resume.
            """)

    @OptionGroup var data: DataOptions
    @Argument(help: "The projection: case-search, case-timeline or evidence-semantic (embedded engine only).") var name: String
    @Option(name: .long, help: "evidence-semantic: the embedding model directory to rebuild with (a model change is a rebuild).") var model: String?
    @Flag(help: "Switch back to the previous version.") var rollback = false
    @Flag(help: "Delete every version except the live one.") var prune = false
    @Option(name: .long, help: "Events in the first committed chunk; chunks double while each commits in under 1 s, up to 100,000 (or this, if larger).")
    var chunkSize: Int?
    @Flag(name: .long, help: "Fold the whole outbox even when the portfolio declares canonical state as the rebuild source.")
    var fromOutbox = false

    func validate() throws {
        guard EmbeddedPlatform.projectionNames.contains(name) else {
            throw ValidationError("unknown projection \(name); known: \(EmbeddedPlatform.projectionNames.joined(separator: ", "))")
        }
        guard !(rollback && prune) else { throw ValidationError("--rollback and --prune cannot be combined") }
        guard (chunkSize ?? 1) >= 1 else { throw ValidationError("--chunk-size must be at least 1") }
        if rollback || prune, chunkSize != nil || fromOutbox || model != nil {
            throw ValidationError("--chunk-size, --from-outbox and --model apply to a rebuild, not to --\(rollback ? "rollback" : "prune")")
        }
        guard model == nil || name == "evidence-semantic" else { throw ValidationError("--model applies only to evidence-semantic") }
        if try data.postgres != nil, !PostgresPlatform.projectionNames.contains(name) {
            throw ValidationError("\(name) is not served by the PostgreSQL engine; with --database the projections are \(PostgresPlatform.projectionNames.joined(separator: ", "))")
        }
    }

    func run() async throws {
        if let url = try data.postgres {
            let platform = try await data.openPostgres(url, runAgents: false)
            let chunkSize = self.chunkSize ?? 5_000, fromOutbox = self.fromOutbox
            try await run(
                stateResumes: false, switchBack: { try await platform.rollback($0) }, removeOthers: { try await platform.prune($0) },
                head: { try await platform.canonical.headPosition() },
                rebuild: { name, progress in try await platform.rebuild(name, chunkSize: chunkSize, fromOutbox: fromOutbox, progress: progress) })
            return
        }
        let platform = try data.openPlatform(create: false)
        let model = self.model, fromOutbox = self.fromOutbox, chunkSize = self.chunkSize ?? 5_000
        try await run(
            switchBack: { try await platform.rollback($0) }, removeOthers: { try platform.prune($0) },
            head: { try await platform.canonical.headPosition() },
            rebuild: { name, progress in try await platform.rebuild(name, model: model, chunkSize: chunkSize, fromOutbox: fromOutbox, progress: progress) })
    }

    /// The command on either engine: `removeOthers` answers what it removed (files or schemas).
    /// `stateResumes`: an interrupted build from canonical state goes on after its last key (the
    /// embedded engine), rather than starting its state phase over (PostgreSQL).
    private func run(
        stateResumes: Bool = true, switchBack: (String) async throws -> ProjectionIdentity, removeOthers: (String) async throws -> [String], head: () async throws -> OutboxPosition,
        rebuild: @escaping @Sendable (String, @escaping @Sendable (ProjectionRebuild.Progress) -> Void) async throws -> ProjectionRebuild.Report
    ) async throws {
        if rollback {
            let identity = try await switchBack(name)
            say("\(name): \(identity) is live again")
            return
        }
        if prune {
            let removed = try await removeOthers(name)
            say(removed.isEmpty ? "\(name): nothing to prune" : "\(name): removed \(removed.joined(separator: ", "))")
            return
        }
        let head = try await head()
        let bar = ProgressBar(label: "rebuilding \(name)", total: Int(head.rawValue))
        let stateBar = Mutex<ProgressBar?>(nil)
        /// Where the build got, and whether it was then reading canonical state.
        let reached = Mutex<(text: String, fromState: Bool)?>(nil)
        let name = self.name
        let report: ProjectionRebuild.Report
        do {
            // SIGTERM or SIGINT stops it before its next chunk; every chunk written is committed
            // with its checkpoint, and the next run resumes from there.
            report = try await StopSignals().cancelling {
                try await rebuild(name) { progress in
                    if let records = progress.records {
                        let recordsBar = stateBar.withLock { recordsBar in
                            if recordsBar == nil { recordsBar = ProgressBar(label: "building \(name) from canonical state", total: records.total) }
                            return recordsBar!
                        }
                        recordsBar.update(records.done, detail: "records")
                        reached.withLock { $0 = ("\(records.done) of \(records.total) records from canonical state", true) }
                    } else {
                        bar.update(Int(min(progress.position.rawValue, head.rawValue)), detail: progress.phase.rawValue)
                        reached.withLock { $0 = ("position \(progress.position) (\(progress.phase.rawValue))", false) }
                    }
                }
            }
        } catch is CancellationError {
            // On PostgreSQL a build from state starts its state phase over from a new snapshot.
            let stoppedAt = reached.withLock { $0 }
            let again = stateResumes || stoppedAt?.fromState != true
                ? "to resume from there" : "to go on (its state phase starts over from a new snapshot)"
            say("""
                \(name): rebuild stopped after \(stoppedAt?.text ?? "no chunk"); nothing was switched. \
                Run `canon rebuild \(name)` again \(again).
                """)
            throw ExitCode(3)
        }
        bar.update(Int(head.rawValue), detail: "done")
        let compared = report.canonicalDifferences == nil
            ? "\(report.rows) rows, checksum \(report.checksum) on both"
            : "\(report.rows) rows against \(report.liveRows) in \(report.replacing), which differed; a full drift check found the new version equal to canonical state"
        say("""
            \(report.projection) is live (was \(report.replacing)); built to \(report.builtTo), compared at \(report.comparedAt): \
            \(compared); \(String(format: "%.1f", report.seconds))s \
            (building \(String(format: "%.1f", report.phases.building))s, catching up \(String(format: "%.1f", report.phases.catchingUp))s, \
            comparing \(String(format: "%.1f", report.phases.comparing))s)
            """)
    }
}
