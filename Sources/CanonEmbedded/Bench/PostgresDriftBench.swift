import Canon
import CanonPostgres
import CasePlatform
import Foundation

/// The drift scenario on PostgreSQL: the same demo cases committed to a canonical PostgreSQL
/// database, case search applied into its schema by the projection agent, then full checks, clean
/// and with 100 injected differences of the four kinds of the embedded scenario, and a repair.
/// The first clean check is cold (the expected-digest cache, `canon_drift_cache`, emptied first);
/// the ones after it are warm.
public struct PostgresDriftBench: Sendable {
    public let database: PostgresURL

    public init(database: PostgresURL) { self.database = database }

    public struct Result: Sendable {
        public var cases: Int
        public var seedSeconds: Double?
        public var applySeconds: Double?
        /// The first clean check, with an empty cache.
        public var clean: DriftReport
        /// The next one, with the cache the first filled.
        public var warm: DriftReport
        public var injected: [String: DriftKind]
        public var found: DriftReport
        public var repairSeconds: Double
        public var verifiedDifferences: Int
        public var foundExactly: Int { found.differences.filter { injected[$0.key] == $0.kind }.count }
        public var falsePositives: Int { found.differences.filter { injected[$0.key] == nil }.count }
    }

    public func run(cases: Int, repair: Bool = true, progress: @escaping @Sendable (String) -> Void) async throws -> Result {
        let canonical = try await PostgresCanonicalStore(url: database, migrations: CasePlatformSchema.migrations)
        var seedSeconds: Double?
        let present = try await canonical.count("cases", filter: [:])
        if present == 0 {
            let started = ContinuousClock.now
            _ = try await DemoPlatform(configuration: .init(cases: cases, seed: 11)).seed(into: canonical) { step in
                if step.casesDone % 10_000 == 0 { progress("drift (PostgreSQL): seeding \(step.casesDone)/\(step.casesTotal) cases") }
            }
            seedSeconds = (ContinuousClock.now - started).seconds
        } else if present != cases {
            throw ProjectionError.storage("\(database) already holds \(present) cases, not \(cases): give a new database")
        }
        let store = try await PostgresSearchStore.open(url: database, projection: CaseSearchProjection())
        var applySeconds: Double?
        let head = try await canonical.headPosition()
        if try await store.checkpoint().position < head {
            let started = ContinuousClock.now
            let agent = ProjectionAgent(store: store, source: canonical, commits: PositionWaiters())
            let running = Task { await agent.run() }
            while !(await agent.applied.wait(until: head, timeout: .seconds(5))) {
                progress("drift (PostgreSQL): applying \(agent.applied.reached)/\(head) events")
            }
            running.cancel()
            await running.value
            applySeconds = (ContinuousClock.now - started).seconds
        }
        let cache = PostgresDigestCache(url: database, identity: store.identity)
        let check = try PlatformDrift.check(store, source: canonical, cache: cache)
        let admin = PostgresDatabase(url: database, maximumConnections: 1)
        defer { admin.close() }
        let report: @Sendable (DriftCheck.Progress) -> Void = { step in
            if step.done == 0 || step.done % 250_000 == 0 { progress("drift (PostgreSQL): \(step.phase.rawValue) \(step.done)/\(step.total.map(String.init) ?? "?")") }
        }
        try await admin.execute("DROP TABLE IF EXISTS \(cache.table)")
        var clean = try await check.run(.full, record: false, progress: report)
        if clean.count > 0 {
            progress("drift (PostgreSQL): repairing \(clean.count) differences left by an earlier run")
            _ = try await check.repair(progress: report)
            try await admin.execute("DROP TABLE IF EXISTS \(cache.table)")
            clean = try await check.run(.full, record: false, progress: report)
        }
        let warm = try await check.run(.full, record: false, progress: report)
        let injected = try await inject(into: store, canonical: canonical, admin: admin)
        let found = try await check.run(.full, progress: report)
        var repairSeconds = 0.0
        var verified = found.count
        if repair {
            let started = ContinuousClock.now
            verified = try await check.repair(progress: report).verified.count
            repairSeconds = (ContinuousClock.now - started).seconds
        }
        return Result(
            cases: clean.expectedKeys, seedSeconds: seedSeconds, applySeconds: applySeconds, clean: clean, warm: warm, injected: injected, found: found,
            repairSeconds: repairSeconds, verifiedDifferences: verified)
    }

    /// Writes 100 differences into the schema behind the runtime's back, 25 of each kind: a
    /// deleted document, a title changed in place (its kept digest left as it was), a status
    /// changed with a matching digest, and a stray document.
    func inject(into store: PostgresSearchStore, canonical: PostgresCanonicalStore, admin: PostgresDatabase) async throws -> [String: DriftKind] {
        let ids = try await canonical.fetchValues(RowQuery(table: "cases", columns: ["id"], order: [.init("id")])).compactMap { row -> String? in
            if case .text(let id) = row[0] { return id }
            return nil
        }
        let keys = Array(ids.shuffled().prefix(75))
        guard keys.count == 75 else { throw ProjectionError.storage("drift bench: 75 cases needed, \(ids.count) held") }
        let docs = "\(store.schemaName).docs"
        func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
        var injected: [String: DriftKind] = [:]
        try await admin.execute("DELETE FROM \(docs) WHERE key IN (\(keys[0..<25].map(quoted).joined(separator: ", ")))")
        for key in keys[0..<25] { injected[key] = .missing }
        try await admin.execute("UPDATE \(docs) SET t_title = t_title || ' (edited)' WHERE key IN (\(keys[25..<50].map(quoted).joined(separator: ", ")))")
        for key in keys[25..<50] { injected[key] = .stale }
        let schema = CaseSearchProjection().schema
        for key in keys[50..<75] {
            // Applied wrong: the status and the digest agree with each other, not with canonical state.
            guard var document = try await store.document(key) else { continue }
            let status = document.facets["status"] == "closed" ? "triage" : "closed"
            document.facets["status"] = status
            let digest = Int64(bitPattern: document.driftDigest(schema))
            try await admin.execute("UPDATE \(docs) SET f_status = \(quoted(status)), digest = \(digest) WHERE key = \(quoted(key))")
            injected[key] = .stale
        }
        let template = keys[74]
        for _ in 0..<25 {
            let key = UUID().uuidString.lowercased()
            let columns = "team, restricted, clearance, sort_time, last_position, digest, display, tsv, t_title, t_parties, t_summary, f_status"
            try await admin.execute("INSERT INTO \(docs) (key, \(columns)) SELECT \(quoted(key)), \(columns) FROM \(docs) WHERE key = \(quoted(template))")
            injected[key] = .extra
        }
        return injected
    }
}
