import Canon
import CanonPostgres
import CasePlatform
import Foundation

/// The rebuild scenario on PostgreSQL: demo cases committed to a canonical PostgreSQL database,
/// case search applied into its live schema by the projection agent, then a blue-green rebuild
/// of it (`PostgresPlatform.rebuild`) into the next schema, beside the limit: the rebuilt
/// documents and vocabulary copied into a table of the same shape and indexes by one
/// `INSERT … SELECT` each, inside the server (no client, no folding, no round trips).
public struct PostgresRebuildBench: Sendable {
    public let database: PostgresURL

    public init(database: PostgresURL) { self.database = database }

    public struct Result: Sendable {
        public var cases: Int
        public var events: Int64
        public var seedSeconds: Double?
        /// The live agent applying the whole outbox to the empty live version.
        public var applySeconds: Double?
        public var rebuild: ProjectionRebuild.Report
        /// The same documents and words written by `INSERT … SELECT` into tables of the same shape.
        public var rawCopySeconds: Double
    }

    /// - Parameter fromOutbox: fold the whole outbox instead of reading one snapshot of canonical
    ///   state (the portfolio's rebuild source for case search). A database seeded by an earlier
    ///   run is reused (its cases are not written again), so both ways run over the same data.
    public func run(cases: Int, chunkSize: Int = 5_000, fromOutbox: Bool = false, progress: @escaping @Sendable (String) -> Void) async throws -> Result {
        let platform = try await PostgresPlatform.open(url: database, configuration: .init(runAgents: false))
        defer { Task { await platform.leases.close() } }
        var seedSeconds: Double?
        let present = try await platform.canonical.count("cases", filter: [:])
        if present == 0 {
            let started = ContinuousClock.now
            _ = try await DemoPlatform(configuration: .init(cases: cases, seed: 11)).seed(into: platform.canonical) { step in
                if step.casesDone % 10_000 == 0 { progress("rebuild (PostgreSQL): seeding \(step.casesDone)/\(step.casesTotal) cases") }
            }
            seedSeconds = (ContinuousClock.now - started).seconds
        } else if present != cases {
            throw ProjectionError.storage("\(database) already holds \(present) cases, not \(cases): give a new database")
        }
        let head = try await platform.canonical.headPosition()
        let live = try platform.coordinator.store(named: PlatformPortfolio.Store.caseSearch)
        var applySeconds: Double?
        if try await live.checkpoint().position < head {
            let started = ContinuousClock.now
            let agent = ProjectionAgent(store: live, source: platform.canonical, commits: PositionWaiters())
            let running = Task { await agent.run() }
            while !(await agent.applied.wait(until: head, timeout: .seconds(5))) {
                progress("rebuild (PostgreSQL): the live version applying \(agent.applied.reached)/\(head) events")
            }
            running.cancel()
            await running.value
            applySeconds = (ContinuousClock.now - started).seconds
        }
        let report = try await platform.rebuild(PlatformPortfolio.Store.caseSearch, chunkSize: chunkSize, fromOutbox: fromOutbox) { step in
            if let records = step.records {
                if records.done % 20_000 == 0 || records.done == records.total {
                    progress("rebuild (PostgreSQL): \(step.phase.rawValue) \(records.done)/\(records.total) cases")
                }
            } else if step.phase != .building || step.position.rawValue % 100_000 < Int64(chunkSize) {
                progress("rebuild (PostgreSQL): \(step.phase.rawValue) \(step.position)/\(step.target)")
            }
        }
        let schema = PostgresProjectionVersions.schema(of: PlatformPortfolio.Store.caseSearch, version: report.projection.version)
        let admin = PostgresDatabase(url: database, maximumConnections: 1)
        defer { admin.close() }
        try await admin.execute("DROP TABLE IF EXISTS public.bench_raw_docs, public.bench_raw_terms")
        try await admin.execute("CREATE TABLE public.bench_raw_docs (LIKE \(schema).docs INCLUDING ALL)")
        try await admin.execute("CREATE TABLE public.bench_raw_terms (LIKE \(schema).terms INCLUDING ALL)")
        let started = ContinuousClock.now
        try await admin.execute("INSERT INTO public.bench_raw_docs OVERRIDING SYSTEM VALUE SELECT * FROM \(schema).docs")
        try await admin.execute("INSERT INTO public.bench_raw_terms SELECT * FROM \(schema).terms")
        let rawCopySeconds = (ContinuousClock.now - started).seconds
        try await admin.execute("DROP TABLE public.bench_raw_docs, public.bench_raw_terms")
        return Result(cases: cases, events: head.rawValue, seedSeconds: seedSeconds, applySeconds: applySeconds, rebuild: report, rawCopySeconds: rawCopySeconds)
    }
}
