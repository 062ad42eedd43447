import Canon
import CanonSQLite
import CasePlatform
import Foundation
import GRDB

extension EndToEndBench {
    public struct DriftResult: Sendable {
        public var cases: Int
        public var cleanSeconds: Double
        public var cleanDifferences: Int
        public var warmSeconds: Double
        public var warmDifferences: Int
        public var injected: [String: DriftKind]
        public var report: DriftReport
        public var repairSeconds: Double
        public var verifiedDifferences: Int
        /// Injected differences the check found with the right kind.
        public var foundExactly: Int { report.differences.filter { injected[$0.key] == $0.kind }.count }
        public var falsePositives: Int { report.differences.filter { injected[$0.key] == nil }.count }
    }

    /// A full drift check of the catch-up store of `cases` cases (built first when missing):
    /// once clean, then with 100 injected differences of four kinds (25 each: a deleted
    /// document, a stray document, a field changed behind the store's back, a document applied
    /// wrong with a matching digest), then a targeted repair and a verify run. The injected keys
    /// are written to `drift-injected.json` beside the store, for `scripts/bench-reladiff`.
    public func drift(cases: Int, repair: Bool = true, progress: @escaping @Sendable (String) -> Void) async throws -> DriftResult {
        let directory = DataDirectory(scratch.url.appendingPathComponent("catch-up-\(cases)").path)
        let storeName = CaseSearchProjection(version: 9).identity.storeName
        if !FileManager.default.fileExists(atPath: directory.databaseFile(for: storeName).path) {
            _ = try await catchUp(cases: cases, progress: progress)
        }
        let platform = try EmbeddedPlatform.open(directory, create: false, configuration: .init(semantic: false))
        let store = try EmbeddedPlatform.makeStore("case-search", version: 9, in: directory) as! SQLiteSearchStore
        // A cold cache first: every expected digest is computed; the checks after reuse them.
        let cachePath = directory.databaseFile(for: store.identity.storeName + ".drift-cache").path
        @Sendable func coldCheck() throws -> DriftCheck {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: cachePath + suffix) }
            return try PlatformDrift.check(store, source: platform.canonical, cache: try EmbeddedPlatform.driftCache(for: store.identity, in: directory))
        }
        var check = try coldCheck()
        let report: @Sendable (DriftCheck.Progress) -> Void = { step in
            if step.done == 0 || step.done % 250_000 == 0 { progress("drift: \(step.phase.rawValue) \(step.done)/\(step.total.map(String.init) ?? "?")") }
        }
        var started = ContinuousClock.now
        var clean = try await check.run(.full, record: false, progress: report)
        var cleanSeconds = seconds(ContinuousClock.now - started)
        if clean.count > 0 {
            // Drift left by an earlier run with --no-repair: repair it, then time a clean check.
            progress("drift: repairing \(clean.count) differences left by an earlier run")
            _ = try await check.repair(progress: report)
            check = try coldCheck()
            started = ContinuousClock.now
            clean = try await check.run(.full, record: false, progress: report)
            cleanSeconds = seconds(ContinuousClock.now - started)
        }

        // Warm: expected digests of unchanged cases come from the cache.
        started = ContinuousClock.now
        let warm = try await check.run(.full, record: false, progress: report)
        let warmSeconds = seconds(ContinuousClock.now - started)

        let injected = try await inject(into: store)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(injected.mapValues(\.rawValue)).write(to: directory.url.appendingPathComponent("drift-injected.json"))

        let found = try await check.run(.full, progress: report)
        try encoder.encode(Dictionary(uniqueKeysWithValues: found.differences.map { ($0.key, $0.kind.rawValue) }))
            .write(to: directory.url.appendingPathComponent("drift-found.json"))
        var repairSeconds = 0.0
        var verified = found.count
        if repair {
            started = ContinuousClock.now
            let repaired = try await check.repair(progress: report)
            repairSeconds = seconds(ContinuousClock.now - started)
            verified = repaired.verified.count
        }
        return DriftResult(
            cases: clean.expectedKeys, cleanSeconds: cleanSeconds, cleanDifferences: clean.count, warmSeconds: warmSeconds,
            warmDifferences: warm.count, injected: injected, report: found,
            repairSeconds: repairSeconds, verifiedDifferences: verified)
    }

    /// Writes 100 differences into the store file behind the runtime's back.
    func inject(into store: SQLiteSearchStore) async throws -> [String: DriftKind] {
        var configuration = GRDB.Configuration()
        configuration.prepareDatabase { db in registerDriftFunctions(db) }
        let file = try DatabaseQueue(path: store.path, configuration: configuration)
        return try await file.write { db in
            var injected: [String: DriftKind] = [:]
            let keys = try String.fetchAll(db, sql: "SELECT key FROM docs ORDER BY random() LIMIT 75")
            for key in keys[0..<25] {
                let id = try Int64.fetchOne(db, sql: "SELECT id FROM docs WHERE key = ?", arguments: [key])!
                try db.execute(sql: "DELETE FROM docs_fts WHERE rowid = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM doc_display WHERE id = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM docs WHERE id = ?", arguments: [id])
                injected[key] = .missing
            }
            for key in keys[25..<50] {
                let id = try Int64.fetchOne(db, sql: "SELECT id FROM docs WHERE key = ?", arguments: [key])!
                try db.execute(sql: "UPDATE docs_fts SET title = title || ' (edited)' WHERE rowid = ?", arguments: [id])
                injected[key] = .stale
            }
            for key in keys[50..<75] {
                // Applied wrong: the status and the digest agree with each other, not with canonical state.
                try db.execute(sql: "UPDATE docs SET f_status = CASE f_status WHEN 'closed' THEN 'triage' ELSE 'closed' END WHERE key = ?", arguments: [key])
                try db.execute(sql: """
                    UPDATE docs SET digest = (SELECT \(SQLiteSearchStore.contentDigestSQL(store.schemaForBench)) FROM \(SQLiteSearchStore.contentFrom) WHERE d.key = docs.key)
                    WHERE key = ?
                    """, arguments: [key])
                injected[key] = .stale
            }
            for _ in 0..<25 {
                let key = UUID().uuidString.lowercased()
                try db.execute(sql: """
                    INSERT INTO docs (key, team, restricted, clearance, sort_time, last_position, digest, f_status, f_sector, f_region, f_priority, f_team)
                    VALUES (?, 'financial-crime', 0, 1, 0, 1, 0, 'triage', 'banking', 'north', 'low', 'financial-crime')
                    """, arguments: [key])
                try db.execute(sql: "INSERT INTO docs_fts (rowid, title, parties, summary) VALUES (?, 'Stray document', '', '')", arguments: [db.lastInsertedRowID])
                try db.execute(sql: "INSERT INTO doc_display (id, display) VALUES (?, '{}')", arguments: [db.lastInsertedRowID])
                try db.execute(sql: "UPDATE docs SET digest = (SELECT \(SQLiteSearchStore.contentDigestSQL(store.schemaForBench)) FROM \(SQLiteSearchStore.contentFrom) WHERE d.key = docs.key) WHERE key = ?", arguments: [key])
                injected[key] = .extra
            }
            return injected
        }
    }
}
