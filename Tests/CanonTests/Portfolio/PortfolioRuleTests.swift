import Canon
import Testing

/// One case per rule: the valid fixture broken in exactly one way, the rule that must fire (and
/// no other), and where: the line marked `#<`.
struct RuleCase: CustomTestStringConvertible, Sendable {
    var rule: PortfolioRule
    var yaml: String
    /// When the finding points at a value rather than a key.
    var column: Int?

    var testDescription: String { rule.rawValue }
}

@Suite("Portfolio rules")
struct PortfolioRuleTests {
    typealias F = PortfolioFixture

    static let cases: [RuleCase] = [
        RuleCase(rule: .yamlSyntax, yaml: F.replacing("    role: canonical\n", with: "    role: canonical: x #<\n"), column: 20),
        RuleCase(rule: .unknownKey, yaml: F.replacing("    exit_plan: dump and load\n", with: "    exit_plan: dump and load\n    colour: blue #<\n")),
        RuleCase(rule: .wrongType, yaml: F.replacing("      executes_commands: true\n", with: "      executes_commands: [true] #<\n"), column: 26),
        RuleCase(rule: .missingField, yaml: F.replacing("  - name: main\n    status: live\n", with: "  - name: main #<\n")),
        RuleCase(rule: .invalidValue, yaml: F.replacing("    data_model: relational\n", with: "    data_model: tabular #<\n")),
        RuleCase(rule: .storeWithoutRole, yaml: F.replacing("  - name: search\n    status: live\n    role: projection\n", with: "  - name: search #<\n    status: live\n")),
        RuleCase(rule: .duplicateStore, yaml: F.adding(store: F.replacing("  - name: search\n", with: "  - name: search #<\n", in: F.derivedStore("search")))),
        RuleCase(rule: .noCanonicalStore, yaml: F.replacing(
            "  - name: main\n    status: live\n    role: canonical\n", with: "  - name: main #<\n    status: live\n    role: asset\n",
            in: F.replacing("      executes_commands: true\n", with: "      executes_commands: false\n"))),
        RuleCase(rule: .multipleWriteOwners, yaml: F.replacing(
            "consistency:\n", with: "  - fact: case.status\n    owner: ledger #<\nconsistency:\n",
            in: F.adding(store: F.canonicalStore("ledger")))),
        RuleCase(rule: .ownerNotCanonical, yaml: F.replacing("    owner: main\n    appears_in: [search]\n", with: "    owner: search #<\n")),
        RuleCase(rule: .derivedWithoutRebuild, yaml: F.replacing("      supported: true\n", with: "      supported: false #<\n")),
        RuleCase(rule: .piiUnprotected, yaml: F.adding(store: F.derivedStore("graph", extra: "\n    security:\n      pii: true #<\n      encryption: at-rest"))),
        RuleCase(rule: .cacheFeedsSensitiveOperation, yaml: F.replacing(
            "    sensitive: true\n    reads: [main]", with: "    sensitive: true\n    reads:\n      - main\n      - assignments #<",
            in: F.adding(store: F.derivedStore("assignments", role: "cache")))),
        RuleCase(rule: .derivedExecutesCommands, yaml: F.replacing("      executes_commands: false\n", with: "      executes_commands: true #<\n")),
        RuleCase(rule: .unboundedEventual, yaml: F.replacing("    model: eventual\n    bound: 30s\n", with: "    model: eventual #<\n")),
        RuleCase(rule: .freshnessContractMissing, yaml: F.replacing("      p95: 1s\n      alert_after: 30s\n", with: "      alert_after: 30s #<\n")),
        RuleCase(rule: .freshnessMetricMissing, yaml: F.replacing(
            "      p95: 1s\n      alert_after: 30s\n      metric: canon_projection_lag_seconds\n", with: "      p95: 1s #<\n      alert_after: 30s\n")),
        RuleCase(rule: .freshnessThresholdsInverted, yaml: F.replacing("      alert_after: 30s\n", with: "      alert_after: 500ms #<\n")),
        RuleCase(rule: .ownerMissing, yaml: F.replacing(
            "  - name: search\n", with: "  - name: search #<\n", in: F.replacing("    owner: team-a\n    source:", with: "    source:"))),
        RuleCase(rule: .runbookMissing, yaml: F.replacing(
            "  - name: search\n", with: "  - name: search #<\n", in: F.replacing("    runbook: docs/search.md\n", with: ""))),
        RuleCase(rule: .backupRestoreMissing, yaml: F.replacing("      method: none\n      restore: rebuild\n", with: "      method: none #<\n")),
        RuleCase(rule: .exitPlanMissing, yaml: F.replacing(
            "  - name: search\n", with: "  - name: search #<\n", in: F.replacing("    exit_plan: rebuild elsewhere\n", with: ""))),
        RuleCase(rule: .analyticsWithoutAsOf, yaml: F.adding(store: F.replacing(
            "  - name: dashboard\n", with: "  - name: dashboard #<\n", in: F.derivedStore("dashboard", role: "analytics")))),
        RuleCase(rule: .vectorWithoutModelVersion, yaml: F.adding(store: F.derivedStore("vectors", dataModel: "vector #<"))),
        RuleCase(rule: .dualWrite, yaml: F.replacing("      via: outbox\n", with: "      via: request-handler #<\n")),
        RuleCase(rule: .neverStaleReadsDerived, yaml: F.replacing(
            "    sensitive: true\n    reads: [main]", with: "    sensitive: true\n    reads:\n      - search #<")),
        RuleCase(rule: .undeclaredStore, yaml: F.replacing("    appears_in: [search]\n", with: "    appears_in:\n      - ghost #<\n")),
        RuleCase(rule: .lifecycleIncomplete, yaml: F.replacing(
            "      delete: purge event\n      restrict: filtered\n      retention: follows main\n      legal_hold: none\n",
            with: "      delete: purge event #<\n      restrict: filtered\n      retention: follows main\n")),
        RuleCase(rule: .operationWithoutStaleness, yaml: F.replacing("  - name: search-cases\n    staleness: allowed\n", with: "  - name: search-cases #<\n")),
        RuleCase(rule: .batchWindowTooLong, yaml: F.replacing(
            "      metric: canon_projection_lag_seconds\n", with: "      metric: canon_projection_lag_seconds\n      batch_window: 1s #<\n")),
        RuleCase(rule: .piiWithoutEncryption, yaml: F.replacing("      pii: true\n", with: "      pii: true #<\n", in: F.replacing("      encryption: at-rest\n", with: ""))),
    ]

    @Test func everyRuleHasACase() {
        let covered = Set(Self.cases.map(\.rule))
        #expect(covered == Set(PortfolioRule.allCases), "rules without a case: \(Set(PortfolioRule.allCases).subtracting(covered))")
        #expect(PortfolioRule.allCases.filter { !$0.id.hasPrefix("CANON-S") }.count >= 15)
    }

    /// A derived store that lists the PII it holds must mask exactly what its source masks: a
    /// name the source shows to every reader it admits needs no masking; an email it masks does.
    @Test func aStoreListingItsPIIFieldsMasksWhatItsSourceMasks() {
        func findings(_ security: String) -> [PortfolioFinding] {
            let yaml = F.adding(store: F.derivedStore("graph", extra: "\n    security:\n" + security + "\n      encryption: at-rest"))
            return Portfolio.load(yaml: yaml, file: "p.yaml").findings.filter { $0.rule == .piiUnprotected }
        }
        #expect(findings("      pii: true\n      authorization_filter: true\n      pii_fields: [party.name]").isEmpty)
        let unmasked = findings("      pii: true\n      authorization_filter: true\n      pii_fields: [party.name, party.email]")
        #expect(unmasked.map(\.field) == ["security.pii_fields"] && unmasked.first?.message.contains("party.email") == true, "\(unmasked.map(\.message))")
        #expect(findings("      pii: true\n      authorization_filter: true\n      pii_fields: [party.email]\n      field_masking: true\n      masked_fields: [party.email]").isEmpty)
        let unlisted = findings("      pii: true\n      authorization_filter: true")
        #expect(unlisted.map(\.field) == ["security.field_masking"], "without pii_fields every PII store masks: \(unlisted.map(\.message))")
        let contradicted = findings("      pii: false\n      authorization_filter: true\n      pii_fields: [party.name]")
        #expect(contradicted.map(\.field) == ["security.pii"], "\(contradicted.map(\.message))")
    }

    /// A portfolio that declares no store at all has no canonical store either: it fails
    /// `canon check` (it passed, and every command then refused to run on it).
    @Test(arguments: ["portfolio:\n  name: empty\nstores: []\n", "portfolio:\n  name: empty\nstores:\n"])
    func aPortfolioWithNoStoreHasNoCanonicalStore(_ yaml: String) {
        let result = Portfolio.load(yaml: yaml, file: "empty.yaml")
        #expect(result.findings.contains { $0.rule == .noCanonicalStore && $0.field == "stores" }, "\(result.findings.map(\.message))")
        #expect(result.hasErrors)
    }

    /// Aliases within aliases ("billion laughs": nine levels of ten) expand past the node cap:
    /// a finding at once, instead of `canon check` building a billion nodes.
    @Test(.timeLimit(.minutes(1)))
    func anAliasBombIsAFindingNotAHang() {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            yaml += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        let result = Portfolio.load(yaml: yaml, file: "laughs.yaml")
        #expect(result.findings.map(\.rule) == [.yamlSyntax], "\(result.findings.map(\.message))")
        #expect(result.findings.first?.message.contains("more than 100000 YAML nodes") == true)
    }

    @Test func theFixtureHasNoFinding() {
        let result = Portfolio.load(yaml: F.valid, file: "fixture.yaml")
        #expect(result.findings.isEmpty, "\(result.findings.map { "\($0.location) \($0.rule.rawValue): \($0.message)" })")
        #expect(result.portfolio?.stores.count == 2)
    }

    @Test(arguments: cases)
    func aPortfolioBreakingOneRuleGetsThatFindingAtItsPosition(_ rule: RuleCase) throws {
        let result = Portfolio.load(yaml: rule.yaml, file: "broken.yaml")
        let marked = try #require(PortfolioFixture.markedLocation(in: rule.yaml))
        let expected = FilePosition(line: marked.line, column: rule.column ?? marked.column)
        let rules = Set(result.findings.map(\.rule))
        #expect(rules == [rule.rule], "\(result.findings.map { "\($0.location) \($0.rule.rawValue): \($0.message)" })")
        let finding = try #require(result.findings.first { $0.rule == rule.rule })
        #expect(finding.location == expected, "\(finding.message)")
        #expect(finding.severity == rule.rule.severity)
        #expect(!finding.hint.isEmpty)
        #expect(result.hasErrors == (rule.rule.severity == .error))
        if rule.rule != .yamlSyntax { #expect(finding.field != nil, "a finding names its field") }
    }
}
