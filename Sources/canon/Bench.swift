import ArgumentParser
import Canon
import CanonEmbedded
import CanonPostgres
import Embeddings
import Foundation

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the end-to-end benchmark scenarios at a chosen size, each beside its limit.",
        discussion: """
            catch-up: apply a backlog of --cases cases (4 events each) to case search, beside a raw FTS5 bulk insert of the same documents.
            rebuild:  a blue-green rebuild of case search over that backlog (kept from catch-up, or written), beside the raw FTS5 bulk load;
                      with --database, on PostgreSQL (a new database): beside an INSERT … SELECT of the rebuilt rows into tables of the same shape.
            latency:  commit-to-searchable p50/p95/p99 at --rate writes/s for --seconds, agents running.
            search:   search latency with facets over the catch-up store (--queries queries).
            embed:    sentence embeddings per second in batches of 32 (--sentences), beside cblas_sgemm's GFLOP/s on the same shapes.
            knn:      exact k-NN (k = 10) p50/p95 over --vectors stored vectors, beside one cblas_sgemv scan of the same matrix.
            drift:    a full drift check of the catch-up store (--cases), clean and with 100 injected differences of four kinds, then repair and verify.
            priority: restriction commit-to-applied in search on the priority path and on the ordinary path, under --rate writes/s for --seconds.
            scale-out: --clients HTTP clients writing (open, then transitions) for --seconds to `canon serve --database` at --server while
                      `canon worker` processes apply them; commit-to-searchable from each answer (scripts/bench-scale-out runs it all).
            Build with -c release for figures worth writing down.
            """)

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        case all, catchUp = "catch-up", rebuild, latency, search, embed, knn, priority, drift, scaleOut = "scale-out"
    }

    @Option(name: .long, help: "all, catch-up, rebuild, latency, search, embed, knn, priority, drift or scale-out (not part of all).") var scenario: Scenario = .all
    @Option(name: .long, help: "scale-out: the database the server and workers run on; drift, rebuild: a new database to run the scenario on PostgreSQL.") var database: String?
    @Option(name: .long, help: "scale-out: the server's address, e.g. http://127.0.0.1:8080.") var server: String?
    @Option(name: .long, help: "scale-out: concurrent HTTP clients.") var clients: Int = 16
    @Option(name: .long, help: "Sentences for the embed scenario.") var sentences: Int = 2_000
    @Option(name: .long, help: "Stored vectors for the knn scenario.") var vectors: Int = 100_000
    @Option(name: .long, help: "Cases in the catch-up backlog (4 events each).") var cases: Int = 25_000
    @Flag(name: .long, help: "catch-up: reuse the backlog an earlier run left in --scratch (same --cases) instead of writing it again (rebuild always does).")
    var reuseBacklog = false
    @Flag(name: .long, help: "rebuild: fold the whole outbox instead of reading the canonical state.")
    var fromOutbox = false
    @Option(name: .long, help: "Writes per second for the latency scenario.") var rate: Int = 1_000
    @Option(name: .long, help: "Seconds the latency scenario runs.") var seconds: Int = 60
    @Option(name: .long, help: "Queries for the search scenario.") var queries: Int = 2_000
    @Flag(name: .long, inversion: .prefixedNo, help: "drift: repair and verify after the check (--no-repair leaves the injected drift, for scripts/bench-drift).")
    var repair = true
    @Option(name: .long, help: "Scratch directory (kept, so search can reuse the catch-up store).") var scratch: String = "canon-bench-data"

    func validate() throws {
        guard cases >= 1 else { throw ValidationError("--cases must be at least 1") }
        guard (1...20_000).contains(rate) else { throw ValidationError("--rate must be between 1 and 20000") }
        guard (1...3_600).contains(seconds) else { throw ValidationError("--seconds must be between 1 and 3600") }
        guard queries >= 1 else { throw ValidationError("--queries must be at least 1") }
        guard sentences >= 32 else { throw ValidationError("--sentences must be at least 32") }
        guard vectors >= 1 else { throw ValidationError("--vectors must be at least 1") }
        guard (1...256).contains(clients) else { throw ValidationError("--clients must be between 1 and 256") }
        if scenario == .scaleOut {
            guard database != nil, let server, server.hasPrefix("http://") else {
                throw ValidationError("--scenario scale-out needs --database postgres://… and --server http://host:port")
            }
        } else if scenario == .drift || scenario == .rebuild, database != nil {
            guard server == nil else { throw ValidationError("--server applies to --scenario scale-out only") }
        } else if database != nil || server != nil {
            throw ValidationError("--database applies to --scenario scale-out, drift and rebuild only, --server to scale-out only (the other scenarios run on embedded stores)")
        }
    }

    func run() async throws {
        if scenario == .scaleOut {
            let url: PostgresURL
            do { url = try PostgresURL(database ?? "") } catch { throw ValidationError("--database: \(error)") }
            let status: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(("  " + $0 + "\n").utf8)) }
            let result = try await ScaleOutBench(database: url, server: server ?? "").run(clients: clients, duration: .seconds(seconds), progress: status)
            say(String(format: "scale-out: %d writes through HTTP in %.1fs = %.0f writes/s with %d clients (%d failed); commit-to-searchable p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms",
                       result.writes, result.seconds, result.writesPerSecond, clients, result.failures,
                       result.latency.p50, result.latency.p95, result.latency.p99, result.latency.max))
            return
        }
        if scenario == .drift, let database {
            let url: PostgresURL
            do { url = try PostgresURL(database) } catch { throw ValidationError("--database: \(error)") }
            let status: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(("  " + $0 + "\n").utf8)) }
            say("canon bench on \(ProcessInfo.processInfo.activeProcessorCount) cores, \(Date().formatted(.iso8601)), PostgreSQL")
            let result = try await PostgresDriftBench(database: url).run(cases: cases, repair: repair, progress: status)
            if let seeded = result.seedSeconds { say(String(format: "drift (PostgreSQL): %d cases seeded in %.2fs", result.cases, seeded)) }
            if let applied = result.applySeconds { say(String(format: "drift (PostgreSQL): case search applied from the outbox in %.2fs", applied)) }
            let clean = result.clean, warm = result.warm, found = result.found
            say(String(format: "drift (PostgreSQL): full check of %d clean cases, cold (every expected digest computed) %.2fs = %.0f keys/s, %d differences; warm (cached) %.2fs = %.0f keys/s, %d differences",
                       clean.expectedKeys, clean.seconds, clean.keysPerSecond, clean.count, warm.seconds, warm.keysPerSecond, warm.count))
            say(String(format: "drift (PostgreSQL): with 100 injected (warm): %.2fs = %.0f keys/s, %d ranges, %d keys compared one by one, found %d (%d exactly as injected, %d false positives); repair %.2fs, verify %d differences",
                       found.seconds, found.keysPerSecond, found.rangesCompared, found.keysCompared, found.count, result.foundExactly,
                       result.falsePositives, result.repairSeconds, result.verifiedDifferences))
            say("drift (PostgreSQL): phases of the check with 100 injected: "
                + found.phaseSeconds.sorted { $0.key < $1.key }.map { String(format: "%@ %.2fs", $0.key, $0.value) }.joined(separator: ", "))
            return
        }
        if scenario == .rebuild, let database {
            let url: PostgresURL
            do { url = try PostgresURL(database) } catch { throw ValidationError("--database: \(error)") }
            let status: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(("  " + $0 + "\n").utf8)) }
            say("canon bench on \(ProcessInfo.processInfo.activeProcessorCount) cores, \(Date().formatted(.iso8601)), PostgreSQL")
            let result = try await PostgresRebuildBench(database: url).run(cases: cases, fromOutbox: fromOutbox, progress: status)
            if let seeded = result.seedSeconds { say(String(format: "rebuild (PostgreSQL): %d cases (%lld events) seeded in %.2fs", result.cases, result.events, seeded)) }
            if let applied = result.applySeconds { say(String(format: "rebuild (PostgreSQL): the live version applied the outbox in %.2fs", applied)) }
            let report = result.rebuild
            say(String(format: "rebuild of case search (PostgreSQL, %@, %@ to %@): %d documents, %lld events in %.2fs = %.0f events/s (building %.2fs, catching up %.2fs, comparing %.2fs); INSERT … SELECT of the same rows %.2fs; ratio %.2fx",
                       fromOutbox ? "from the outbox" : "from canonical state",
                       report.replacing.description, report.projection.description, report.rows, result.events, report.seconds, Double(result.events) / report.seconds,
                       report.phases.building, report.phases.catchingUp, report.phases.comparing, result.rawCopySeconds, report.seconds / result.rawCopySeconds))
            return
        }
        let directory = DataDirectory(scratch)
        try directory.create()
        let bench = EndToEndBench(scratch: directory) { say($0) }
        let status: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(("  " + $0 + "\n").utf8)) }
        say("canon bench on \(ProcessInfo.processInfo.activeProcessorCount) cores, \(Date().formatted(.iso8601))")
        if scenario == .all || scenario == .catchUp {
            let result = try await bench.catchUp(cases: cases, reuseBacklog: reuseBacklog, progress: status)
            say(String(format: "catch-up: %d events → %d documents in %.2fs = %.0f events/s; raw FTS5 bulk insert of the same documents %.2fs; ratio %.2fx",
                       result.events, result.documents, result.catchUpSeconds, result.eventsPerSecond, result.rawInsertSeconds, result.ratio))
        }
        if scenario == .all || scenario == .rebuild {
            let result = try await bench.rebuild(cases: cases, fromOutbox: fromOutbox, progress: status)
            let report = result.report
            say(String(format: "rebuild of case search (%@): %d documents in %.2fs (building %.2fs, catching up %.2fs, comparing %.2fs); raw FTS5 bulk load of the same documents %.2fs; ratio %.2fx",
                       fromOutbox ? "from the outbox" : "from canonical state", report.rows, report.seconds, report.phases.building,
                       report.phases.catchingUp, report.phases.comparing, result.rawInsertSeconds, result.ratio))
        }
        if scenario == .all || scenario == .search {
            let result = try await bench.searchLatency(cases: cases, queries: queries, progress: status)
            say(String(format: "search: %d queries with facets over %d documents (memory index of about %.0f MiB, loaded in %.2fs): p50 %.2f ms, p95 %.2f ms, p99 %.2f ms",
                       result.queries, result.documents, result.indexMegabytes, result.indexLoadSeconds, result.p50, result.p95, result.p99))
            say(String(format: "search, the same queries on FTS5 alone: p50 %.2f ms, p95 %.2f ms, p99 %.2f ms; memory index faster by p50 %.1fx, p95 %.1fx; %d of %d answers differ",
                       result.fts5P50, result.fts5P95, result.fts5P99, result.fts5P50 / max(result.p50, 0.001), result.fts5P95 / max(result.p95, 0.001),
                       result.disagreements, result.queries))
            say(String(format: "search + re-authorization on canonical state: p50 %.2f ms, p95 %.2f ms, p99 %.2f ms; ratio p50 %.2fx, p95 %.2fx",
                       result.reauthorizedP50, result.reauthorizedP95, result.reauthorizedP99,
                       result.reauthorizedP50 / max(result.p50, 0.001), result.reauthorizedP95 / max(result.p95, 0.001)))
        }
        if scenario == .all || scenario == .embed || scenario == .knn {
            let embedder: SentenceEmbedder
            do { embedder = try SentenceEmbedder(directory: SentenceEmbedder.defaultDirectory) } catch { throw ValidationError(error.message) }
            let semantic = SemanticBench(scratch: directory)
            if scenario != .knn {
                let result = semantic.embedThroughput(embedder, sentences: sentences)
                say(String(format: "embed: %d sentences (mean %.1f tokens) in batches of %d: %.2fs = %.0f sentences/s, %.1f GFLOP/s; cblas_sgemm alone on the feed-forward shape %.1f GFLOP/s",
                           result.sentences, result.meanTokens, result.batchSize, result.seconds, result.sentencesPerSecond, result.gflops, result.sgemmGflops))
            }
            if scenario != .embed {
                let result = try await semantic.knnLatency(embedder, vectors: vectors, queries: queries, progress: status)
                say(String(format: "knn: %d vectors (stored in %.1fs), %d queries, k = 10: p50 %.2f ms, p95 %.2f ms, p99 %.2f ms; one cblas_sgemv scan p50 %.2f ms, p95 %.2f ms",
                           result.vectors, result.loadSeconds, result.queries, result.p50, result.p95, result.p99, result.sgemvP50, result.sgemvP95))
            }
        }
        if scenario == .all || scenario == .priority {
            let result = try await bench.priorityLatency(rate: rate, duration: .seconds(seconds), progress: status)
            say(String(format: "priority: %d writes at %.0f/s, %d restrictions; commit-to-applied on the priority path p50 %.2f ms, p99 %.2f ms, max %.2f ms; on the ordinary path p50 %.2f ms, p99 %.2f ms",
                       result.writes, result.achievedRate, result.restrictions, result.priority.p50, result.priority.p99, result.priority.max,
                       result.ordinary.p50, result.ordinary.p99))
        }
        if scenario == .all || scenario == .drift {
            let result = try await bench.drift(cases: cases, repair: repair, progress: status)
            let found = result.report
            say(String(format: "drift: full check of %d clean cases, cold (every expected digest computed) %.2fs = %.0f keys/s, %d differences; warm (cached) %.2fs = %.0f keys/s, %d differences",
                       result.cases, result.cleanSeconds, Double(result.cases) / result.cleanSeconds, result.cleanDifferences,
                       result.warmSeconds, Double(result.cases) / result.warmSeconds, result.warmDifferences))
            say(String(format: "drift: with 100 injected (warm): %.2fs = %.0f keys/s, %d ranges, %d keys compared one by one, found %d (%d exactly as injected, %d false positives); repair %.2fs, verify %d differences",
                       found.seconds, found.keysPerSecond, found.rangesCompared, found.keysCompared,
                       found.count, result.foundExactly, result.falsePositives, result.repairSeconds, result.verifiedDifferences))
            say("drift: phases of the check with 100 injected: " + found.phaseSeconds.sorted { $0.key < $1.key }.map { String(format: "%@ %.2fs", $0.key, $0.value) }.joined(separator: ", "))
        }
        if scenario == .all || scenario == .latency {
            let result = try await bench.commitToSearchable(rate: rate, duration: .seconds(seconds), progress: status)
            say(String(format: "commit-to-searchable: %d writes at %.0f/s (target %d/s): p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms",
                       result.writes, result.achievedRate, result.targetRate, result.p50, result.p95, result.p99, result.max))
        }
    }
}
