import ArgumentParser
import Canon
import CasePlatform
import Foundation

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lint a portfolio against the discipline rules.",
        discussion: """
            Prints each finding with its rule id, severity, store, field, line and column, and a hint. \
            Exits 1 when any finding is an error. Without FILE it reads ./portfolio.yaml, or the platform's \
            built-in portfolio when there is none. Rules: docs/portfolio.md.
            """)

    @Argument(help: "The portfolio file (default: ./portfolio.yaml, else the built-in one).")
    var file: String?

    @Option(name: .long, help: "text, json or sarif (SARIF 2.1.0).")
    var format: CheckFormat = .text

    func run() throws {
        let result = try PortfolioSource.check(file)
        FileHandle.standardOutput.write(Data(PortfolioReport.render(result, format: format.report).utf8))
        if result.hasErrors { throw ExitCode(1) }
    }
}

enum CheckFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, sarif
    var report: PortfolioReport.Format { PortfolioReport.Format(rawValue: rawValue)! }
}

/// Where a command finds the portfolio: a named file, ./portfolio.yaml, or the built-in one.
enum PortfolioSource {
    static func check(_ file: String?) throws -> Portfolio.CheckResult {
        if let file {
            return Portfolio.load(yaml: try read(file), file: file)
        }
        if FileManager.default.fileExists(atPath: "portfolio.yaml") {
            return Portfolio.load(yaml: try read("portfolio.yaml"), file: "portfolio.yaml")
        }
        return PlatformPortfolio.load()
    }

    /// A valid portfolio, or a clear error listing what is wrong.
    static func load(_ file: String?) throws -> Portfolio {
        let result = try check(file)
        do {
            return try result.requireValid()
        } catch {
            throw ValidationError(error.message)
        }
    }

    private static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read the portfolio file \(path): it does not exist or is not readable")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("the portfolio file \(path) is not UTF-8 text")
        }
        return text
    }
}
