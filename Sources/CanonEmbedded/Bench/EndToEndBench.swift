import Canon
import CanonSQLite
import CasePlatform
import Foundation
import GRDB
import Histogram
import Synchronization

/// End-to-end scenarios behind `canon bench`, each measured beside its physical limit on the
/// same machine in the same run.
public struct EndToEndBench: Sendable {
    public var scratch: DataDirectory
    public var report: @Sendable (String) -> Void

    public init(scratch: DataDirectory, report: @escaping @Sendable (String) -> Void) {
        self.scratch = scratch
        self.report = report
    }

    static let investigator = User(id: "bench", displayName: "Bench", role: .investigator, team: "financial-crime", clearance: 3)

    // MARK: - Backlog

    /// Writes `cases` cases straight through the decisions in large transactions: each case is
    /// opened, gets its subject party linked and moves to triage (4 events with the party).
    /// - Returns: the platform and the number of events written.
    func backlog(cases: Int, in directory: DataDirectory, progress: @Sendable (Int) -> Void) async throws -> (EmbeddedPlatform, Int) {
        let platform = try EmbeddedPlatform.open(directory, create: true, configuration: .init(canonical: .init(synchronous: .normal)))
        _ = try await CaseCommands(store: platform.canonical).registerUser(Self.investigator)
        var random = SeededGenerator(seed: 99)
        let now = Date()
        var done = 0
        while done < cases {
            var batch: [UnitOfWork] = []
            for _ in done..<min(cases, done + 2_000) {
                let party = try CaseDecisions.registerParty(
                    RegisterPartyRequest(kind: "organisation", name: "\(random.pick(BenchWords.names)) \(random.pick(BenchWords.kinds))"),
                    id: random.id(at: now), by: Self.investigator, at: now, metadata: .system)
                let opened = try CaseDecisions.openCase(
                    OpenCaseRequest(
                        title: "\(party.value.name): \(random.pick(BenchWords.issues))", summary: BenchWords.summary(&random),
                        sector: random.pick(Sector.allCases).rawValue, region: random.pick(Region.allCases).rawValue,
                        priority: random.pick(Priority.allCases).rawValue),
                    id: random.id(at: now), by: Self.investigator, at: now, metadata: .system)
                let linked = try CaseDecisions.linkParty(opened.value, party: party.value, role: "subject", existing: [], by: Self.investigator, at: now, metadata: .system)
                let moved = try CaseDecisions.transition(linked.value.0, TransitionRequest(to: "triage", reason: "assessed"), by: Self.investigator, at: now, metadata: .system)
                batch += [party.work, opened.work, linked.work, moved.work]
            }
            _ = try await platform.canonical.commit(batch: batch)
            done = min(cases, done + 2_000)
            progress(done)
        }
        return (platform, Int(try await platform.canonical.headPosition().rawValue))
    }

    // MARK: - Catch-up and rebuild

    /// The backlog of `cases` cases in `directory`: with `reuse`, the one an earlier run left
    /// there when it holds exactly the events `cases` make; else written anew.
    func backlog(cases: Int, in directory: DataDirectory, reuse: Bool, progress: @Sendable (String) -> Void) async throws -> (EmbeddedPlatform, Int) {
        if reuse, FileManager.default.fileExists(atPath: directory.databaseFile(for: "canonical").path) {
            let platform = try EmbeddedPlatform.open(directory, create: false, configuration: .init(canonical: .init(synchronous: .normal)))
            let head = Int(try await platform.canonical.headPosition().rawValue)
            if head == 4 * cases + 1 {
                progress("backlog: reusing \(head) events in \(directory.url.path)")
                return (platform, head)
            }
        }
        try? FileManager.default.removeItem(at: directory.url)
        return try await backlog(cases: cases, in: directory) { progress("backlog: \($0)/\(cases) cases") }
    }

    public struct CatchUpResult: Sendable {
        public var events: Int
        public var documents: Int
        public var catchUpSeconds: Double
        public var rawInsertSeconds: Double
        public var eventsPerSecond: Double { Double(events) / catchUpSeconds }
        public var ratio: Double { catchUpSeconds / rawInsertSeconds }
    }

    /// Applies the whole backlog to a fresh case-search store (what catch-up and rebuild do),
    /// then bulk-inserts the same documents into a bare FTS5 table in one transaction: the limit.
    ///
    /// - Parameter reuseBacklog: keep a backlog of the same size left by an earlier run (it is
    ///   generated from a fixed seed) instead of writing it again; only the search store is new.
    public func catchUp(cases: Int, reuseBacklog: Bool = false, progress: @Sendable (String) -> Void) async throws -> CatchUpResult {
        let directory = DataDirectory(scratch.url.appendingPathComponent("catch-up-\(cases)").path)
        let (platform, events) = try await backlog(cases: cases, in: directory, reuse: reuseBacklog, progress: progress)
        try? FileManager.default.removeItem(at: directory.databaseFile(for: "case-search.v9"))
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: directory.databaseFile(for: "case-search.v9").path + suffix) }
        let store = try EmbeddedPlatform.makeStore("case-search", version: 9, in: directory) as! SQLiteSearchStore
        // The projection agent itself, with its default configuration, catching up from nothing.
        let head = try await platform.canonical.headPosition()
        let agent = ProjectionAgent(store: store, source: platform.canonical, commits: PositionWaiters())
        let started = ContinuousClock.now
        let running = Task { await agent.run() }
        while !(await agent.applied.wait(until: head, timeout: .seconds(2))) {
            progress("catch-up: \(agent.applied.reached)/\(events) events")
        }
        let reached = ContinuousClock.now
        // What the catch-up left in the WAL goes to the file too, inside the time (the raw
        // insert's commit checkpoints its WAL as well).
        let wal = try await store.checkpointWAL()
        let catchUp = seconds(ContinuousClock.now - started)
        progress(String(
            format: "catch-up: the head reached in %.2fs; the WAL held %d MiB, checkpointed in %.2fs",
            seconds(reached - started), wal / 1_048_576, seconds(ContinuousClock.now - reached)))
        running.cancel()
        await running.value
        let documents = try await store.count()
        let raw = try await rawFTS5Insert(from: store, into: directory.url.appendingPathComponent("raw-fts5.sqlite").path)
        return CatchUpResult(events: events, documents: documents, catchUpSeconds: catchUp, rawInsertSeconds: raw)
    }

    public struct RebuildResult: Sendable {
        public var report: ProjectionRebuild.Report
        public var rawInsertSeconds: Double
        public var ratio: Double { report.seconds / rawInsertSeconds }
    }

    /// A blue-green rebuild of case search over the catch-up backlog of `cases` cases (kept from
    /// an earlier catch-up run, or written now), with the live version caught up first (not
    /// timed); then the raw FTS5 bulk load of the rebuilt documents, in the same run.
    public func rebuild(cases: Int, fromOutbox: Bool, progress: @Sendable (String) -> Void) async throws -> RebuildResult {
        let directory = DataDirectory(scratch.url.appendingPathComponent("catch-up-\(cases)").path)
        let (platform, _) = try await backlog(cases: cases, in: directory, reuse: true, progress: progress)
        let live = try platform.coordinator.store(named: "case-search")
        let head = try await platform.canonical.headPosition()
        if try await live.checkpoint().position < head {
            progress("catching up the live case search first (not timed)")
            _ = try await ProjectionRebuild(source: platform.canonical, live: live, next: live).run(compareAttempts: 1)
        }
        _ = try platform.prune("case-search")
        let report = try await platform.rebuild("case-search", fromOutbox: fromOutbox) { step in
            if let records = step.records {
                if records.done == records.total || records.done % 100_000 < 20_000 { progress("rebuild: \(records.done)/\(records.total) cases from canonical state") }
            } else {
                progress("rebuild: \(step.phase.rawValue) \(step.position)/\(step.target)")
            }
        }
        guard report.matches else { throw EmbeddedPlatformError(message: "the rebuilt version does not match the live one") }
        let rebuilt = try platform.coordinator.store(named: "case-search") as! SQLiteSearchStore
        let raw = try await rawFTS5Insert(from: rebuilt, into: directory.url.appendingPathComponent("raw-fts5.sqlite").path)
        _ = try platform.prune("case-search")
        return RebuildResult(report: report, rawInsertSeconds: raw)
    }

    /// Reads the documents' text out of `store` and inserts it into a bare FTS5 table with the
    /// same columns and tokenizer, in one transaction.
    func rawFTS5Insert(from store: SQLiteSearchStore, into path: String) async throws -> Double {
        try? FileManager.default.removeItem(atPath: path)
        let source = try DatabaseQueue(path: store.path)
        let rows = try await source.read { db in
            try GRDB.Row.fetchAll(db, sql: "SELECT title, parties, summary FROM docs_fts").map { [$0[0] as String, $0[1] as String, $0[2] as String] }
        }
        var configuration = GRDB.Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        let target = try DatabasePool(path: path, configuration: configuration)
        let started = ContinuousClock.now
        try await target.write { db in
            try db.execute(sql: "CREATE VIRTUAL TABLE docs_fts USING fts5(title, parties, summary, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')")
            let insert = try db.makeStatement(sql: "INSERT INTO docs_fts (title, parties, summary) VALUES (?, ?, ?)")
            for row in rows { try insert.execute(arguments: [row[0], row[1], row[2]]) }
        }
        return seconds(ContinuousClock.now - started)
    }

    // MARK: - Commit-to-searchable latency

    public struct LatencyResult: Sendable {
        public var writes: Int
        public var targetRate: Int
        public var achievedRate: Double
        public var p50: Double
        public var p95: Double
        public var p99: Double
        public var max: Double
    }

    /// Opens cases at a steady `rate` for `duration` with the agents running, and records for
    /// each the time from its commit returning to the search store having applied it.
    public func commitToSearchable(rate: Int, duration: Duration, progress: @Sendable (String) -> Void) async throws -> LatencyResult {
        let directory = DataDirectory(scratch.url.appendingPathComponent("latency").path)
        try? FileManager.default.removeItem(at: directory.url)
        let platform = try EmbeddedPlatform.open(
            directory, create: true,
            configuration: .init(projections: .init(agent: .init(batchSize: 1000, idleWait: .milliseconds(500)))))
        let commands = CaseCommands(store: platform.store)
        _ = try await commands.registerUser(Self.investigator)
        let agents = Task { try await platform.coordinator.run() }
        defer { agents.cancel() }
        let histogram = LockedHistogram()
        let interval = Duration.seconds(1) / rate
        let clock = ContinuousClock()
        let start = clock.now
        let end = start + duration
        var next = start
        var writes = 0
        var random = SeededGenerator(seed: 7)
        try await withThrowingTaskGroup(of: Void.self) { group in
            while clock.now < end {
                next += interval
                let outcome = try await commands.openCase(
                    OpenCaseRequest(title: "\(random.pick(BenchWords.names)) \(random.pick(BenchWords.issues))", summary: "", sector: "energy", region: "north", priority: "low"),
                    by: Self.investigator)
                let committed = clock.now
                writes += 1
                group.addTask {
                    _ = try await platform.coordinator.waitUntilApplied("case-search", position: outcome.position, timeout: .seconds(30))
                    histogram.record(clock.now - committed)
                }
                if writes % rate == 0 { progress("latency: \(writes) writes") }
                if next > clock.now { try await clock.sleep(until: next) }
            }
            try await group.waitForAll()
        }
        let elapsed = seconds(clock.now - start)
        return histogram.result(writes: writes, targetRate: rate, achievedRate: Double(writes) / elapsed)
    }

    public struct PriorityResult: Sendable {
        public var writes: Int
        public var restrictions: Int
        public var achievedRate: Double
        /// Commit to applied in the search store's filter, on the priority path.
        public var priority: LatencyResult
        /// Commit to applied by the ordinary agent, for the same restriction events.
        public var ordinary: LatencyResult
    }

    /// Ordinary writes (case openings) at `rate` per second with every 20th write a restriction
    /// change, agents running; records each restriction's commit-to-applied time on the priority
    /// path and on the ordinary path.
    public func priorityLatency(rate: Int, duration: Duration, progress: @Sendable (String) -> Void) async throws -> PriorityResult {
        let directory = DataDirectory(scratch.url.appendingPathComponent("priority").path)
        try? FileManager.default.removeItem(at: directory.url)
        let priority = LockedHistogram()
        let clock = ContinuousClock()
        let platform = try EmbeddedPlatform.open(
            directory, create: true,
            configuration: .init(
                projections: .init(
                    agent: .init(batchSize: 1000, idleWait: .milliseconds(500)),
                    priorityObserver: { events, appliedAt in
                        // From the transaction's commit time (stored on the event) to the filter columns written.
                        for event in events where event.type == CaseEvents.caseRestrictionChanged {
                            priority.record(.microseconds(Int64(max(0, appliedAt.timeIntervalSince(event.committedAt)) * 1_000_000)))
                        }
                    }),
                semantic: false))
        let commands = CaseCommands(store: platform.store)
        _ = try await commands.registerUser(Self.investigator)
        let legal = User(id: "bench-legal", displayName: "Bench Legal", role: .legal, team: nil, clearance: 3)
        _ = try await commands.registerUser(legal)
        let agents = Task { try await platform.coordinator.run() }
        defer { agents.cancel() }
        let ordinary = LockedHistogram()
        let interval = Duration.seconds(1) / rate
        let start = clock.now
        let end = start + duration
        var next = start
        var writes = 0
        var restrictions = 0
        var opened: [String] = []
        var restricted: Set<String> = []
        var random = SeededGenerator(seed: 17)
        try await withThrowingTaskGroup(of: Void.self) { group in
            while clock.now < end {
                next += interval
                if writes % 20 == 19, let id = opened.randomElement(using: &random) {
                    let restrict = !restricted.contains(id)
                    let outcome = try await commands.restrict(id, RestrictionRequest(restricted: restrict, reason: "bench"), by: legal)
                    let committed = clock.now
                    if restrict { restricted.insert(id) } else { restricted.remove(id) }
                    restrictions += 1
                    group.addTask {
                        _ = try await platform.coordinator.waitUntilApplied("case-search", position: outcome.position, timeout: .seconds(30))
                        ordinary.record(clock.now - committed)
                    }
                } else {
                    let outcome = try await commands.openCase(
                        OpenCaseRequest(title: "\(random.pick(BenchWords.names)) \(random.pick(BenchWords.issues))", summary: "", sector: "energy", region: "north", priority: "low"),
                        by: Self.investigator)
                    opened.append(outcome.id)
                }
                writes += 1
                if writes % rate == 0 { progress("priority: \(writes) writes, \(restrictions) restrictions") }
                if next > clock.now { try await clock.sleep(until: next) }
            }
            try await group.waitForAll()
        }
        let elapsed = seconds(clock.now - start)
        return PriorityResult(
            writes: writes, restrictions: restrictions, achievedRate: Double(writes) / elapsed,
            priority: priority.result(writes: restrictions, targetRate: rate, achievedRate: 0),
            ordinary: ordinary.result(writes: restrictions, targetRate: rate, achievedRate: 0))
    }

    // MARK: - Search latency

    public struct SearchLatencyResult: Sendable {
        public var documents: Int
        public var queries: Int
        public var p50: Double
        public var p95: Double
        public var p99: Double
        /// The same queries followed by re-authorization of their results against canonical
        /// state (one batch read of the result cases, then the access policy), as the route does.
        public var reauthorizedP50: Double
        public var reauthorizedP95: Double
        public var reauthorizedP99: Double
        /// The same queries answered by FTS5 alone (no memory index), in the same run.
        public var fts5P50: Double
        public var fts5P95: Double
        public var fts5P99: Double
        /// Seconds to load the memory index from the store's file.
        public var indexLoadSeconds: Double
        /// The memory index's approximate size.
        public var indexMegabytes: Double
        /// Queries whose page (keys and scores) or facet counts differed between the two paths.
        public var disagreements: Int
    }

    /// Runs `queries` searches with facets (a word, sometimes a prefix, sometimes a filter) over
    /// the store built by `catchUp`.
    public func searchLatency(cases: Int, queries: Int, progress: @Sendable (String) -> Void = { _ in }) async throws -> SearchLatencyResult {
        let directory = DataDirectory(scratch.url.appendingPathComponent("catch-up-\(cases)").path)
        let store = try EmbeddedPlatform.makeStore("case-search", version: 9, in: directory) as! SQLiteSearchStore
        let path = directory.databaseFile(for: ProjectionIdentity(name: "case-search", version: 9).storeName).path
        let fts5 = try SQLiteSearchStore(path: path, projection: CaseSearchProjection(), memoryIndex: .off)
        let documents = try await store.count()
        let loadStarted = ContinuousClock.now
        try await store.loadMemoryIndex()
        let indexLoadSeconds = (ContinuousClock.now - loadStarted).seconds
        let indexMegabytes = Double(store.memoryIndexSize?.bytes ?? 0) / 1_048_576
        progress("memory index of \(documents) documents loaded in \(String(format: "%.2f", indexLoadSeconds)) s, about \(Int(indexMegabytes)) MiB")
        let ftsHistogram = LockedHistogram()
        var disagreements = 0
        let canonical = try SQLiteCanonicalStore(path: directory.databaseFile(for: "canonical").path, migrations: CasePlatformSchema.migrations)
        let queriesOnCanonical = CaseQueries(store: canonical)
        var random = SeededGenerator(seed: 3)
        let histogram = LockedHistogram()
        let reauthorized = LockedHistogram()
        let clock = ContinuousClock()
        for index in 0..<queries {
            var word = random.pick(BenchWords.queryWords)
            if index % 4 == 1 { word = String(word.prefix(4)) }
            var filters: [String: String] = [:]
            if index % 3 == 0 { filters["sector"] = random.pick(Sector.allCases).rawValue }
            let visibility: SearchVisibility = index % 2 == 0 ? .everything : .unrestrictedAndTeams(["financial-crime"])
            let query = SearchQuery(text: word, filters: filters, limit: 20, visibility: visibility, facets: true)
            let started = clock.now
            let answer = try await store.search(query)
            histogram.record(clock.now - started)
            let ftsStarted = clock.now
            let fromFTS5 = try await fts5.search(query)
            ftsHistogram.record(clock.now - ftsStarted)
            if answer.hits.map(\.key) != fromFTS5.hits.map(\.key) || answer.hits.map(\.score) != fromFTS5.hits.map(\.score)
                || answer.facets != fromFTS5.facets {
                disagreements += 1
            }
            // The same query again, then re-authorized as the HTTP route does it.
            let again = clock.now
            let results = try await store.search(query)
            let current = try await queriesOnCanonical.cases(ids: results.hits.map(\.key))
            let kept = results.hits.filter { hit in current[hit.key].map { AccessPolicy.canView($0, as: Self.investigator) } ?? false }
            reauthorized.record(clock.now - again)
            precondition(kept.count <= results.hits.count)
        }
        let result = histogram.result(writes: queries, targetRate: 0, achievedRate: 0)
        let checked = reauthorized.result(writes: queries, targetRate: 0, achievedRate: 0)
        let alone = ftsHistogram.result(writes: queries, targetRate: 0, achievedRate: 0)
        return SearchLatencyResult(
            documents: documents, queries: queries, p50: result.p50, p95: result.p95, p99: result.p99,
            reauthorizedP50: checked.p50, reauthorizedP95: checked.p95, reauthorizedP99: checked.p99,
            fts5P50: alone.p50, fts5P95: alone.p95, fts5P99: alone.p99, indexLoadSeconds: indexLoadSeconds, indexMegabytes: indexMegabytes, disagreements: disagreements)
    }

    func seconds(_ duration: Duration) -> Double { duration.seconds }
}

/// An HdrHistogram of microseconds shared by concurrent recorders.
final class LockedHistogram: Sendable {
    private let locked = Mutex(Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three))

    func record(_ duration: Duration) {
        let micros = UInt64(max(0, duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000))
        locked.withLock { _ = $0.record(min(micros, 60_000_000)) }
    }

    /// Milliseconds at each percentile.
    func result(writes: Int, targetRate: Int, achievedRate: Double) -> EndToEndBench.LatencyResult {
        locked.withLock { histogram in
            EndToEndBench.LatencyResult(
                writes: writes, targetRate: targetRate, achievedRate: achievedRate,
                p50: Double(histogram.valueAtPercentile(50)) / 1000, p95: Double(histogram.valueAtPercentile(95)) / 1000,
                p99: Double(histogram.valueAtPercentile(99)) / 1000, max: Double(histogram.max) / 1000)
        }
    }
}

enum BenchWords {
    static let names = ["Northwind", "Bluegate", "Crescent", "Harbor", "Ironbridge", "Kestrel", "Lumen", "Meridian", "Oakridge", "Pinnacle",
                        "Quarry", "Redwood", "Silverline", "Tidewater", "Summit", "Vantage", "Westfield", "Granite", "Aurora", "Beacon"]
    static let kinds = ["Capital", "Energy", "Mutual", "Telecom", "Health", "Logistics", "Retail", "Pharma", "Water", "Insurance"]
    static let issues = ["misleading tariff disclosures", "unauthorised account charges", "suspected insider trading", "data breach notification delay",
                         "anti-money-laundering control failures", "mis-selling of payment protection", "price fixing allegation",
                         "vulnerable customer treatment", "market manipulation through spoofing", "sanctions screening gaps"]
    static let sentences = ["Customers were charged without consent.", "Records show repeated late notifications.",
                            "Traders coordinated prices before tenders.", "Monitoring missed structured deposits.",
                            "Complaints were closed without review.", "Marketing omitted material risks."]
    static let queryWords = ["tariff", "charges", "insider", "breach", "laundering", "protection", "fixing", "vulnerable", "spoofing",
                             "sanctions", "northwind", "meridian", "energy", "customers", "deposits"]

    static func summary(_ random: inout SeededGenerator) -> String {
        (0..<3).map { _ in random.pick(sentences) }.joined(separator: " ")
    }
}
