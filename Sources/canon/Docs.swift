import ArgumentParser
import Canon
import Foundation

struct Docs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate the architecture docs from the portfolio.",
        discussion: """
            Writes the responsibility matrix, the consistency contracts, the operations and their staleness, \
            one architecture decision record per store and a Mermaid data-flow diagram. The platform's docs \
            live in docs/portfolio/ and a test fails when they are out of date.
            """)

    @Option(name: .long, help: "The portfolio file (default: ./portfolio.yaml, else the built-in one).")
    var portfolio: String?

    @Option(name: .long, help: "Where to write the docs.")
    var out: String = "docs/portfolio"

    func run() throws {
        let portfolio = try PortfolioSource.load(self.portfolio)
        let files = PortfolioDocs.generate(portfolio)
        try GeneratedFiles.write(files, to: out)
        say("wrote \(files.count) files to \(out)")
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export the portfolio as Open Data Contract Standard v3.1.0 contracts.",
        discussion: "Writes one ODCS contract per store (<store>.odcs.yaml); Canon's own fields are under customProperties.")

    @Flag(name: .long, help: "Export ODCS v3.1.0 data contracts (the only format so far).")
    var odcs = false

    @Option(name: .long, help: "The portfolio file (default: ./portfolio.yaml, else the built-in one).")
    var portfolio: String?

    @Option(name: .long, help: "Where to write the contracts.")
    var out: String = "contracts"

    func validate() throws {
        guard odcs else { throw ValidationError("choose a format: --odcs") }
    }

    func run() throws {
        let portfolio = try PortfolioSource.load(self.portfolio)
        let files = try ODCSContract.export(portfolio)
        try GeneratedFiles.write(files, to: out)
        say("wrote \(files.count) ODCS v3.1.0 contracts to \(out)")
    }
}

/// Writes generated files under a directory, creating folders as needed.
enum GeneratedFiles {
    static func write(_ files: [String: String], to directory: String) throws {
        let root = URL(fileURLWithPath: directory, isDirectory: true)
        for (path, text) in files.sorted(by: { $0.key < $1.key }) {
            let url = root.appendingPathComponent(path)
            do {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try AtomicFile.write(Data(text.utf8), to: url)
            } catch {
                throw ValidationError("cannot write \(url.path): \(error.localizedDescription)")
            }
        }
    }
}
