import ArgumentParser
import CasePlatform
import Foundation

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the access audit: reads of restricted data and sensitive actions, allowed or denied, newest first.")

    @OptionGroup var data: DataOptions

    @Option(name: .long, help: "Only this principal's entries.") var principal: String?
    @Option(name: .long, help: "Only this action (an operation name, e.g. assign-investigator).") var action: String?
    @Option(name: .long, help: "allowed or denied.") var decision: String?
    @Option(name: .long, help: "How many entries (1…1000).") var limit: Int = 50
    @Option(name: .long, help: "text or json.") var format: OutputFormat = .text

    func validate() throws {
        guard (1...1_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 1000; got \(limit)") }
        if let action, PlatformOperation(rawValue: action) == nil {
            throw ValidationError("--action must be an operation: \(PlatformOperation.allCases.map(\.rawValue).joined(separator: ", ")); got \(action)")
        }
        if let decision, AccessAudit.Decision(rawValue: decision) == nil {
            throw ValidationError("--decision must be allowed or denied; got \(decision)")
        }
    }

    func run() async throws {
        let entries = try await AccessAudit(store: data.openStores(create: false, semantic: false).canonical).entries(
            principal: principal, action: action, decision: decision.flatMap(AccessAudit.Decision.init(rawValue:)), limit: limit)
        switch format {
        case .json:
            try sayJSON(entries)
        case .text:
            if entries.isEmpty { say("no audit entries match") }
            for entry in entries {
                let reason = entry.reason.isEmpty ? "" : "  (\(entry.reason))"
                say("\(entry.at.formatted(.iso8601))  \(entry.decision.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0))  \(entry.principal) (\(entry.role))  \(entry.action)  \(entry.target)\(reason)")
            }
        }
    }
}
