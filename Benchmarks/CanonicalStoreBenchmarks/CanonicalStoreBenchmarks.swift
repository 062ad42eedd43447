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

    // Per call, in nanoseconds: the functions below take a few microseconds or less.
    let perCall = Benchmark.Configuration(
        metrics: [.throughput, .wallClock], timeUnits: .nanoseconds, warmupIterations: 1, scalingFactor: .kilo,
        maxDuration: .seconds(10), maxIterations: 20)

    // What a projection pays per event to read a `case.opened` payload: `JSONDecoder` (the
    // reference), then `decodePayload`, which reads it with the flat JSON reader.
    let opened = Case(
        id: UUID().uuidString.lowercased(), title: "Northwind misleading tariff disclosures", summary: "Customers were told the tariff was fixed.",
        sector: .energy, region: .north, priority: .high, status: .intake, team: "financial-crime", assignee: nil, restricted: false,
        clearance: 1, slaDueAt: Date(), version: 1, openedAt: Date(), openedBy: "ivan", updatedAt: Date())
    let openedEvent: EventEnvelope = {
        let pending = try! PendingEvent(streamID: opened.streamID, type: CaseEvents.caseOpened, encoding: opened, occurredAt: Date())
        return EventEnvelope(
            position: OutboxPosition(1), streamID: pending.streamID, streamVersion: 1, type: pending.type, schemaVersion: 1, payload: pending.payload,
            actor: "ivan", correlationID: nil, causationID: nil, occurredAt: Date(), committedAt: Date(), priority: false)
    }()

    Benchmark("event payload: case.opened through JSONDecoder (the reference)", configuration: perCall) { benchmark in
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = Timestamp.decodingStrategy
        for _ in benchmark.scaledIterations {
            blackHole(try decoder.decode(Case.self, from: openedEvent.payload))
        }
    }

    Benchmark("event payload: case.opened through decodePayload (the flat reader)", configuration: perCall) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try openedEvent.decodePayload(as: Case.self))
        }
    }

    // What a search document write pays for its display (a case's JSON, written on every
    // document write) and a payload or display pays per date: the hand-written writers, beside
    // `JSONEncoder` and Foundation's ISO 8601 formatter.
    let display: CaseSearchProjection.Display = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = Timestamp.decodingStrategy
        let json = #"{"clearance":1,"id":"0192f1a4-9c3e-7a81-8c2d-5e6f7a8b9c0d","opened_at":"2026-11-27T00:01:28.449757Z","#
            + #""parties":["Harbor Health","Jane Doe"],"priority":"critical","region":"east","restricted":false,"sector":"retail","#
            + #""sla_due_at":"2026-12-02T00:01:28.449757Z","status":"triage","team":"financial-crime","#
            + #""title":"Harbor Health: price fixing allegation","version":3}"#
        return try! decoder.decode(CaseSearchProjection.Display.self, from: Data(json.utf8))
    }()
    Benchmark("search display JSON: the flat writer", configuration: perCall) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(display.encoded()) }
    }
    Benchmark("search display JSON: JSONEncoder with sorted keys (the reference)", configuration: perCall) { benchmark in
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.dateEncodingStrategy = Timestamp.encodingStrategy
        for _ in benchmark.scaledIterations { blackHole(try encoder.encode(display)) }
    }
    let date = Date(timeIntervalSince1970: 1_795_737_688.449_757)
    Benchmark("timestamp: Timestamp.iso8601", configuration: perCall) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(Timestamp.iso8601(date)) }
    }
    Benchmark("timestamp: ISO8601DateFormatter with fractional seconds (Foundation, the peer)", configuration: perCall) { benchmark in
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for _ in benchmark.scaledIterations { blackHole(formatter.string(from: date)) }
    }

    // What a catch-up pays to read the outbox, 1,000 events a read: the store's read (each column
    // through SQLite's C API where SQLite holds it), beside the same rows read through GRDB's
    // `Row` as the store did before (a boxed value per column, the payload as a String copied
    // into `Data`), from the same file in the same run.
    let outboxReads = Benchmark.Configuration(
        metrics: [.throughput, .wallClock], timeUnits: .microseconds, warmupIterations: 1, scalingFactor: .one,
        maxDuration: .seconds(10), maxIterations: 200)
    Benchmark("outbox read: 1,000 events through the store (SQLite's C API)", configuration: outboxReads) { benchmark in
        let (directory, store) = try await outboxOf(1_000)
        defer { withExtendedLifetime(directory) {} }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await store.events(after: .start, limit: 1_000))
        }
        benchmark.stopMeasurement()
    }

    Benchmark("outbox read: 1,000 events through GRDB rows (the reference: the read before)", configuration: outboxReads) { benchmark in
        let (directory, _) = try await outboxOf(1_000)
        defer { withExtendedLifetime(directory) {} }
        let pool = try DatabasePool(path: directory.file("canonical.sqlite"))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await pool.read { db in
                var events: [EventEnvelope] = []
                let rows = try GRDB.Row.fetchCursor(
                    db.cachedStatement(sql: """
                        SELECT position, stream_id, stream_version, type, schema_version, payload, actor, correlation_id, causation_id,
                        occurred_at, committed_at, priority FROM canon_outbox WHERE position > ? ORDER BY position LIMIT ?
                        """),
                    arguments: [0, 1_000])
                while let row = try rows.next() {
                    let payload: String = row[5]
                    events.append(EventEnvelope(
                        position: OutboxPosition(row[0] as Int64), streamID: StreamID(row[1] as String), streamVersion: row[2], type: row[3],
                        schemaVersion: row[4], payload: Data(payload.utf8), actor: row[6], correlationID: row[7], causationID: row[8],
                        occurredAt: Timestamp.date(microseconds: row[9]), committedAt: Timestamp.date(microseconds: row[10]),
                        priority: (row[11] as Int64) != 0))
                }
                return events
            })
        }
        benchmark.stopMeasurement()
    }

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

    Benchmark("raw GRDB insert, the same three rows and indexes per transaction (the limit for this write)") { benchmark in
        let directory = try ScratchDirectory()
        var configuration = GRDB.Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let pool = try DatabasePool(path: directory.file("raw3.sqlite"), configuration: configuration)
        try await pool.write { db in
            try db.execute(sql: """
                CREATE TABLE cases (id TEXT PRIMARY KEY, team TEXT NOT NULL, status TEXT NOT NULL, body TEXT NOT NULL) STRICT;
                CREATE INDEX cases_team_status ON cases (team, status);
                CREATE TABLE history (case_id TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (case_id, version)) STRICT;
                CREATE TABLE outbox (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, stream_version INTEGER NOT NULL, payload TEXT NOT NULL) STRICT;
                CREATE UNIQUE INDEX outbox_stream ON outbox (stream_id, stream_version);
                """)
        }
        let body = String(repeating: "x", count: 300)
        let payload = String(repeating: "y", count: 600)
        let ids = benchmark.scaledIterations.map { _ in UUID().uuidString.lowercased() }
        benchmark.startMeasurement()
        for id in ids {
            try await pool.write { db in
                try db.execute(sql: "INSERT INTO cases VALUES (?, 'financial-crime', 'intake', ?)", arguments: [id, body])
                try db.execute(sql: "INSERT INTO history VALUES (?, 1, ?)", arguments: [id, body])
                try db.execute(sql: "INSERT INTO outbox (stream_id, stream_version, payload) VALUES (?, 1, ?)", arguments: ["case-" + id, payload])
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

    Benchmark("breakdown: decide open case only (validation, event encoding; no store)") { benchmark in
        let investigator = User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2)
        let request = OpenCaseRequest(
            title: "Northwind Energy: misleading tariff disclosures",
            summary: "Customers were shown introductory tariffs without the standard rate that followed.",
            sector: "energy", region: "north", priority: "high")
        let now = Date()
        for index in benchmark.scaledIterations {
            blackHole(try CaseDecisions.openCase(request, id: "id-\(index)", by: investigator, at: now, metadata: .system))
        }
    }

    for (label, configuration) in [
        ("store only", SQLiteCanonicalStore.Configuration()),
        ("synchronous NORMAL", SQLiteCanonicalStore.Configuration(synchronous: .normal)),
        ("autocheckpoint 10000", SQLiteCanonicalStore.Configuration(walAutocheckpointPages: 10_000)),
    ] {
        Benchmark("breakdown: commit prebuilt open-case units (\(label))") { benchmark in
            let directory = try ScratchDirectory()
            let store = try SQLiteCanonicalStore(path: directory.file("canonical.sqlite"), migrations: CasePlatformSchema.migrations, configuration: configuration)
            let investigator = User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2)
            let request = OpenCaseRequest(title: "Case", summary: "", sector: "energy", region: "north", priority: "low")
            let units = try benchmark.scaledIterations.map { _ in
                try CaseDecisions.openCase(request, id: UUID().uuidString.lowercased(), by: investigator, at: Date(), metadata: .system).work
            }
            benchmark.startMeasurement()
            for unit in units {
                blackHole(try await store.commit(unit))
            }
            benchmark.stopMeasurement()
        }
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

/// A canonical store on a new file holding `cases` opened cases (one `case.opened` event each).
func outboxOf(_ cases: Int) async throws -> (ScratchDirectory, SQLiteCanonicalStore) {
    let directory = try ScratchDirectory()
    let store = try SQLiteCanonicalStore(path: directory.file("canonical.sqlite"), migrations: CasePlatformSchema.migrations)
    let investigator = User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2)
    let request = OpenCaseRequest(
        title: "Northwind Energy: misleading tariff disclosures",
        summary: "Customers were shown introductory tariffs without the standard rate that followed.",
        sector: "energy", region: "north", priority: "high")
    _ = try await store.commit(batch: try (0..<cases).map { _ in
        try CaseDecisions.openCase(request, id: TimeOrderedID.next(), by: investigator, at: Date(), metadata: .system).work
    })
    return (directory, store)
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
