import ArgumentParser
import Canon
import CanonServer
import CasePlatform
import Foundation

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a realistic case platform on the embedded engines and serve it.",
        discussion: """
            The first run seeds the data directory (deterministic for a given --seed) with a progress display;
            later runs on the same directory serve what is there. Stops cleanly on SIGTERM or SIGINT.
            """)

    @Option(name: .long, help: "The data directory: one SQLite file per store.")
    var data: String = "canon-demo-data"

    @OptionGroup var server: ServerOptions

    @Option(name: .long, help: "The portfolio the runtime obeys (default: ./portfolio.yaml, else the built-in one).")
    var portfolio: String?

    @Option(name: .long, help: "How many cases to generate on first run (default 10000).")
    var cases: Int?

    @Option(name: .long, help: "Seed for the generated data (default 42).")
    var seed: UInt64?

    func validate() throws {
        if let cases, !(1...2_000_000).contains(cases) { throw ValidationError("--cases must be between 1 and 2000000; got \(cases)") }
    }

    struct SeedMarker: Codable {
        var seed: UInt64
        var cases: Int
        var completedAt: Date
    }

    func run() async throws {
        // Before any metric object exists, so every one reports to Prometheus.
        CanonMetrics.bootstrap()
        let directory = DataDirectory(data)
        let platform = try DataOptions.openPlatform(
            in: directory, create: true, portfolio: PortfolioSource.load(portfolio), logger: server.logger())
        let store = platform.store
        let marker = directory.url.appendingPathComponent("demo-seed.json")
        let head = try await store.headPosition()
        let cases = self.cases ?? 10_000, seed = self.seed ?? 42
        // One handling of SIGTERM and SIGINT from here to the end: seeding stops after the chunk
        // in flight, the server shuts down gracefully, and a signal between the two is not lost.
        let stop = StopSignals()
        if head == .start {
            let generator = DemoPlatform(configuration: .init(cases: cases, seed: seed))
            let bar = ProgressBar(label: "seeding cases", total: cases)
            // Each chunk is one transaction: a stop signal ends seeding between two of them.
            let summary: DemoPlatform.Summary
            do {
                summary = try await stop.cancelling {
                    try await generator.seed(into: store) { progress in
                        bar.update(progress.casesDone, detail: "\(progress.eventsWritten) events")
                    }
                }
            } catch is CancellationError {
                let written = try await store.count("cases", filter: [:])
                say("seeding stopped after \(written) of \(cases) cases; remove \(directory.url.path) to seed again")
                return
            }
            try AtomicFile.write(JSONEncoder().encode(SeedMarker(seed: seed, cases: cases, completedAt: Date())), to: marker)
            say("seeded \(summary.cases) cases, \(summary.parties) parties, \(summary.evidence) evidence items, \(summary.events) events")
        } else if !FileManager.default.fileExists(atPath: marker.path) {
            throw ValidationError("""
                \(directory.url.path) holds data but no completed demo seed (an interrupted first run, or a `canon serve` directory); \
                remove it or pass another --data
                """)
        } else {
            // Data seeded with other settings is not what --cases or --seed asked for: say so,
            // rather than serve it as if they applied.
            guard let seeded = try? JSONDecoder().decode(SeedMarker.self, from: Data(contentsOf: marker)) else {
                throw ValidationError("\(marker.path) cannot be read as a demo seed marker; remove \(directory.url.path) to seed again")
            }
            if (self.cases.map { $0 != seeded.cases } ?? false) || (self.seed.map { $0 != seeded.seed } ?? false) {
                throw ValidationError("""
                    \(directory.url.path) was seeded with \(seeded.cases) cases and seed \(seeded.seed); --cases and --seed apply \
                    to a first run only: remove it, pass another --data, or leave them out to serve it
                    """)
            }
            let count = try await store.count("cases", filter: [:])
            say("found \(count) cases and \(head) events in \(directory.url.path); serving them")
        }
        let services = try await platform.services()
        let tokens = DemoPlatform.featuredUsers.map { ($0, services.tokens.token(for: $0.id)) }
        let sample = try await store.fetchOne("cases", where: ["status": .text("investigation"), "restricted": .bool(false)])
        let sampleID = (try? sample?.string("id")) ?? "CASE_ID"
        try await ServerRunner.run(platform: platform, services: services, options: server, stop: stop) { url in
            var lines = ["", "Canon demo is running at \(url)  (open it in a browser; Ctrl-C stops it)", "", "Demo users and their bearer tokens:"]
            for (user, token) in tokens {
                lines.append("  \(user.id.padding(toLength: 5, withPad: " ", startingAt: 0)) \(user.role.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) \(token)")
            }
            let ivan = tokens.first { $0.0.id == "ivan" }!.1
            lines += [
                "", "Try:",
                "  curl -s \(url)/v1/cases/\(sampleID) -H 'Authorization: Bearer \(ivan)'",
                "  curl -s '\(url)/v1/search/cases?q=lending&status=investigation' -H 'Authorization: Bearer \(ivan)'",
                "  curl -s -X POST \(url)/v1/cases -H 'Authorization: Bearer \(ivan)' -H 'Content-Type: application/json' \\",
                "       -d '{\"title\":\"Unlicensed lender\",\"summary\":\"Loans offered without a licence\",\"sector\":\"banking\",\"region\":\"north\",\"priority\":\"high\"}'",
            ]
            if let reason = platform.semanticUnavailable {
                lines.append("  (semantic evidence retrieval is off: \(reason))")
            } else {
                lines.append("  curl -s '\(url)/v1/evidence/semantic?q=staff+told+to+ignore+warnings&k=5' -H 'Authorization: Bearer \(ivan)'")
            }
            lines += ["  curl -s \(url)/v1/ops/portfolio -H 'Authorization: Bearer \(ivan)'", ""]
            return lines.joined(separator: "\n") + "\n"
        }
    }
}
