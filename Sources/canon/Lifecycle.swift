import ArgumentParser
import Canon
import CasePlatform
import Foundation
import Synchronization

struct Lifecycle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lifecycle of canonical records across every store.",
        subcommands: [LifecycleAuditCommand.self, LifecycleExpireCommand.self])
}

struct LifecycleExpireCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expire",
        abstract: "Purge every closed case whose retention period has run out, unless a legal hold stands on it.",
        discussion: """
            The retention period is the canonical store's `lifecycle.retention_period` in the portfolio, counted from the case's             last closing. Each case is purged in a commit of its own (its rows go, a tombstone stays, `case.purged` reaches every             derived store), recorded as purged by canon-retention. A case under legal hold is listed and left. SIGTERM or SIGINT             stops the run between cases (exit status 3); run it again to go on.
            """)

    @OptionGroup var data: DataOptions
    @Flag(name: .long, help: "List what would be purged; purge nothing.") var dryRun = false
    @Option(name: .long, help: "text or json.") var format: OutputFormat = .text

    func run() async throws {
        let stores = try await data.openStores(create: false, semantic: false)
        let retention = RetentionPolicy(stores.portfolio)
        guard let period = retention.period else {
            say("the portfolio declares no retention_period for the canonical store: closed cases are purged by hand only")
            return
        }
        let commands = CaseCommands(store: stores.canonical, retention: retention)
        let stop = StopSignals()
        let bar = Mutex<ProgressBar?>(nil)
        let report = try await commands.expire(dryRun: dryRun, progress: { done, total in
            let current = bar.withLock { bar in
                if bar == nil { bar = ProgressBar(label: "examining closed cases", total: total) }
                return bar!
            }
            current.update(done, detail: "cases")
        }, stop: { stop.requested })
        switch format {
        case .json:
            try sayJSON(report)
        case .text:
            let days = period / .seconds(86_400)
            say("""
                \(report.examined) closed case(s) examined, \(report.due) past the retention period (\(String(format: "%g", days)) days): \(dryRun ? "would purge" : "purged") \
                \(report.purged.count), \(report.held.count) under legal hold, \(report.skipped.count) changed while the job ran
                """)
            for id in report.held { say("  held    \(id)") }
            for id in report.skipped { say("  changed \(id) (left for the next run)") }
        }
        if report.stopped {
            say("stopped by a signal after \(report.examined) closed case(s); run it again to go on")
            throw ExitCode(3)
        }
    }
}

struct LifecycleAuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "List canonical records that were purged but are still present in a derived store.",
        discussion: """
            Reads every tombstone (what a purge removed) and looks each key up in every live derived store. A store that has \
            not applied the purge yet is listed as pending (lag). Exits 1 when a store that applied the purge still holds a record.
            """)

    @OptionGroup var data: DataOptions
    @Option(name: .long, help: "text or json.") var format: OutputFormat = .text

    func run() async throws {
        let stores = try await data.openStores(create: false)
        let report = try await LifecycleAudit(source: stores.canonical).run(stores: stores.projections)
        switch format {
        case .json:
            try sayJSON(report)
        case .text:
            say("\(report.tombstones) tombstone(s) checked against \(report.storesChecked.joined(separator: ", ")): "
                + (report.findings.isEmpty ? "no purged record is present anywhere" : "\(report.violations.count) still present, \(report.findings.count - report.violations.count) pending"))
            if !report.storesNotChecked.isEmpty {
                say("not checked (these stores cannot be drift-checked): \(report.storesNotChecked.joined(separator: ", "))")
            }
            for finding in report.findings {
                say("  \(finding.pending ? "pending " : "PRESENT ") \(finding.store)  \(finding.kind) \(finding.key)  (case \(finding.caseID), purged \(finding.purgedAt.formatted(.iso8601)))")
            }
            if !report.violations.isEmpty { say("repair them: canon repair STORE (a full check finds them as extra)") }
        }
        if !report.violations.isEmpty { throw ExitCode(1) }
    }
}
