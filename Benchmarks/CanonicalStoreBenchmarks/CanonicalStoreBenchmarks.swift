import Benchmark
import Canon
import CanonSQLite
import CasePlatform
import Foundation
import GRDB

/// Commands per second through the canonical store with its outbox (one command per
/// transaction), beside raw GRDB single-row insert transactions on the same machine, in the same
/// run, with the same file settings (WAL, synchronous FULL): the physical limit.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock],
        timeUnits: .microseconds,
        warmupIterations: 1,
        scalingFactor: .kilo,
        maxDuration: .seconds(10),
        maxIterations: 10)

    Benchmark("raw GRDB insert, one row per transaction (the limit)") { benchmark in
        let directory = try ScratchDirectory()
        var configuration = GRDB.Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let pool = try DatabasePool(path: directory.file("raw.sqlite"), configuration: configuration)
        try await pool.write { db in
            try db.execute(sql: "CREATE TABLE rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL) STRICT")
        }
        let payload = String(repeating: "x", count: 300)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try await pool.write { db in
                try db.execute(sql: "INSERT INTO rows (payload) VALUES (?)", arguments: [payload])
            }
        }
        benchmark.stopMeasurement()
    }

    Benchmark("canonical command: open case (rows + history + event, one transaction)") { benchmark in
        let directory = try ScratchDirectory()
        let store = try SQLiteCanonicalStore(path: directory.file("canonical.sqlite"), migrations: CasePlatformSchema.migrations)
        let commands = CaseCommands(store: store)
        let investigator = User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2)
        _ = try await commands.registerUser(investigator)
        let request = OpenCaseRequest(
            title: "Northwind Energy: misleading tariff disclosures",
            summary: "Customers were shown introductory tariffs without the standard rate that followed.",
            sector: "energy", region: "north", priority: "high")
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await commands.openCase(request, by: investigator))
        }
        benchmark.stopMeasurement()
    }

    Benchmark("canonical command: transition an existing case (read, check version, update, append)") { benchmark in
        let directory = try ScratchDirectory()
        let store = try SQLiteCanonicalStore(path: directory.file("canonical.sqlite"), migrations: CasePlatformSchema.migrations)
        let commands = CaseCommands(store: store)
        let investigator = User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2)
        _ = try await commands.registerUser(investigator)
        var ids: [String] = []
        for _ in benchmark.scaledIterations {
            ids.append(try await commands.openCase(
                OpenCaseRequest(title: "Case", summary: "", sector: "energy", region: "north", priority: "low"), by: investigator).id)
        }
        let triage = TransitionRequest(to: "triage", reason: "initial assessment complete")
        benchmark.startMeasurement()
        for id in ids {
            blackHole(try await commands.transition(id, triage, by: investigator))
        }
        benchmark.stopMeasurement()
    }
}

/// A temporary directory removed when released.
final class ScratchDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("canon-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}
