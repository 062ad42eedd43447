import Canon
import Foundation
import GRDB
import Synchronization

/// A vector projection in its own SQLite file: one row per document with its group, source
/// version, the model that made the vector, and the vector itself; searched exactly by cosine
/// over a contiguous in-memory matrix loaded from the file.
///
/// - Every vector names its model (name, version, weights hash). The store is created for one
///   model and refuses to open with another: changing the model is a rebuild into a new
///   projection version, built beside the live one.
/// - Texts are embedded before the write transaction, so a slow model never holds the writer lock;
///   the rows and the checkpoint then commit together.
/// - A document whose stored source version is newer is never replaced by an older one.
public final class SQLiteVectorStore: VectorStore, BookkeepingProjectionStore {
    public let identity: ProjectionIdentity
    public var selection: EventSelection { projection.selection }
    public var bookkeeping: any ProjectionBookkeeping { database }
    public let model: EmbeddingModelDescriptor
    public let embedder: any TextEmbedder
    private let projection: any VectorProjection
    private let database: SQLiteProjectionDatabase
    private let memory = Mutex(Memory())

    /// The in-memory matrix, the generation of the file it was loaded at, and what applies did
    /// while a reload was reading the file (replayed onto what it read).
    private struct Memory {
        var index = VectorIndex()
        var generation: Int64 = 0
        var reloads = 0
        var changes: [Change] = []
    }

    private enum Change {
        case upsert(EmbeddedDocument)
        case remove(String)
    }

    /// - Throws: `ProjectionError` when the file holds vectors of another model.
    public init(path: String, projection: any VectorProjection, embedder: any TextEmbedder, faults: FaultInjector? = nil) throws {
        self.identity = projection.identity
        self.projection = projection
        self.embedder = embedder
        self.model = embedder.model
        let model = embedder.model
        database = try SQLiteProjectionDatabase(
            path: path, identity: projection.identity, faults: faults,
            upgrades: [
                ("vectors.v2-drift", { db in
                    // The digest of the text each vector was made from, and of the row as applied.
                    // Rows stored before have neither: a drift check reports them stale and a
                    // repair re-embeds them.
                    try db.execute(sql: """
                        ALTER TABLE vectors ADD COLUMN text_digest INTEGER;
                        ALTER TABLE vectors ADD COLUMN digest INTEGER NOT NULL DEFAULT 0;
                        CREATE INDEX vectors_key_digest ON vectors (key, digest);
                        """)
                }),
                ("vectors.v3-generation", { db in
                    // Moved by every write that is not the agent's in-order apply (a refold, a
                    // drift repair), in its transaction: a process that holds the matrix in memory
                    // reloads it when the file's generation is not the one it loaded, so a repair
                    // made by `canon repair` in another process is served.
                    try db.execute(sql: """
                        CREATE TABLE vector_generation (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL) STRICT;
                        INSERT INTO vector_generation VALUES (1, 0);
                        """)
                }),
            ]
        ) { db in
            try db.execute(sql: """
                CREATE TABLE vector_model (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, version TEXT NOT NULL,
                    weights_sha256 TEXT NOT NULL, dimensions INTEGER NOT NULL) STRICT;
                CREATE TABLE vectors (
                    key TEXT PRIMARY KEY, grp TEXT NOT NULL, source_version INTEGER NOT NULL,
                    model_name TEXT NOT NULL, model_version TEXT NOT NULL, model_sha256 TEXT NOT NULL, vector BLOB NOT NULL
                ) STRICT;
                CREATE INDEX vectors_group ON vectors (grp);
                """)
            try db.execute(
                sql: "INSERT INTO vector_model VALUES (1, ?, ?, ?, ?)", arguments: [model.name, model.version, model.weightsSHA256, model.dimensions])
        }
        let stored = try database.pool.read { db in
            try GRDB.Row.fetchOne(db, sql: "SELECT name, version, weights_sha256, dimensions FROM vector_model WHERE id = 1")
        }
        if let stored, stored["weights_sha256"] as String != model.weightsSHA256 || stored["version"] as String != model.version {
            throw ProjectionError.storage("""
                \(projection.identity) at \(path) holds vectors of \(stored["name"] as String) (\(stored["version"] as String)), \
                not \(model); a model change is a rebuild: run `canon rebuild \(projection.identity.name)`
                """)
        }
        let dimensions = model.dimensions
        let loaded = try database.pool.read { db in try Self.loadIndex(dimensions: dimensions, db) }
        memory.withLock { $0.index = loaded.index; $0.generation = loaded.generation }
    }

    public var path: String { database.path }

    /// How many vectors the store holds.
    public var count: Int { memory.withLock { $0.index.keys.count } }

    public func apply(_ events: [EventEnvelope], from: OutboxPosition, to: Checkpoint) async throws {
        let rows = try await embedded(events.flatMap { try projection.documents(for: $0) })
        // A purge is the last event of its case: its removals come after every upsert here.
        let removed = events.flatMap(projection.removedKeys(by:))
        let model = self.model
        try await database.advance(from: from, to: to) { db in
            try Self.upsert(rows, model: model, db)
            for key in removed { try db.execute(sql: "DELETE FROM vectors WHERE key = ?", arguments: [key]) }
        }
        // Committed first, so a reload that reads the file after this sees it; one that read it
        // before replays it from `changes`.
        memory.withLock { memory in
            for row in rows { memory.index.upsert(row) }
            for key in removed { memory.index.remove(key) }
            if memory.reloads > 0 { memory.changes += rows.map(Change.upsert) + removed.map(Change.remove) }
        }
    }

    public func refold(stream: StreamID, events: [EventEnvelope], at checkpoint: OutboxPosition) async throws {
        let rows = try await embedded(try projection.replay(events))
        let groups = Set(try events.flatMap { try projection.documents(for: $0) }.map(\.group))
        let model = self.model
        try await database.write(at: checkpoint) { db in
            for group in groups { try db.execute(sql: "DELETE FROM vectors WHERE grp = ?", arguments: [group]) }
            try Self.upsert(rows, model: model, db)
            try Self.moveGeneration(db)
        }
        try await reloadIndex()
    }

    /// Keys, groups and source versions, not the model: a rebuild with another model holds the
    /// same documents and compares equal; the vectors themselves differ by design.
    public func contentSummary() async throws -> ContentSummary {
        try await database.contentSummary(
            rowsSQL: "SELECT key || char(31) || grp || char(31) || source_version FROM vectors ORDER BY key")
    }

    public func nearest(to query: [Float], limit: Int) async throws -> [VectorHit] {
        guard query.count == model.dimensions else {
            throw ProjectionError.storage("a query vector has \(query.count) dimensions; \(identity) holds \(model.dimensions)")
        }
        let model = self.model
        // Repaired or refolded by another process since the matrix was loaded: reload it first.
        let generation = try await database.pool.read { db in try Self.generation(db) }
        if generation != memory.withLock({ $0.generation }) { try await reloadIndex() }
        // A scan of every stored vector (milliseconds at 100,000): off the cooperative pool.
        return try await BlockingWork.run {
            self.memory.withLock { memory in
                let index = memory.index
                return index.nearest(to: query, limit: limit).map { row, score in
                    VectorHit(key: index.keys[row], group: index.groups[row], sourceVersion: index.versions[row], score: score, model: model)
                }
            }
        }
    }

    /// A copy of the in-memory matrix (row-major, `count` × dimensions), for benchmarks.
    public func matrixSnapshot() -> [Float] { memory.withLock { $0.index.matrix } }

    // MARK: - Rows

    struct EmbeddedDocument: Sendable {
        var document: VectorDocument
        var vector: [Float]
    }

    /// The newest version of each document, embedded in one batch, off the cooperative pool.
    private func embedded(_ documents: [VectorDocument]) async throws -> [EmbeddedDocument] {
        var latest: [String: VectorDocument] = [:]
        var order: [String] = []
        for document in documents {
            if let seen = latest[document.key] {
                if document.sourceVersion >= seen.sourceVersion { latest[document.key] = document }
            } else {
                latest[document.key] = document
                order.append(document.key)
            }
        }
        let unique = order.map { latest[$0]! }
        guard !unique.isEmpty else { return [] }
        let vectors = try await embedder.embedInBackground(unique.map(\.text))
        guard vectors.count == unique.count, vectors.allSatisfy({ $0.count == model.dimensions }) else {
            throw ProjectionError.storage("the embedder returned \(vectors.count) vectors for \(unique.count) texts, or the wrong dimensions")
        }
        return zip(unique, vectors).map { EmbeddedDocument(document: $0, vector: $1) }
    }

    /// Writes rows made with `model` (the store's own, checked against the file when it opened).
    private static func upsert(_ rows: [EmbeddedDocument], model: EmbeddingModelDescriptor, _ db: Database) throws {
        guard !rows.isEmpty else { return }
        let statement = try db.cachedStatement(sql: """
            INSERT INTO vectors (key, grp, source_version, model_name, model_version, model_sha256, vector, text_digest, digest)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (key) DO UPDATE SET grp = excluded.grp, source_version = excluded.source_version, model_name = excluded.model_name,
                model_version = excluded.model_version, model_sha256 = excluded.model_sha256, vector = excluded.vector,
                text_digest = excluded.text_digest, digest = excluded.digest
            WHERE excluded.source_version >= vectors.source_version
            """)
        for row in rows {
            let blob = row.vector.withUnsafeBufferPointer { Data(buffer: $0) }
            try statement.execute(arguments: [
                row.document.key, row.document.group, row.document.sourceVersion, model.name, model.version, model.weightsSHA256, blob,
                row.document.textDigest, Int64(bitPattern: row.document.driftDigest(model: model)),
            ])
        }
    }

    /// Reloads the in-memory matrix from the file (after a refold or a repair, here or in another
    /// process). What applies did meanwhile is replayed onto what was read: it may have been
    /// committed after the read, and replacing the matrix would lose it.
    private func reloadIndex() async throws {
        let dimensions = model.dimensions
        memory.withLock { $0.reloads += 1 }
        let fresh: (index: VectorIndex, generation: Int64)
        do {
            fresh = try await database.pool.read { db in try Self.loadIndex(dimensions: dimensions, db) }
        } catch {
            memory.withLock { memory in
                memory.reloads -= 1
                if memory.reloads == 0 { memory.changes = [] }
            }
            throw error
        }
        memory.withLock { memory in
            var index = fresh.index
            for change in memory.changes {
                switch change {
                case .upsert(let row): index.upsert(row)
                case .remove(let key): index.remove(key)
                }
            }
            memory.index = index
            memory.generation = max(memory.generation, fresh.generation)
            memory.reloads -= 1
            if memory.reloads == 0 { memory.changes = [] }
        }
    }

    static func generation(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT generation FROM vector_generation WHERE id = 1") ?? 0
    }

    static func moveGeneration(_ db: Database) throws {
        try db.execute(sql: "UPDATE vector_generation SET generation = generation + 1 WHERE id = 1")
    }

    private static func loadIndex(dimensions: Int, _ db: Database) throws -> (index: VectorIndex, generation: Int64) {
        let generation = try generation(db)
        var index = VectorIndex()
        let cursor = try GRDB.Row.fetchCursor(db, sql: "SELECT key, grp, source_version, vector FROM vectors ORDER BY key")
        while let row = try cursor.next() {
            let data: Data = row["vector"]
            guard data.count == dimensions * 4 else { continue }
            let vector = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            index.upsert(EmbeddedDocument(
                document: VectorDocument(key: row["key"], group: row["grp"], sourceVersion: row["source_version"], text: ""), vector: vector))
        }
        return (index, generation)
    }
}

extension SQLiteVectorStore: DriftCheckable {
    /// A row's stored content, in `VectorDocument.driftDigest` order: what the vector was made
    /// from (the vector itself cannot be recomputed cheaply, so it is not covered).
    static let contentDigestSQL = "canon_digest(key, grp, source_version, text_digest, model_sha256)"

    public func driftSnapshot() async throws -> any DriftSnapshot {
        let content = Self.contentDigestSQL
        return try SQLiteDriftSnapshot(database, queries: DriftQueries(
            stored: { "SELECT key, digest FROM vectors WHERE \($0)" },
            content: { "SELECT key, \(content) AS digest FROM vectors WHERE \($0)" },
            tampered: "SELECT key FROM vectors WHERE digest != \(content)",
            keys: "SELECT key FROM vectors"))
    }

    public func repair(keys: Set<String>, history: [EventEnvelope], at checkpoint: OutboxPosition) async throws {
        let rows = try await embedded(try projection.replay(history).filter { keys.contains($0.key) })
        let model = self.model
        try await database.write(at: checkpoint) { db in
            for key in keys { try db.execute(sql: "DELETE FROM vectors WHERE key = ?", arguments: [key]) }
            try Self.upsert(rows, model: model, db)
            try Self.moveGeneration(db)
        }
        try await reloadIndex()
    }

    public func recordDrift(_ summary: DriftSummary) async throws { try await database.recordDrift(summary) }

    public func driftSummaries() async throws -> [DriftSummary] { try await database.driftSummaries() }
}

/// The vectors of a store as one contiguous row-major matrix, for exact k-NN by dot product
/// (cosine, since every vector is a unit vector).
struct VectorIndex: Sendable {
    var keys: [String] = []
    var groups: [String] = []
    var versions: [Int64] = []
    var matrix: [Float] = []
    var rows: [String: Int] = [:]
    var dimensions = 0

    mutating func upsert(_ row: SQLiteVectorStore.EmbeddedDocument) {
        let vector = row.vector
        if dimensions == 0 { dimensions = vector.count }
        guard vector.count == dimensions else { return }
        if let existing = rows[row.document.key] {
            guard row.document.sourceVersion >= versions[existing] else { return }
            groups[existing] = row.document.group
            versions[existing] = row.document.sourceVersion
            matrix.replaceSubrange((existing * dimensions)..<((existing + 1) * dimensions), with: vector)
        } else {
            rows[row.document.key] = keys.count
            keys.append(row.document.key)
            groups.append(row.document.group)
            versions.append(row.document.sourceVersion)
            matrix.append(contentsOf: vector)
        }
    }

    /// Removes `key`'s row: the last row moves into its place.
    mutating func remove(_ key: String) {
        guard let row = rows.removeValue(forKey: key) else { return }
        let last = keys.count - 1
        if row != last {
            keys[row] = keys[last]
            groups[row] = groups[last]
            versions[row] = versions[last]
            let moved = Array(matrix[(last * dimensions)..<((last + 1) * dimensions)])
            matrix.replaceSubrange((row * dimensions)..<((row + 1) * dimensions), with: moved)
            rows[keys[row]] = row
        }
        keys.removeLast()
        groups.removeLast()
        versions.removeLast()
        matrix.removeLast(dimensions)
    }

    /// The `limit` best rows by dot product, best first.
    func nearest(to query: [Float], limit: Int) -> [(row: Int, score: Float)] {
        let count = keys.count
        guard count > 0, limit > 0, query.count == dimensions else { return [] }
        var best: [(row: Int, score: Float)] = []
        best.reserveCapacity(limit + 1)
        var floor = -Float.infinity
        matrix.withUnsafeBufferPointer { m in
            query.withUnsafeBufferPointer { q in
                for row in 0..<count {
                    let base = row * dimensions
                    var i = 0
                    var accumulator = SIMD8<Float>()
                    while i + 8 <= dimensions {
                        let a = UnsafeRawPointer(m.baseAddress! + base + i).loadUnaligned(as: SIMD8<Float>.self)
                        let b = UnsafeRawPointer(q.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self)
                        accumulator += a * b
                        i += 8
                    }
                    var sum = accumulator.sum()
                    while i < dimensions { sum += m[base + i] * q[i]; i += 1 }
                    if best.count < limit || sum > floor {
                        let position = best.firstIndex { $0.score < sum } ?? best.count
                        best.insert((row, sum), at: position)
                        if best.count > limit { best.removeLast() }
                        floor = best.count == limit ? best[best.count - 1].score : -Float.infinity
                    }
                }
            }
        }
        return best
    }
}
