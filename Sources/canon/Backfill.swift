import ArgumentParser
import Canon
import CasePlatform
import Foundation

struct Backfill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load records of a legacy system into the canonical store, through the platform's decisions and the outbox.",
        subcommands: [BackfillCases.self])
}

struct BackfillCases: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cases",
        abstract: "Import legacy cases from a JSON Lines file: one case a line.",
        discussion: """
            Each line is a JSON object: external_id, title, sector, region, priority, team and opened_at (ISO 8601) are \
            required; summary, status (moved along intake → triage → investigation → enforcement → closed), status_at, \
            opened_by and assignee (registered users), restricted and parties ([{kind, name, email, national_id, role}]) \
            are optional, and any other field is refused. Every case is opened and moved by the platform's own decisions, \
            so its rows, history and events are as if typed in, and every derived store receives it from the outbox.

            Idempotent: (--source, external_id) is recorded with the case, so a line already imported is counted and \
            left, and running the same file again imports nothing twice (nor a case purged since). A line that cannot \
            be imported is reported with its line number and why, and written to --rejects when given; the other lines \
            go on, and the exit status is 1. SIGTERM or SIGINT stops the run at the next line, after committing what \
            was decided (exit status 3): run it again to go on. When the store fails, what committed stays, the report \
            is printed and the exit status is 2. --from must be a regular UTF-8 file; --dry-run needs an existing store.
            """)

    @OptionGroup var data: DataOptions
    @Option(name: .long, help: "The JSON Lines file to import.") var from: String
    @Option(name: .long, help: "The legacy system's name (lower-case letters, digits, dashes): external ids are unique within it.")
    var source: String
    @Option(name: .long, help: "Cases committed per transaction (1–10000).") var batch: Int = 200
    @Option(name: .long, help: "Write each rejected line, as read, to this file (JSON Lines) to fix and import again.")
    var rejects: String?
    @Flag(name: .long, help: "Decide every line and report; commit nothing.") var dryRun = false
    @Option(name: .long, help: "text or json.") var format: OutputFormat = .text

    func validate() throws {
        guard (1...10_000).contains(batch) else { throw ValidationError("--batch must be between 1 and 10000; got \(batch)") }
        guard (try? Validation.slug(source, field: "source")) != nil else {
            throw ValidationError("--source must be 1 to 64 lower-case letters, digits or dashes; got \"\(source)\"")
        }
    }

    func run() async throws {
        let lines: TextLines
        do {
            lines = try TextLines(path: from)
        } catch {
            throw ValidationError("--from: \(error)")
        }
        // A dry run creates nothing: the data directory must exist.
        let stores = try await data.openStores(create: !dryRun, semantic: false)
        let backfill = CaseBackfill(store: stores.canonical, options: .init(source: source, batchSize: batch, dryRun: dryRun))
        let stop = StopSignals()
        let bar = ProgressBar(label: dryRun ? "checking legacy cases" : "importing legacy cases", total: lines.count)
        let report: CaseBackfill.Report
        var failure: (any Error)?
        do {
            report = try await backfill.run(input: lines, progress: { progress in
                bar.update(progress.linesRead, detail: "lines, \(progress.imported) imported, \(progress.rejected) rejected")
            }, stop: { stop.requested })
        } catch let interrupted as CaseBackfill.Interrupted {
            // The store failed: what committed stays; report it, then the error.
            report = interrupted.report
            failure = interrupted.underlying
        }
        if let error = lines.failure.value {
            failure = failure ?? error
            warn("reading \(from) failed after line \(report.linesRead): \(error)")
        }
        if let rejects {
            let text = report.rejected.map { $0.text + "\n" }.joined()
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: rejects))
            } catch {
                warn("cannot write the rejected lines to \(rejects): \(error.localizedDescription); they are listed in the report")
            }
        }
        switch format {
        case .json:
            try sayJSON(report)
        case .text:
            say("""
                \(report.linesRead) line(s) read from \(from): \(dryRun ? "would import" : "imported") \(report.imported) case(s) \
                (\(report.events) events), \(report.alreadyImported) already imported from \(source), \(report.rejected.count) rejected
                """)
            if let position = report.position {
                say("outbox position \(position.rawValue): a derived read with min_position=\(position.rawValue) sees every imported case")
            }
            for rejection in report.rejected {
                say("  line \(rejection.line)\(rejection.externalID.map { " (\($0))" } ?? ""): \(rejection.code): \(rejection.message)")
            }
            if let rejects, !report.rejected.isEmpty { say("the rejected lines are in \(rejects): fix them and import that file again") }
        }
        if let failure {
            warn("the import stopped after line \(report.linesRead) of \(lines.count): \(failure); what committed stays, run it again to go on")
            throw ExitCode(2)
        }
        if report.stopped {
            warn("stopped by a signal after line \(report.linesRead) of \(lines.count); run it again to go on (imported lines are skipped)")
            throw ExitCode(3)
        }
        if !report.rejected.isEmpty { throw ExitCode(1) }
    }
}

/// Writes a line to standard error (warnings that must not mix with `--format json` on stdout).
func warn(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
