import Foundation

/// Renders the findings of `canon check` as human text, JSON, or SARIF 2.1.0 for code scanning.
public enum PortfolioReport {
    public enum Format: String, CaseIterable, Sendable {
        case text, json, sarif
    }

    public static func render(_ result: Portfolio.CheckResult, format: Format) -> String {
        switch format {
        case .text: text(result)
        case .json: json(result)
        case .sarif: sarif(result)
        }
    }

    // MARK: - Text

    static func text(_ result: Portfolio.CheckResult) -> String {
        var lines: [String] = []
        for finding in result.findings {
            var subject = ""
            if let store = finding.store { subject += " store=\(store)" }
            if let field = finding.field { subject += " field=\(field)" }
            lines.append("\(result.file):\(finding.location.line):\(finding.location.column): \(finding.severity.rawValue) \(finding.rule.id) [\(finding.rule.rawValue)]\(subject)")
            lines.append("    \(finding.message)")
            lines.append("    hint: \(finding.hint)")
        }
        let errors = result.findings.filter { $0.severity == .error }.count
        let warnings = result.findings.filter { $0.severity == .warning }.count
        let stores = result.portfolio?.stores.count ?? 0
        lines.append("\(result.file): \(stores) store(s), \(errors) error(s), \(warnings) warning(s)")
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - JSON

    struct JSONFinding: Encodable {
        var rule: String
        var name: String
        var severity: String
        var store: String?
        var field: String?
        var line: Int
        var column: Int
        var message: String
        var hint: String
    }

    struct JSONReport: Encodable {
        var file: String
        var stores: Int
        var errors: Int
        var warnings: Int
        var findings: [JSONFinding]
    }

    static func json(_ result: Portfolio.CheckResult) -> String {
        let report = JSONReport(
            file: result.file, stores: result.portfolio?.stores.count ?? 0,
            errors: result.findings.filter { $0.severity == .error }.count,
            warnings: result.findings.filter { $0.severity == .warning }.count,
            findings: result.findings.map {
                JSONFinding(rule: $0.rule.id, name: $0.rule.rawValue, severity: $0.severity.rawValue, store: $0.store, field: $0.field,
                            line: $0.location.line, column: $0.location.column, message: $0.message, hint: $0.hint)
            })
        return encode(report)
    }

    // MARK: - SARIF 2.1.0

    struct SARIFLog: Encodable {
        var schema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
        var version = "2.1.0"
        var runs: [Run]

        enum CodingKeys: String, CodingKey { case schema = "$schema", version, runs }

        struct Run: Encodable {
            var tool: Tool
            var artifacts: [Artifact]
            var results: [SARIFResult]
        }

        struct Tool: Encodable { var driver: Driver }

        struct Driver: Encodable {
            var name = "canon check"
            var informationUri = "https://github.com/canon/canon/blob/main/docs/portfolio.md"
            var semanticVersion = "0.1.0"
            var rules: [Rule]
        }

        struct Rule: Encodable {
            var id: String
            var name: String
            var shortDescription: Text
            var help: Text
            var defaultConfiguration: Configuration
        }

        struct Configuration: Encodable { var level: String }
        struct Text: Encodable { var text: String }
        struct Artifact: Encodable { var location: ArtifactLocation }
        struct ArtifactLocation: Encodable { var uri: String; var index: Int? = nil }

        struct SARIFResult: Encodable {
            var ruleId: String
            var ruleIndex: Int
            var level: String
            var message: Text
            var locations: [Location]
            var properties: [String: String]?
        }

        struct Location: Encodable {
            var physicalLocation: PhysicalLocation
            var logicalLocations: [LogicalLocation]?
        }

        struct PhysicalLocation: Encodable {
            var artifactLocation: ArtifactLocation
            var region: Region
        }

        struct Region: Encodable { var startLine: Int; var startColumn: Int }
        struct LogicalLocation: Encodable { var name: String; var fullyQualifiedName: String; var kind = "member" }
    }

    static func sarif(_ result: Portfolio.CheckResult) -> String {
        let rules = PortfolioRule.allCases
        let driver = SARIFLog.Driver(rules: rules.map { rule in
            SARIFLog.Rule(
                id: rule.id, name: rule.rawValue, shortDescription: .init(text: rule.summary), help: .init(text: rule.hint),
                defaultConfiguration: .init(level: rule.severity.rawValue))
        })
        let results = result.findings.map { finding in
            let logical = finding.store.map { store in
                [SARIFLog.LogicalLocation(name: finding.field ?? store, fullyQualifiedName: "stores/\(store)" + (finding.field.map { "/\($0)" } ?? ""))]
            }
            var properties: [String: String] = ["hint": finding.hint]
            if let store = finding.store { properties["store"] = store }
            if let field = finding.field { properties["field"] = field }
            return SARIFLog.SARIFResult(
                ruleId: finding.rule.id, ruleIndex: rules.firstIndex(of: finding.rule)!, level: finding.severity.rawValue,
                message: .init(text: "\(finding.message). Fix: \(finding.hint)"),
                locations: [.init(
                    physicalLocation: .init(
                        artifactLocation: .init(uri: result.file, index: 0),
                        region: .init(startLine: finding.location.line, startColumn: finding.location.column)),
                    logicalLocations: logical)],
                properties: properties)
        }
        let log = SARIFLog(runs: [.init(tool: .init(driver: driver), artifacts: [.init(location: .init(uri: result.file))], results: results)])
        return encode(log)
    }

    static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }
}
