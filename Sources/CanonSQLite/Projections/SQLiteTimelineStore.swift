import Canon
import Foundation
import GRDB

/// A per-key chronological read model (a case's timeline) in its own SQLite file.
///
/// Entries are keyed by (position, sequence), so applying an event twice inserts nothing the
/// second time.
public final class SQLiteTimelineStore: TimelineStore, BookkeepingProjectionStore {
    public let identity: ProjectionIdentity
    public var selection: EventSelection { projection.selection }
    public var bookkeeping: any ProjectionBookkeeping { database }
    private let projection: any TimelineProjection
    private let database: SQLiteProjectionDatabase

    public init(path: String, projection: any TimelineProjection, faults: FaultInjector? = nil) throws {
        self.identity = projection.identity
        self.projection = projection
        database = try SQLiteProjectionDatabase(
            path: path, identity: projection.identity, faults: faults,
            upgrades: [
                ("timeline.v2-drift", { db in
                    // The digest of each entry as applied, for drift detection; existing entries
                    // get the digest of what they hold now.
                    try db.execute(sql: """
                        ALTER TABLE entries ADD COLUMN digest INTEGER NOT NULL DEFAULT 0;
                        UPDATE entries SET digest = \(Self.contentDigestSQL);
                        CREATE INDEX entries_key_digest ON entries (key, digest);
                        """)
                }),
            ]
        ) { db in
            try db.execute(sql: """
                CREATE TABLE entries (
                    key TEXT NOT NULL, position INTEGER NOT NULL, sequence INTEGER NOT NULL, at INTEGER NOT NULL,
                    kind TEXT NOT NULL, actor TEXT NOT NULL, summary TEXT NOT NULL, details TEXT NOT NULL,
                    PRIMARY KEY (position, sequence)
                ) STRICT;
                CREATE INDEX entries_key ON entries (key, position, sequence);
                """)
        }
    }

    public var path: String { database.path }

    public func apply(_ events: [EventEnvelope], from: OutboxPosition, to: Checkpoint) async throws {
        let changes = try projection.changes(for: events)
        try await database.advance(from: from, to: to) { db in
            for change in changes {
                switch change {
                case .add(let entries): try Self.insert(entries, db)
                case .clear(let key): try db.execute(sql: "DELETE FROM entries WHERE key = ?", arguments: [key])
                }
            }
        }
    }

    public func refold(stream: StreamID, events: [EventEnvelope], at checkpoint: OutboxPosition) async throws {
        let entries = try projection.replay(events)
        let keys = Set(entries.map(\.key)).union(events.compactMap(projection.clearedKey(by:)))
        try await database.write(at: checkpoint) { db in
            for key in keys { try db.execute(sql: "DELETE FROM entries WHERE key = ?", arguments: [key]) }
            try Self.insert(entries, db)
        }
    }

    public func contentSummary() async throws -> ContentSummary {
        try await database.contentSummary(
            rowsSQL: "SELECT key || char(31) || position || char(31) || sequence || char(31) || at || char(31) || kind || char(31) || actor || char(31) || summary || char(31) || details FROM entries ORDER BY position, sequence")
    }

    public func entries(key: String, limit: Int) async throws -> [TimelineEntry] {
        try await database.mapped {
            try await database.pool.read { db in
                try GRDB.Row.fetchAll(
                    db.cachedStatement(sql: "SELECT * FROM entries WHERE key = ? ORDER BY position, sequence LIMIT ?"),
                    arguments: [key, max(0, limit)]
                ).map { row in
                    let details = (try? JSONDecoder().decode([String: String].self, from: Data((row["details"] as String).utf8))) ?? [:]
                    return TimelineEntry(
                        key: row["key"], position: OutboxPosition(row["position"]), sequence: row["sequence"],
                        at: Timestamp.date(microseconds: row["at"]), kind: row["kind"], actor: row["actor"], summary: row["summary"],
                        details: details)
                }
            }
        }
    }

    private static func insert(_ entries: [TimelineEntry], _ db: Database) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO entries (key, position, sequence, at, kind, actor, summary, details, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for entry in entries {
            let details = entry.detailsJSON
            try statement.execute(arguments: [
                entry.key, entry.position.rawValue, entry.sequence, Timestamp.microseconds(entry.at), entry.kind, entry.actor,
                entry.summary, details, Int64(bitPattern: entry.driftDigest(detailsJSON: details)),
            ])
        }
    }
}

extension SQLiteTimelineStore: DriftCheckable {
    /// An entry's stored content, in `TimelineEntry.driftDigest` order.
    static let contentDigestSQL = "canon_digest(key, position, sequence, at, kind, actor, summary, details)"

    /// A key's digest is the wrapping sum of its entries' digests.
    public func driftSnapshot() async throws -> any DriftSnapshot {
        let content = Self.contentDigestSQL
        return try SQLiteDriftSnapshot(database, queries: DriftQueries(
            stored: { "SELECT key, canon_sum(digest) AS digest FROM entries WHERE \($0) GROUP BY key" },
            content: { "SELECT key, canon_sum(\(content)) AS digest FROM entries WHERE \($0) GROUP BY key" },
            tampered: "SELECT key FROM entries WHERE digest != \(content)",
            keys: "SELECT DISTINCT key FROM entries"))
    }

    public func repair(keys: Set<String>, history: [EventEnvelope], at checkpoint: OutboxPosition) async throws {
        let entries = try projection.replay(history).filter { keys.contains($0.key) }
        try await database.write(at: checkpoint) { db in
            for key in keys { try db.execute(sql: "DELETE FROM entries WHERE key = ?", arguments: [key]) }
            try Self.insert(entries, db)
        }
    }

    public func recordDrift(_ summary: DriftSummary) async throws { try await database.recordDrift(summary) }

    public func driftSummaries() async throws -> [DriftSummary] { try await database.driftSummaries() }
}
