import Canon
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// The shipped portfolio, its generated docs, and the external schemas its outputs must satisfy.
@Suite("Platform portfolio")
struct PlatformPortfolioTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func theShippedPortfolioHasNoFinding() throws {
        let result = PlatformPortfolio.load()
        #expect(result.findings.isEmpty, "\(result.findings.map { "\($0.location) \($0.rule.id) \($0.message)" })")
        let portfolio = try result.requireValid()
        // Every store of DESIGN §3 and §4, built or not.
        let names = Set(portfolio.stores.map(\.name.value))
        #expect(names == ["canonical", "case-search", "case-timeline", "sla-dashboard", "relationship-graph", "evidence-semantic", "evidence-binaries", "assignment-cache"])
        #expect(portfolio.stores.allSatisfy { $0.status != nil })
        #expect(portfolio.stores.filter(\.isLive).map(\.name.value) == ["canonical", "case-search", "case-timeline", "evidence-semantic"])
    }

    @Test func theRootPortfolioFileIsTheEmbeddedOne() throws {
        let text = try String(contentsOf: Self.repository.appendingPathComponent("portfolio.yaml"), encoding: .utf8)
        #expect(text == PlatformPortfolio.yaml)
    }

    @Test func everyOperationTheCodeRunsIsDeclared() throws {
        let portfolio = try PlatformPortfolio.load().requireValid()
        for operation in PlatformOperation.allCases {
            #expect(portfolio.operation(named: operation.rawValue) != nil, "\(operation.rawValue) is not declared")
        }
        for name in [PlatformPortfolio.Store.canonical, PlatformPortfolio.Store.caseSearch, PlatformPortfolio.Store.caseTimeline] {
            #expect(portfolio.store(named: name)?.isLive == true)
        }
    }

    @Test func theCommittedDocsAreUpToDate() throws {
        let portfolio = try PlatformPortfolio.load().requireValid()
        let expected = PortfolioDocs.generate(portfolio)
        let directory = Self.repository.appendingPathComponent("docs/portfolio")
        for (path, text) in expected {
            let committed = try? String(contentsOf: directory.appendingPathComponent(path), encoding: .utf8)
            #expect(committed == text, "docs/portfolio/\(path) is out of date: run `canon docs --out docs/portfolio`")
        }
        let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil)
        let onDisk = (enumerator?.allObjects as? [URL] ?? []).filter { $0.pathExtension == "md" }
            .map { String($0.standardizedFileURL.path.dropFirst(directory.standardizedFileURL.path.count + 1)) }
        #expect(Set(onDisk) == Set(expected.keys), "stale generated files: \(Set(onDisk).subtracting(expected.keys))")
    }

    @Test func docsCoverEveryStoreResponsibilityAndOperation() throws {
        let portfolio = try PlatformPortfolio.load().requireValid()
        let docs = PortfolioDocs.generate(portfolio)
        let matrix = try #require(docs["responsibility-matrix.md"])
        for responsibility in portfolio.responsibilities { #expect(matrix.contains("`\(responsibility.fact.value)`")) }
        let operations = try #require(docs["operations.md"])
        for operation in portfolio.operations { #expect(operations.contains("| \(operation.name.value) |")) }
        let flow = try #require(docs["data-flow.md"])
        #expect(flow.contains("```mermaid"))
        for store in portfolio.stores where store.isDerived {
            #expect(flow.contains("outbox -->|") && flow.contains(store.name.value.replacingOccurrences(of: "-", with: "_")))
        }
        let records = docs.keys.filter { $0.hasPrefix("adr/") }
        #expect(records.count == portfolio.stores.count)
        for record in records {
            let text = docs[record]!
            for section in ["Context", "Alternatives", "Decision", "Ownership", "Consistency", "Integration", "Recovery", "Security", "Consequences", "Exit plan"] {
                #expect(text.contains("## \(section)\n"), "\(record) lacks \(section)")
            }
        }
    }

    @Test func theFormatDocumentListsEveryRule() throws {
        let text = try String(contentsOf: Self.repository.appendingPathComponent("docs/portfolio.md"), encoding: .utf8)
        for rule in PortfolioRule.allCases {
            #expect(text.contains("| \(rule.id) | \(rule.rawValue) | \(rule.severity.rawValue) |"), "docs/portfolio.md lacks \(rule.id) \(rule.rawValue)")
        }
    }

    // MARK: - External schemas

    @Test(.enabled(if: SchemaValidator.available, "run scripts/test, which fetches the SARIF and ODCS schemas"))
    func sarifOutputValidatesAgainstTheSARIF210Schema() throws {
        let directory = try TemporaryDirectory()
        // One report with findings of every severity, one clean.
        let broken = Portfolio.load(yaml: PlatformPortfolio.yaml
            .replacingOccurrences(of: "      via: outbox\n", with: "      via: request-handler\n")
            .replacingOccurrences(of: "    runbook: docs/runbooks/case-search.md\n", with: "    colour: blue\n"), file: "portfolio.yaml")
        #expect(broken.hasErrors && broken.findings.contains { $0.severity == .warning })
        let files = [("broken.sarif", broken), ("clean.sarif", PlatformPortfolio.load())].map { name, result in
            let url = directory.url.appendingPathComponent(name)
            try? Data(PortfolioReport.render(result, format: .sarif).utf8).write(to: url)
            return url.path
        }
        try SchemaValidator.validate(files, against: SchemaValidator.sarifSchema!)
    }

    @Test(.enabled(if: SchemaValidator.available, "run scripts/test, which fetches the SARIF and ODCS schemas"))
    func odcsExportValidatesAgainstTheODCS310Schema() throws {
        let directory = try TemporaryDirectory()
        let portfolio = try PlatformPortfolio.load().requireValid()
        let contracts = try ODCSContract.export(portfolio)
        #expect(contracts.count == portfolio.stores.count)
        var paths: [String] = []
        for (name, text) in contracts {
            let url = directory.url.appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            paths.append(url.path)
            #expect(text.contains("apiVersion: v3.1.0"))
            #expect(!text.contains("\nroles:"), "ODCS roles are IAM roles; the store role belongs in customProperties")
            #expect(text.contains("property: canonRole"))
        }
        try SchemaValidator.validate(paths, against: SchemaValidator.odcsSchema!)
        // The validator does reject a contract that breaks the schema.
        let bad = directory.url.appendingPathComponent("bad.odcs.yaml")
        try Data((contracts["case-search.odcs.yaml"]! + "roles: projection\n").utf8).write(to: bad)
        #expect(throws: SchemaValidator.Failure.self) { try SchemaValidator.validate([bad.path], against: SchemaValidator.odcsSchema!) }
    }

    @Test func schemaValidationRunsInCI() {
        if ProcessInfo.processInfo.environment["CI"] != nil {
            #expect(SchemaValidator.available, "CI must validate SARIF and ODCS output: scripts/test exports CANON_SARIF_SCHEMA, CANON_ODCS_SCHEMA, CANON_SCHEMA_PYTHON")
        }
    }
}

/// Runs scripts/validate-json-schema.py with the schemas scripts/test fetched from PyPI.
enum SchemaValidator {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static let environment = ProcessInfo.processInfo.environment
    static let sarifSchema = environment["CANON_SARIF_SCHEMA"]
    static let odcsSchema = environment["CANON_ODCS_SCHEMA"]
    static let python = environment["CANON_SCHEMA_PYTHON"]
    static var available: Bool { sarifSchema != nil && odcsSchema != nil && python != nil }

    static func validate(_ documents: [String], against schema: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python!)
        process.arguments = [PlatformPortfolioTests.repository.appendingPathComponent("scripts/validate-json-schema.py").path, schema] + documents
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try ProcessLaunch.run(process)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw Failure(description: text) }
    }
}
