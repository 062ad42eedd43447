import ArgumentParser
import Canon
import CanonEmbedded
import CanonPostgres
import CasePlatform
import Foundation
import Synchronization

/// How a drift check is tuned, shared by `canon drift` and `canon repair`.
struct DriftOptions: ParsableArguments {
    @Option(name: .long, help: "full (every key, by checksummed ranges), sample (random keys from both sides) or since (keys changed after --since).")
    var mode: String = "full"

    @Option(name: .long, help: "since mode: the outbox position keys were changed after.")
    var since: Int64?

    @Option(name: .long, help: "Ranges a mismatching range is split into.")
    var segments: Int = 32

    @Option(name: .long, help: "A mismatching range with at most this many keys is compared key by key.")
    var threshold: Int = 1_024

    @Option(name: .long, help: "sample mode: keys drawn from each side.")
    var sample: Int = 200

    var driftMode: DriftMode { DriftMode(rawValue: mode) ?? .full }

    var options: DriftCheck.Options { DriftCheck.Options(segments: segments, threshold: threshold, sampleSize: sample) }

    func validate() throws {
        guard DriftMode(rawValue: mode) != nil else {
            throw ValidationError("--mode must be one of \(DriftMode.allCases.map(\.rawValue).joined(separator: ", ")); got \(mode)")
        }
        guard (2...1_024).contains(segments) else { throw ValidationError("--segments must be between 2 and 1024; got \(segments)") }
        guard threshold >= 1 else { throw ValidationError("--threshold must be at least 1; got \(threshold)") }
        guard sample >= 1 else { throw ValidationError("--sample must be at least 1; got \(sample)") }
        if let since, since < 0 { throw ValidationError("--since must be a position (0 or more); got \(since)") }
        if driftMode == .since && since == nil { throw ValidationError("--mode since needs --since POSITION") }
        if driftMode != .since && since != nil { throw ValidationError("--since applies with --mode since only; got --mode \(mode)") }
    }
}

/// Progress of a check on standard error: one line per phase, then a bar while ranges settle.
final class DriftProgressPrinter: Sendable {
    let name: String
    private let state = Mutex<(phase: DriftCheck.Progress.Phase?, bar: ProgressBar?, lastCount: Int)>((nil, nil, 0))

    init(name: String) { self.name = name }

    func update(_ progress: DriftCheck.Progress) {
        state.withLock { state in
            if state.phase != progress.phase {
                state.phase = progress.phase
                state.bar = progress.total.map { ProgressBar(label: "drift \(name): \(progress.phase.rawValue)", total: $0) }
                state.lastCount = 0
                if state.bar == nil { FileHandle.standardError.write(Data("drift \(name): \(progress.phase.rawValue)\n".utf8)) }
            }
            if let bar = state.bar {
                bar.update(progress.done)
            } else if progress.done - state.lastCount >= 100_000 {
                state.lastCount = progress.done
                FileHandle.standardError.write(Data("drift \(name): \(progress.phase.rawValue): \(progress.done)\n".utf8))
            }
        }
    }
}

extension DriftOptions {
    /// The checks of the live projections `names` (nil: every one), on whichever engine `data`
    /// names, each with its cache of expected digests (a file beside the stores, or a table of
    /// `canon_drift_cache` on PostgreSQL).
    func checks(on data: DataOptions, names: [String]?) async throws -> [DriftCheck] {
        if let url = try data.postgres {
            let stores = try await data.openStores(create: false)
            let selected = try names.map { try $0.map(stores.projection(named:)) } ?? stores.projections
            return try selected.map {
                try PlatformDrift.check($0, source: stores.canonical, options: options, cache: PostgresDigestCache(url: url, identity: $0.identity))
            }
        }
        let platform = try data.openPlatform(create: false, semantic: names?.contains("evidence-semantic") ?? true)
        return try (names ?? platform.projectionStores.map(\.identity.name)).map { try platform.driftCheck($0, options: options) }
    }
}

struct Drift: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find every key where a derived store differs from canonical state: missing, extra or stale.",
        discussion: """
            Digests of what each key should hold are computed from canonical state and compared with the digests each store \
            kept when it applied, over checksummed key ranges narrowed by bisection; stored content is also checked against \
            those digests. Keys changed after the store's checkpoint are lag, listed apart. Exits 1 when drift is found.
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var drift: DriftOptions
    @Argument(help: "The projection: case-search, case-timeline or evidence-semantic.") var name: String?
    @Flag(help: "Check every live projection.") var all = false
    @Option(name: .long, help: "text or json.") var format: OutputFormat = .text
    @Option(name: .long, help: "text: differences listed per store (default 20; json lists them all).") var limit: Int?

    func validate() throws {
        guard (name == nil) != !all else { throw ValidationError("name one projection, or pass --all") }
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more; got \(limit)") }
        if limit != nil && format == .json { throw ValidationError("--limit applies to text output; --format json lists every difference") }
        if let name, !EmbeddedPlatform.projectionNames.contains(name) {
            throw ValidationError("unknown projection \(name); known: \(EmbeddedPlatform.projectionNames.joined(separator: ", "))")
        }
    }

    func run() async throws {
        var reports: [DriftReport] = []
        for check in try await drift.checks(on: data, names: all ? nil : [name!]) {
            let printer = DriftProgressPrinter(name: check.store.identity.name)
            reports.append(try await check.run(drift.driftMode, since: drift.since.map { OutboxPosition($0) }) { printer.update($0) })
        }
        switch format {
        case .json:
            try sayJSON(["reports": reports])
        case .text:
            for report in reports { say(Self.describe(report, limit: limit ?? 20)) }
        }
        if reports.contains(where: { $0.count > 0 }) { throw ExitCode(1) }
    }

    static func describe(_ report: DriftReport, limit: Int) -> String {
        var lines = [
            "\(report.store) v\(report.version) (\(report.mode.rawValue), at position \(report.position), canonical head \(report.canonicalHead)): "
                + (report.count == 0 ? "no drift" : "\(report.count) difference(s): \(report.count(.missing)) missing, \(report.count(.extra)) extra, \(report.count(.stale)) stale"),
            "  \(report.expectedKeys) expected keys, \(report.storedKeys) stored, \(report.rangesCompared) ranges, \(report.keysCompared) keys compared one by one, "
                + "\(report.lagging) lagging, \(report.expectedRecomputed) expected digests computed; \(String(format: "%.2f", report.seconds)) s (\(Int(report.keysPerSecond)) keys/s)",
        ]
        for difference in report.differences.prefix(limit) {
            lines.append("  \(difference.kind.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(difference.key)\(difference.detail.map { "  (\($0))" } ?? "")")
        }
        if report.count > limit { lines.append("  … \(report.count - limit) more (--format json lists them all)") }
        if report.count > 0 { lines.append("  repair exactly these keys: canon repair \(report.store)") }
        return lines.joined(separator: "\n")
    }
}

struct Repair: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-project exactly the keys that differ from canonical state, then verify.",
        discussion: """
            Runs a drift check, re-derives each differing key from its full history through the projection's own apply code \
            at the store's checkpoint (retrying when its agent moves it, so it is safe while `canon serve` runs), then checks \
            again. Idempotent: a second run repairs nothing. Exits 1 when the verify run still finds drift.
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var drift: DriftOptions
    @Argument(help: "The projection: case-search, case-timeline or evidence-semantic.") var name: String
    @Option(name: .long, help: "text or json.") var format: OutputFormat = .text

    func validate() throws {
        guard EmbeddedPlatform.projectionNames.contains(name) else {
            throw ValidationError("unknown projection \(name); known: \(EmbeddedPlatform.projectionNames.joined(separator: ", "))")
        }
        guard drift.driftMode != .sample else { throw ValidationError("repair runs in full or since mode; sampling finds drift, a full check finds all of it") }
    }

    func run() async throws {
        let check = try await drift.checks(on: data, names: [name])[0]
        let printer = DriftProgressPrinter(name: name)
        let report = try await check.repair(mode: drift.driftMode, since: drift.since.map { OutboxPosition($0) }) { printer.update($0) }
        switch format {
        case .json:
            try sayJSON(report)
        case .text:
            say("found:\n" + Drift.describe(report.found, limit: 20))
            say("repaired \(report.repaired.count) key(s)" + (report.attempts > 1 ? " (\(report.attempts) attempts: the agent moved meanwhile)" : ""))
            say("verified:\n" + Drift.describe(report.verified, limit: 20))
        }
        if report.verified.count > 0 { throw ExitCode(1) }
    }
}
