import Canon
import Foundation
import PostgresNIO

/// A per-key chronological read model (a case's timeline) in its own PostgreSQL schema.
///
/// Entries are keyed by (position, sequence), so applying an event twice inserts nothing the
/// second time.
public final class PostgresTimelineStore: TimelineStore, BookkeepingProjectionStore {
    public let identity: ProjectionIdentity
    public var selection: EventSelection { projection.selection }
    public var bookkeeping: any ProjectionBookkeeping { database }
    private let projection: any TimelineProjection
    private let database: PostgresProjectionDatabase

    public static func open(url: PostgresURL, projection: any TimelineProjection, faults: FaultInjector? = nil) async throws -> PostgresTimelineStore {
        let database = try await PostgresProjectionDatabase.open(
            url: url, identity: projection.identity, faults: faults,
            migrations: [
                ("timeline.v1", [
                    """
                    CREATE TABLE entries (
                        key TEXT COLLATE "C" NOT NULL, position BIGINT NOT NULL, sequence BIGINT NOT NULL, at BIGINT NOT NULL,
                        kind TEXT NOT NULL, actor TEXT NOT NULL, summary TEXT NOT NULL, details TEXT NOT NULL, digest BIGINT NOT NULL,
                        PRIMARY KEY (position, sequence))
                    """,
                    "CREATE INDEX entries_key ON entries (key, position, sequence)",
                ]),
            ])
        return PostgresTimelineStore(projection: projection, database: database)
    }

    private init(projection: any TimelineProjection, database: PostgresProjectionDatabase) {
        self.identity = projection.identity
        self.projection = projection
        self.database = database
    }

    /// The schema the store lives in.
    public var schema: String { database.schema }

    public func apply(_ events: [EventEnvelope], from: OutboxPosition, to: Checkpoint) async throws {
        let changes = try projection.changes(for: events)
        try await database.advance(from: from, to: to) { transaction in
            var pending: [TimelineEntry] = []
            for change in changes {
                switch change {
                case .add(let entries): pending += entries
                case .clear(let key):
                    try await Self.insert(pending, transaction)
                    pending = []
                    try await transaction.execute("DELETE FROM entries WHERE key = $1", [.text(key)])
                }
            }
            try await Self.insert(pending, transaction)
        }
    }

    public func refold(stream: StreamID, events: [EventEnvelope], at checkpoint: OutboxPosition) async throws {
        let entries = try projection.replay(events)
        let keys = Set(entries.map(\.key)).union(events.compactMap(projection.clearedKey(by:)))
        try await database.write(at: checkpoint) { transaction in
            for key in keys { try await transaction.execute("DELETE FROM entries WHERE key = $1", [.text(key)]) }
            try await Self.insert(entries, transaction)
        }
    }

    public func contentSummary() async throws -> ContentSummary {
        try await database.contentSummary(
            rowsSQL: "SELECT concat_ws(chr(31), key, position, sequence, at, kind, actor, summary, details) FROM entries ORDER BY position, sequence")
    }

    public func entries(key: String, limit: Int) async throws -> [TimelineEntry] {
        try await database.mapped {
            try await database.database.rows(
                "SELECT key, position, sequence, at, kind, actor, summary, details FROM entries WHERE key = $1 ORDER BY position, sequence LIMIT $2",
                [.text(key), .integer(Int64(max(0, limit)))]
            ).map { row in
                let (key, position, sequence, at, kind, actor, summary, details) =
                    try row.decode((String, Int64, Int64, Int64, String, String, String, String).self)
                return TimelineEntry(
                    key: key, position: OutboxPosition(position), sequence: Int(sequence), at: Timestamp.date(microseconds: at), kind: kind,
                    actor: actor, summary: summary, details: (try? JSONDecoder().decode([String: String].self, from: Data(details.utf8))) ?? [:])
            }
        }
    }

    /// Inserts `entries` (bound as arrays, `PostgresColumns`: one prepared text for any number
    /// of entries); entries already there stay.
    private static func insert(_ entries: [TimelineEntry], _ transaction: PostgresTransaction) async throws {
        for start in stride(from: 0, to: entries.count, by: 5000) {
            var rows = PostgresColumns([.text, .bigint, .bigint, .bigint, .text, .text, .text, .text, .bigint])
            for entry in entries[start..<min(start + 5000, entries.count)] {
                let details = entry.detailsJSON
                try rows.append([
                    .text(entry.key), .integer(entry.position.rawValue), .integer(Int64(entry.sequence)), .timestamp(entry.at), .text(entry.kind),
                    .text(entry.actor), .text(entry.summary), .text(details), .integer(Int64(bitPattern: entry.driftDigest(detailsJSON: details))),
                ])
            }
            var binds = PostgresSchemaSQL.Binds()
            let sql = "INSERT INTO entries (key, position, sequence, at, kind, actor, summary, details, digest) SELECT * FROM \(rows.unnest(binding: &binds)) ON CONFLICT DO NOTHING"
            try await transaction.rows(sql, binds.values, prepared: true)
        }
    }
}

extension PostgresTimelineStore: DriftCheckable {
    /// An entry's stored columns, in `TimelineEntry.driftDigest` order, then the digest kept for it.
    private static let digestColumns = "key, position, sequence, at, kind, actor, summary, details, digest"

    /// An entry row's key, position and sequence, the digest of its stored content and the digest
    /// kept when it was applied.
    private static func digests(_ row: PostgresRow) throws -> (key: String, position: Int64, sequence: Int64, content: UInt64, kept: UInt64) {
        let (key, position, sequence, at, kind, actor, summary, details, kept) =
            try row.decode((String, Int64, Int64, Int64, String, String, String, String, Int64).self)
        let content = TimelineEntry.driftDigest(
            key: key, position: position, sequence: sequence, at: at, kind: kind, actor: actor, summary: summary, detailsJSON: details)
        return (key, position, sequence, content, UInt64(bitPattern: kept))
    }

    /// A key's digest is the wrapping sum of its entries' digests.
    public func driftSnapshot() async throws -> any DriftSnapshot {
        let columns = Self.digestColumns
        return try await database.driftSnapshot(PostgresDriftQueries(
            stored: PostgresDriftQueries.summed("entries"),
            keys: "SELECT DISTINCT key FROM entries",
            content: { keys, transaction in
                var binds = PostgresBindings()
                binds.append(keys)
                var sums: [String: UInt64] = [:]
                for row in try await transaction.connection.query(
                    PostgresQuery(unsafeSQL: "SELECT \(columns) FROM entries WHERE key = ANY($1)", binds: binds), logger: transaction.logger
                ).collect() {
                    let entry = try Self.digests(row)
                    sums[entry.key, default: 0] &+= entry.content
                }
                return sums
            },
            tampered: { transaction in
                var keys: [String] = []
                var after: (position: Int64, sequence: Int64) = (-1, -1)
                while true {
                    let page = try await transaction.rows(
                        "SELECT \(columns) FROM entries WHERE (position, sequence) > ($1, $2) ORDER BY position, sequence LIMIT 5000",
                        [.integer(after.position), .integer(after.sequence)]
                    ).map(Self.digests)
                    guard let last = page.last else { return keys }
                    keys += page.filter { $0.content != $0.kept }.map(\.key)
                    after = (last.position, last.sequence)
                }
            }))
    }

    public func repair(keys: Set<String>, history: [EventEnvelope], at checkpoint: OutboxPosition) async throws {
        let entries = try projection.replay(history).filter { keys.contains($0.key) }
        var binds = PostgresBindings()
        binds.append(keys.sorted())
        let cleared = binds
        try await database.write(at: checkpoint) { transaction in
            _ = try await transaction.connection.query(
                PostgresQuery(unsafeSQL: "DELETE FROM entries WHERE key = ANY($1)", binds: cleared), logger: transaction.logger
            ).collect()
            try await Self.insert(entries, transaction)
        }
    }

    public func recordDrift(_ summary: DriftSummary) async throws { try await database.recordDrift(summary) }

    public func driftSummaries() async throws -> [DriftSummary] { try await database.driftSummaries() }
}
