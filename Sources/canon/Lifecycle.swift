import ArgumentParser
import Canon
import CasePlatform
import Foundation

struct Lifecycle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lifecycle of canonical records across every store.",
        subcommands: [LifecycleAuditCommand.self])
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
