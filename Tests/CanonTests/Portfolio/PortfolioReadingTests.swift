import Canon
import Foundation
import Testing

@Suite("Portfolio reading and reports")
struct PortfolioReadingTests {
    @Test(arguments: [
        ("", PortfolioRule.missingField),
        ("- a\n- b\n", .wrongType),
        ("portfolio: {name: x}\nstores: 5\n", .wrongType),
        ("portfolio: {name: x}\nstores:\n  - 5\n", .wrongType),
        ("portfolio: {name: x}\nstores:\n  - name: [x]\n", .wrongType),
        ("portfolio: {name: x}\nstores:\n\t- name: a\n", .yamlSyntax),
        ("portfolio: {name: x}\nstores: []\nstores: []\n", .yamlSyntax),
        ("portfolio: {name: x}\nstores:\n  - name: a\n    status: live\n    role: projection\n    freshness: 5\n", .wrongType),
        ("portfolio: {name: x}\nstores:\n  - name: a\n    status: live\n    role: canonical\n    backup: {method: [1], restore: {a: b}}\n", .wrongType),
        ("portfolio: {name: x}\nstores:\n  - name: a\n    status: sometime\n", .invalidValue),
        ("portfolio: {name: x}\nstores:\n  - name: a\n    status: live\n    role: projection\n    freshness: {p95: soon}\n", .wrongType),
        ("portfolio: {name: x}\nstores: [\"unclosed\n", .yamlSyntax),
        ("\u{1}\u{2}binary", .yamlSyntax),
        ("portfolio: {name: x}\nstores:\n  - name: a\n    status: live\n    role: canonical\n    as_of: maybe\n", .wrongType),
        ("portfolio: {name: x}\nstores:\n  - &a {name: a, status: live, role: canonical}\n  - *a\n", .duplicateStore),
    ])
    func malformedInputGivesFindingsWithPositionsNeverACrash(_ input: (String, PortfolioRule)) {
        let result = Portfolio.load(yaml: input.0, file: "bad.yaml")
        #expect(result.hasErrors)
        #expect(result.findings.contains { $0.rule == input.1 }, "\(result.findings.map { "\($0.location) \($0.rule.rawValue): \($0.message)" })")
        for finding in result.findings {
            #expect(finding.location.line >= 1 && finding.location.column >= 1)
            #expect(!finding.message.isEmpty)
        }
        // Every format renders without failing.
        for format in PortfolioReport.Format.allCases {
            #expect(!PortfolioReport.render(result, format: format).isEmpty)
        }
    }

    @Test func requireValidThrowsATypedErrorListingTheErrors() throws {
        let broken = PortfolioFixture.replacing("      supported: true\n", with: "      supported: false\n")
        let result = Portfolio.load(yaml: broken, file: "broken.yaml")
        #expect(throws: PortfolioError.self) { try result.requireValid() }
        do {
            _ = try result.requireValid()
        } catch {
            #expect(error.message.contains("CANON-P"))
            #expect(error.findings.map(\.rule) == [.derivedWithoutRebuild])
        }
        #expect(try Portfolio.load(yaml: PortfolioFixture.valid).requireValid().stores.count == 2)
    }

    @Test func jsonReportCarriesRuleSeverityStoreFieldAndPosition() throws {
        let broken = PortfolioFixture.replacing("      via: outbox\n", with: "      via: request-handler\n")
        let text = PortfolioReport.render(Portfolio.load(yaml: broken, file: "p.yaml"), format: .json)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["errors"] as? Int == 1)
        let finding = try #require((object["findings"] as? [[String: Any]])?.first)
        #expect(finding["rule"] as? String == PortfolioRule.dualWrite.id)
        #expect(finding["name"] as? String == "dual-write")
        #expect(finding["severity"] as? String == "error")
        #expect(finding["store"] as? String == "search")
        #expect(finding["field"] as? String == "source.via")
        #expect(finding["line"] as? Int == 36)
        #expect(finding["column"] as? Int == 7)
        #expect((finding["hint"] as? String)?.contains("outbox") == true)
    }

    @Test func textReportIsEditorClickable() {
        let broken = PortfolioFixture.replacing("      via: outbox\n", with: "      via: request-handler\n")
        let text = PortfolioReport.render(Portfolio.load(yaml: broken, file: "p.yaml"), format: .text)
        #expect(text.hasPrefix("p.yaml:36:7: error \(PortfolioRule.dualWrite.id) [dual-write] store=search field=source.via\n"))
        #expect(text.contains("hint: "))
        #expect(text.hasSuffix("p.yaml: 2 store(s), 1 error(s), 0 warning(s)\n"))
    }

    @Test func sarifReportNamesEveryRuleAndPointsAtTheRegion() throws {
        let broken = PortfolioFixture.replacing("      via: outbox\n", with: "      via: request-handler\n")
        let text = PortfolioReport.render(Portfolio.load(yaml: broken, file: "p.yaml"), format: .sarif)
        let log = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(log["version"] as? String == "2.1.0")
        let run = try #require((log["runs"] as? [[String: Any]])?.first)
        let rules = try #require(((run["tool"] as? [String: Any])?["driver"] as? [String: Any])?["rules"] as? [[String: Any]])
        #expect(rules.count == PortfolioRule.allCases.count)
        let result = try #require((run["results"] as? [[String: Any]])?.first)
        #expect(result["ruleId"] as? String == PortfolioRule.dualWrite.id)
        #expect(rules[result["ruleIndex"] as! Int]["id"] as? String == PortfolioRule.dualWrite.id)
        let region = try #require((((result["locations"] as? [[String: Any]])?.first?["physicalLocation"]) as? [String: Any])?["region"] as? [String: Any])
        #expect(region["startLine"] as? Int == 36)
        #expect(region["startColumn"] as? Int == 7)
    }

    @Test(arguments: ["500ms", "5s", "2m", "1h", "7d", "1.5s"])
    func durationsParse(_ text: String) throws {
        let duration = try #require(ContractDuration(text))
        #expect(duration.milliseconds == ["500ms": 500, "5s": 5000, "2m": 120_000, "1h": 3_600_000, "7d": 604_800_000, "1.5s": 1500][text])
    }

    /// Also too large or not finite: converting them to milliseconds trapped, in `canon check`
    /// and in every command that loads the portfolio.
    @Test(arguments: ["", "5", "soon", "-1s", "5 minutes", "s", "1e19ms", "infs", "nanms", "200000000000d"])
    func badDurationsDoNotParse(_ text: String) {
        #expect(ContractDuration(text) == nil)
    }
}
