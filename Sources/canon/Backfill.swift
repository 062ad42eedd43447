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
            go on, and the exit status is 1. SIGTERM or SIGINT stops the run between batches (exit status 3): run it \
            again to go on.
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
        let lines: FileLines
        do {
            lines = try FileLines(path: from)
        } catch {
            throw ValidationError("--from: cannot read \(from): \(error.localizedDescription)")
        }
        let stores = try await data.openStores(create: true, semantic: false)
        let backfill = CaseBackfill(store: stores.canonical, options: .init(source: source, batchSize: batch, dryRun: dryRun))
        let stop = StopSignals()
        let bar = ProgressBar(label: dryRun ? "checking legacy cases" : "importing legacy cases", total: lines.count)
        let report = try await backfill.run(lines: lines, progress: { progress in
            bar.update(progress.linesRead, detail: "lines, \(progress.imported) imported, \(progress.rejected) rejected")
        }, stop: { stop.requested })
        if let error = lines.failure.error {
            say("reading \(from) failed after line \(report.linesRead): \(error.localizedDescription); what was read is reported below, run it again to go on")
        }
        if let rejects {
            let text = report.rejected.map { $0.text + "\n" }.joined()
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: rejects))
            } catch {
                say("cannot write the rejected lines to \(rejects): \(error.localizedDescription); they are listed below")
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
        if report.stopped {
            say("stopped by a signal after line \(report.linesRead) of \(lines.count); run it again to go on (imported lines are skipped)")
            throw ExitCode(3)
        }
        if !report.rejected.isEmpty || lines.failure.error != nil { throw ExitCode(1) }
    }
}

/// The lines of a text file, read a megabyte at a time (a legacy export can be larger than
/// memory should hold), with `\r\n` endings taken as `\n`.
struct FileLines: Sequence {
    let path: String
    /// Why reading stopped before the end of the file, if it did: the lines then look finished,
    /// so the caller must ask.
    let failure = ReadFailure()
    /// How many lines the file has (a last line without a newline counts).
    let count: Int

    init(path: String) throws {
        self.path = path
        var count = 0
        var last: UInt8 = 0x0A
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            count += chunk.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
            last = chunk.last!
        }
        self.count = count + (last == 0x0A ? 0 : 1)
    }

    func makeIterator() -> Iterator {
        do {
            return Iterator(handle: try FileHandle(forReadingFrom: URL(fileURLWithPath: path)), failure: failure)
        } catch {
            failure.error = error
            return Iterator(handle: nil, failure: failure, finished: true)
        }
    }

    final class ReadFailure: @unchecked Sendable {
        var error: (any Error)?
    }

    struct Iterator: IteratorProtocol {
        let handle: FileHandle?
        let failure: ReadFailure
        var buffer: [UInt8] = []
        var start = 0
        var finished = false

        mutating func next() -> String? {
            while true {
                if let end = buffer[start...].firstIndex(of: 0x0A) {
                    var line = buffer[start..<end]
                    if line.last == 0x0D { line = line.dropLast() }
                    start = end + 1
                    return String(decoding: line, as: UTF8.self)
                }
                if finished {
                    guard start < buffer.count else { return nil }
                    defer { start = buffer.count }
                    return String(decoding: buffer[start...], as: UTF8.self)
                }
                buffer.removeFirst(start)
                start = 0
                do {
                    if let chunk = try handle?.read(upToCount: 1 << 20), !chunk.isEmpty {
                        buffer.append(contentsOf: chunk)
                        continue
                    }
                } catch {
                    failure.error = error
                }
                finished = true
                try? handle?.close()
            }
        }
    }
}
