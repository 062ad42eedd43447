import Canon
import Foundation
import GRDB
import Synchronization

/// A full-text search store on SQLite FTS5, in its own file.
///
/// - Ranking is bm25 with per-field weights; every query word also matches as a prefix.
/// - When the words find too little, misspelt words are corrected from the store's own
///   vocabulary (candidates by trigram index, then edit distance) and the query runs again.
/// - Snippets highlight matches; facet counts honour every filter except their own; results
///   and facet counts are filtered for the reader inside the engine.
/// - Pages use keyset cursors, stable while the store does not change.
/// - Several events of one document in a batch fold into one document write, and a document
///   remembers the last position folded into it, so re-applying an event changes nothing.
public final class SQLiteSearchStore: SearchStore, BookkeepingProjectionStore, AcceleratedStore, PreparingProjectionStore {
    public let identity: ProjectionIdentity
    public var selection: EventSelection { projection.selection }
    public var bookkeeping: any ProjectionBookkeeping { database }
    private let projection: any DocumentProjection
    private let database: SQLiteProjectionDatabase
    private let sql: DocumentSQL
    private var schema: SearchSchema { sql.schema }
    private let accelerator: SearchAccelerator

    /// - Parameter memoryIndex: whether searches are answered from a memory index beside FTS5
    ///   (`SearchMemoryIndex`); the answers are the same either way.
    public init(path: String, projection: any DocumentProjection, faults: FaultInjector? = nil, memoryIndex: MemoryIndexMode = .automatic()) throws {
        self.identity = projection.identity
        self.projection = projection
        self.sql = DocumentSQL(projection.schema)
        accelerator = SearchAccelerator(mode: memoryIndex, schema: projection.schema, store: projection.identity.description)
        let schema = projection.schema
        database = try SQLiteProjectionDatabase(
            path: path, identity: projection.identity, faults: faults,
            upgrades: [
                ("search.v2-clearance", { db in
                    // The clearance a team member needs to see a restricted document; existing ones need 1.
                    try db.execute(sql: "ALTER TABLE docs ADD COLUMN clearance INTEGER NOT NULL DEFAULT 1")
                }),
                ("search.v3-priority-path", { db in
                    // The position of the newest permission change applied on the priority path.
                    try db.execute(sql: """
                        ALTER TABLE docs ADD COLUMN security_position INTEGER NOT NULL DEFAULT 0;
                        CREATE TABLE security_pending (
                            key TEXT PRIMARY KEY, restricted INTEGER, clearance INTEGER, team TEXT, position INTEGER NOT NULL
                        ) STRICT;
                        """)
                }),
                ("search.v4-drift", { db in
                    // The digest of each document as applied, for drift detection; existing
                    // documents get the digest of what they hold now.
                    try db.execute(sql: """
                        ALTER TABLE docs ADD COLUMN digest INTEGER NOT NULL DEFAULT 0;
                        UPDATE docs SET digest = (SELECT \(Self.contentDigestSQL(schema)) FROM \(Self.contentFrom) WHERE d.id = docs.id);
                        CREATE INDEX docs_key_digest ON docs (key, digest);
                        """)
                }),
                ("search.v5-change-log", { db in
                    // Which documents each transaction wrote, in order, for memory indexes to
                    // follow the file from any process (`logChanges`). One row per transaction:
                    // a row per document (by triggers) halved the catch-up rate.
                    try db.execute(sql: "CREATE TABLE search_changes (seq INTEGER PRIMARY KEY, ids BLOB NOT NULL) STRICT")
                }),
                ("search.v6-no-facet-indexes", { db in
                    // Facet filters and counts are answered by the memory index; an index per
                    // facet column only slowed every document write (FTS5 answers without them,
                    // by scanning, while the memory index loads).
                    for facet in schema.facetFields { try db.execute(sql: "DROP INDEX IF EXISTS docs_\(facet)") }
                }),
                ("search.v7-state-build", { db in
                    // A build from canonical state (`StateBuildableStore`): how far it got, and the
                    // snapshot position each range of keys was built from (`after` is exclusive;
                    // '' is the first range).
                    try db.execute(sql: """
                        CREATE TABLE state_build (id INTEGER PRIMARY KEY CHECK (id = 1), cursor TEXT, complete INTEGER NOT NULL) STRICT;
                        CREATE TABLE state_ranges (after TEXT PRIMARY KEY, position INTEGER NOT NULL) STRICT;
                        """)
                }),
            ]
        ) { db in
            // One index holds the key text: `docs_key_digest` (from the upgrade above), which
            // drift scans in key order and every lookup by key uses. A UNIQUE key would be a
            // second one, which every catch-up write kept too (about a tenth of a catch-up, and
            // more WAL to checkpoint). The writer keeps keys unique (a document is looked up
            // before it is inserted); a duplicate written behind its back shows as drift (an
            // extra row), and repairing the key keeps one row of it. Files made before keep
            // their UNIQUE index.
            let facetColumns = schema.facetFields.map { "\(Self.facetColumn($0)) TEXT" }.joined(separator: ", ")
            try db.execute(sql: """
                CREATE TABLE docs (
                    id INTEGER PRIMARY KEY, key TEXT NOT NULL, team TEXT NOT NULL, restricted INTEGER NOT NULL,
                    sort_time INTEGER NOT NULL, last_position INTEGER NOT NULL,
                    \(facetColumns)
                ) STRICT;
                CREATE TABLE doc_display (id INTEGER PRIMARY KEY, display TEXT NOT NULL) STRICT;
                CREATE INDEX docs_sort ON docs (sort_time, id);
                CREATE VIRTUAL TABLE docs_fts USING fts5(\(schema.textFields.map(\.name).joined(separator: ", ")), tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3');
                CREATE TABLE terms (term TEXT PRIMARY KEY) WITHOUT ROWID;
                CREATE VIRTUAL TABLE terms_trigram USING fts5(term, tokenize = 'trigram');
                """)
        }
    }

    /// Test hooks around a folded batch: when the folding reader has taken its snapshot, and
    /// before the write transaction begins. Nil outside tests.
    struct FoldHooks: Sendable {
        var afterSnapshot: @Sendable () -> Void
        var beforeWrite: @Sendable () async -> Void
    }

    let foldHooks = Mutex<FoldHooks?>(nil)
    /// Batches written from a fold ahead (`expect`), and their chunks that held or were folded
    /// again inside the transaction (for tests).
    let foldAheadCounts = Mutex((batches: 0, chunksHeld: 0, chunksRefolded: 0))

    /// Whether the store may hold ranges of a build from state that its checkpoint has not
    /// passed yet: the first apply reads them, and later ones only while some are left (a live
    /// store never does).
    private let stateRangesLeft = Mutex(true)

    public var path: String { database.path }

    /// How often the writer's page cache was resized between bulk and live sizes (tests).
    var cacheChanges: Int { database.cacheChanges }

    /// The schema the store was made for (benchmarks write rows of it directly).
    public var schemaForBench: SearchSchema { schema }

    static func facetColumn(_ field: String) -> String { "f_" + field.filter { $0.isLetter || $0.isNumber || $0 == "_" } }

    // MARK: - ProjectionStore

    public func apply(_ events: [EventEnvelope], from: OutboxPosition, to: Checkpoint) async throws {
        let projection = self.projection
        let sql = self.sql
        let (unbuilt, rangesPassed) = try await withoutBuiltState(events, to: to.position)
        // What the agent said comes after this batch, and what was folded ahead as this batch:
        // each serves this apply only.
        let told = expected.withLock { expected in
            defer { expected = nil }
            return expected?.after == to.position ? expected?.events : nil
        }
        let prepared = foldedAhead.withLock { ahead in
            defer { ahead = nil }
            return ahead
        }
        guard unbuilt.count >= Self.foldAheadThreshold else {
            // A small batch folds inside its transaction: a batch folded ahead (the agent reached
            // the head sooner than it expected) is let go, not kept until the next catch-up.
            prepared?.discard()
            let groups = projection.byDocument(unbuilt)
            try await database.advance(from: from, to: to) { db in
                try self.database.useSettings(bulk: false, db)
                if rangesPassed { try Self.dropStateRanges(db) }
                var written = Written()
                let pending = try Self.hasPendingSecurity(db)
                for (key, events) in groups {
                    guard let folded = try Self.fold(key, events, projection: projection, sql: sql, db) else { continue }
                    try Self.write(folded, sql: sql, pending: pending, written: &written, db)
                }
                try Self.record(written, db)
            }
            return
        }
        // A large batch (a catch-up) is folded off the writer: a reader connection groups the
        // events by document, loads each document as the last commit left it and folds it, a
        // chunk at a time, while the write transaction writes the chunks folded before. (Two
        // folding readers were slower on two cores: the writer needs one.) Only this agent
        // writes documents between its commits, except the priority path, a drift repair and a
        // refold; a chunk folded from a snapshot older than one of their writes (the change log
        // moved) is folded again inside the transaction.
        //
        // When the agent said which batch comes next (`expect`), the reader folds that one too
        // as soon as this one is folded, over this batch's documents (`FoldAhead`): it works
        // while this batch's transaction finishes and commits, which would leave it idle.
        let upcoming = stateRangesLeft.withLock { $0 } ? nil : told
        let source: FoldSource
        let next = upcoming.map { FoldAhead(after: to.position, events: $0) }
        // Only over a clean commit of the batch before: else every chunk would be folded again
        // in the transaction, and so would every later batch folded over this one's documents.
        if let prepared, !rangesPassed, prepared.previousCommit?.clean == true, await prepared.matches(unbuilt, from: from) {
            source = .ahead(prepared)
            foldAheadCounts.withLock { $0.batches += 1 }
            // The batch after this one folds once this one's fold is done, over its documents:
            // the reader goes on to it, or starts on it now if it has finished this one.
            if let next, let folded = prepared.follow(with: next) { foldAhead(next, over: folded) }
        } else {
            prepared?.discard()
            let handoff = Handoff<FoldedChunk>()
            source = .handoff(handoff)
            // Not awaited: the reader finished this batch when the writer took its last chunk,
            // and goes on to the next one.
            fold(unbuilt, into: handoff, over: nil, as: nil, then: next)
        }
        if let next { foldedAhead.withLock { $0 = next } }
        let hooks = foldHooks.withLock { $0 }
        await hooks?.beforeWrite()
        let logged = Mutex<CommitRecord?>(nil)
        do {
            try await database.advance(from: from, to: to) { db in
                let handoff = source.handoff
                defer { handoff.abandon() }
                try self.database.useSettings(bulk: true, db)
                if rangesPassed { try Self.dropStateRanges(db) }
                var written = Written()
                let pending = try Self.hasPendingSecurity(db)
                // This transaction holds the write lock: the change log stays where it is now.
                let current = try Self.lastChange(db)
                var clean = true
                while let chunk = try handoff.take() {
                    let holds = source.holds(chunk, current: current)
                    if case .ahead = source { self.foldAheadCounts.withLock { holds ? ($0.chunksHeld += 1) : ($0.chunksRefolded += 1) } }
                    if holds {
                        for folded in chunk.documents { try Self.write(folded, sql: sql, pending: pending, written: &written, db) }
                        written.add(words: chunk.words)
                    } else {
                        clean = false
                        for (key, events) in chunk.covered {
                            guard let folded = try Self.fold(key, events, projection: projection, sql: sql, db) else { continue }
                            try Self.write(folded, sql: sql, pending: pending, written: &written, db)
                        }
                    }
                }
                let seq = try Self.record(written, db)
                logged.withLock { $0 = CommitRecord(changesBefore: current, logged: seq, clean: clean) }
            }
        } catch {
            source.handoff.abandon()
            if let next {
                next.discard()
                foldedAhead.withLock { if $0 === next { $0 = nil } }
            }
            throw error
        }
        // The batch after this one may use what was folded ahead only over a clean commit.
        if let next, let record = logged.withLock({ $0 }) { next.committed(before: record) }
        // This batch's folded documents and chunks are freed off the writer's path.
        BlockingWork.release((source, prepared, unbuilt))
    }

    /// Folds `events` (grouped by document) on a reader connection into `handoff`, a chunk at a
    /// time, over `known` documents (folded by the batch before, not committed yet) where given.
    /// Then, when the agent said what comes next, it goes on to fold that batch ahead over these
    /// documents, and so on while `apply` keeps telling it (`FoldAhead.finished`). The batch
    /// before the one being folded ahead has always committed (`apply` of the one in between
    /// began), so the reader's snapshot and the documents folded over it miss nothing.
    private func fold(_ events: [EventEnvelope], into handoff: Handoff<FoldedChunk>, over known: [String: FoldedDocument]?, as folding: FoldAhead?, then next: FoldAhead?) {
        let projection = self.projection
        let sql = self.sql
        let pool = database.pool
        let hooks = foldHooks.withLock { $0 }
        Task {
            let keep = folding != nil || next != nil
            let over = known
            let folded: [String: FoldedDocument]
            do {
                folded = try await pool.read { db in
                    let seen = try Self.lastChange(db)
                    hooks?.afterSnapshot()
                    var chunk = FoldedChunk(changesSeen: seen)
                    var words = Vocabulary()
                    // Grouped here, not before: the writer starts on the first chunk sooner.
                    let groups = projection.byDocument(events)
                    // Sized once: growing a dictionary of a batch's 25,000 documents rehashes every
                    // key at each doubling, in fresh pages the kernel zeroes.
                    var folded: [String: FoldedDocument] = [:]
                    if keep { folded.reserveCapacity(groups.count) }
                    for (key, events) in groups {
                        chunk.covered.append((key, events))
                        if let document = try Self.fold(key, events, over: over?[key], projection: projection, sql: sql, db) {
                            if keep { folded[key] = document }
                            chunk.append(document, words: &words, fields: sql.fields)
                        }
                        if chunk.covered.count == Self.foldChunk {
                            guard handoff.put(chunk) else { throw CancellationError() }
                            chunk = FoldedChunk(changesSeen: seen)
                        }
                    }
                    chunk.words = words
                    handoff.put(chunk)
                    return folded
                }
                handoff.finish()
            } catch {
                handoff.finish(error)
                (folding ?? next)?.discard()
                return
            }
            // This batch is folded: fold the next one while this one is written and committed.
            guard let following = folding.map({ $0.finished(folded) }) ?? next else { return }
            self.foldAhead(following, over: folded)
        }
    }

    /// Folds `ahead` once its events are loaded, over `known`: the documents of the batch
    /// before it as that batch folded them.
    private func foldAhead(_ ahead: FoldAhead, over known: [String: FoldedDocument]) {
        Task {
            guard !ahead.isDiscarded, let events = try? await ahead.events.value, !events.isEmpty else { return ahead.discard() }
            self.fold(events, into: ahead.chunks, over: known, as: ahead, then: nil)
        }
    }

    /// Where the writer takes a batch's folded chunks from, and whether a chunk still holds.
    private enum FoldSource: Sendable {
        /// Folded beside this transaction, from a snapshot of the last commit.
        case handoff(Handoff<FoldedChunk>)
        /// Folded ahead, while the batch before was written, over that batch's documents.
        case ahead(FoldAhead)

        var handoff: Handoff<FoldedChunk> {
            switch self {
            case .handoff(let handoff): handoff
            case .ahead(let ahead): ahead.chunks
            }
        }

        /// Whether `chunk` is what folding it inside this transaction would give: no one else
        /// wrote documents since its snapshot (`current` is the change log's last entry now).
        /// A chunk folded ahead may also have been folded before the batch before committed;
        /// that batch's own entry is then the only one since. (`apply` takes a fold ahead only
        /// over a clean commit of the batch before.)
        func holds(_ chunk: FoldedChunk, current: Int64) -> Bool {
            switch self {
            case .handoff: return chunk.changesSeen == current
            case .ahead(let ahead):
                guard let before = ahead.previousCommit else { return false }
                if chunk.changesSeen == current { return chunk.changesSeen == (before.logged ?? before.changesBefore) }
                return chunk.changesSeen == before.changesBefore && current == (before.logged ?? before.changesBefore)
            }
        }
    }

    /// What a batch's transaction did to the change log.
    struct CommitRecord: Sendable {
        /// The last entry before it.
        var changesBefore: Int64
        /// The entry it wrote, if it wrote documents.
        var logged: Int64?
        /// Whether every chunk held, so the documents it folded are the ones it wrote.
        var clean: Bool
    }

    /// The batch the agent said comes next (`expect`).
    private let expected = Mutex<(after: OutboxPosition, events: Task<[EventEnvelope], any Error>)?>(nil)
    /// The next batch, folding or folded ahead, until `apply` takes it (or another batch replaces it).
    private let foldedAhead = Mutex<FoldAhead?>(nil)

    /// Whether a batch folded ahead waits for its `apply` (for tests).
    var holdsFoldAhead: Bool { foldedAhead.withLock { $0 != nil } }

    public func expect(_ upcoming: Task<[EventEnvelope], any Error>, after: OutboxPosition) {
        expected.withLock { $0 = (after, upcoming) }
    }

    /// A batch folded ahead, while the batch before it (ending at `after`) is written.
    final class FoldAhead: Sendable {
        let after: OutboxPosition
        let events: Task<[EventEnvelope], any Error>
        let chunks = Handoff<FoldedChunk>()
        private struct State {
            var previous: CommitRecord?
            var successor: FoldAhead?
            var folded: [String: FoldedDocument]?
            var discarded = false
        }
        private let state = Mutex(State())

        init(after: OutboxPosition, events: Task<[EventEnvelope], any Error>) {
            self.after = after
            self.events = events
        }

        /// Whether these are the events `apply` was given, from the position they were folded for.
        func matches(_ given: [EventEnvelope], from: OutboxPosition) async -> Bool {
            guard from == after, let events = try? await events.value else { return false }
            // By index: `zip` copied every event of both (100,000 of them), retaining each field.
            let same = events.count == given.count && events.indices.allSatisfy { events[$0].position == given[$0].position }
            return same && !state.withLock { $0.discarded }
        }

        /// The batch before committed, doing `record` to the change log.
        func committed(before record: CommitRecord) { state.withLock { $0.previous = record } }
        var previousCommit: CommitRecord? { state.withLock { $0.previous } }

        /// `apply` of this batch learnt that `next` follows it. Returns this batch's folded
        /// documents when its fold has finished (the caller starts folding `next` over them);
        /// nil when the fold is still running (it goes on to `next` itself, `finished`).
        func follow(with next: FoldAhead) -> [String: FoldedDocument]? {
            state.withLock { state in
                if let folded = state.folded { return folded }
                state.successor = next
                return nil
            }
        }

        /// The fold of this batch has finished with `folded`: the batch to fold next, if `apply`
        /// of this one named it already; else `follow` gets the documents.
        func finished(_ folded: [String: FoldedDocument]) -> FoldAhead? {
            state.withLock { state in
                if let successor = state.successor { return successor }
                state.folded = folded
                return nil
            }
        }

        var isDiscarded: Bool { state.withLock { $0.discarded } }

        /// Stops folding (the producer stops at its next chunk), and a writer waiting for its
        /// chunks fails instead of taking the batch as complete; `matches` is false from now.
        func discard() {
            state.withLock { $0.discarded = true }
            chunks.abandon()
            chunks.finish(ProjectionError.storage("a batch folded ahead was discarded"))
        }
    }

    /// `events` without those a build from state holds already (each key's events up to the
    /// snapshot its range was built from), and whether the batch ending at `to` passes every
    /// range (the ranges can go then).
    private func withoutBuiltState(_ events: [EventEnvelope], to: OutboxPosition) async throws -> ([EventEnvelope], Bool) {
        guard stateRangesLeft.withLock({ $0 }) else { return (events, false) }
        let ranges = try await database.mapped {
            try await database.pool.read { db in
                try GRDB.Row.fetchAll(db.cachedStatement(sql: "SELECT after, position FROM state_ranges ORDER BY after"))
                    .map { (after: $0[0] as String, position: $0[1] as Int64) }
            }
        }
        guard let last = ranges.map(\.position).max() else {
            stateRangesLeft.withLock { $0 = false }
            return (events, false)
        }
        let projection = self.projection
        let unbuilt = events.filter { event in
            guard let key = projection.documentKey(for: event) else { return true }
            // The range holding `key`: the last one that starts before it (in SQLite's order).
            var low = 0, high = ranges.count
            while low < high {
                let middle = (low + high) / 2
                if Self.precedes(ranges[middle].after, key) { low = middle + 1 } else { high = middle }
            }
            return low == 0 || event.position.rawValue > ranges[low - 1].position
        }
        return (unbuilt, to.rawValue >= last)
    }

    /// Whether `a` sorts before `b` as SQLite sorts text (its bytes): the order the state is
    /// read in and the ranges are keyed by.
    static func precedes(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    /// Drops the ranges of a complete build from state (every batch from here is past them).
    static func dropStateRanges(_ db: Database) throws {
        try db.execute(sql: "DELETE FROM state_ranges WHERE (SELECT complete FROM state_build WHERE id = 1) = 1")
    }

    /// Batches with fewer events than this fold inside the write transaction (a live agent's
    /// batches: handing off would only add latency).
    static let foldAheadThreshold = 256
    /// Documents handed from the folding reader to the writer at a time.
    static let foldChunk = 128

    /// Documents folded outside the write transaction, with the change log's last entry as the
    /// reader saw it.
    struct FoldedChunk: Sendable {
        var changesSeen: Int64
        /// The documents the chunk covers, with their events (some may have had nothing new).
        var covered: [(key: String, events: [EventEnvelope])] = []
        var documents: [FoldedDocument] = []
        /// The words of every document handed off, each once; only the last chunk carries them,
        /// so the writer adds them to the vocabulary without collecting them again.
        var words = Vocabulary()

        /// Adds `folded`, its words going to `words` (the writer does not collect them).
        mutating func append(_ folded: FoldedDocument, words: inout Vocabulary, fields: [String]) {
            var folded = folded
            if let document = folded.document { for field in fields { words.add(document.text[field] ?? "") } }
            folded.wordsCollected = true
            documents.append(folded)
        }
    }

    /// A document folded from its stored state and the batch's events for it, ready to write.
    struct FoldedDocument: Sendable {
        var key: String
        var document: SearchDocument?
        /// The last event folded in.
        var position: OutboxPosition
        /// Its row id when it was loaded; nil when it did not exist.
        var existing: Int64?
        /// It exists, but was inserted by the batch before after it was folded: the writer looks
        /// its row id up.
        var existingUnknown = false
        var digest: Int64
        /// Its words went to the vocabulary already (off the writer).
        var wordsCollected = false
    }

    /// Loads `key`'s document, or takes it as the batch before folded it (`known`, not
    /// committed yet), and folds `events` into it; nil when it has seen them all already.
    static func fold(_ key: String, _ events: [EventEnvelope], over known: FoldedDocument? = nil, projection: any DocumentProjection, sql: DocumentSQL, _ db: Database) throws -> FoldedDocument? {
        // A document the batch before deleted has no row any more, whatever its row id was.
        let current = try known.map { (document: $0.document, lastPosition: $0.position, id: $0.document == nil ? nil : $0.existing) }
            ?? load(key, sql: sql, db)
        // In position order: usually all of them are new, and the array is taken as it is.
        let fresh = events.first.map { $0.position > current.lastPosition } ?? true ? events : events.filter { $0.position > current.lastPosition }
        guard let last = fresh.last else { return nil }
        let document = try projection.fold(fresh, into: current.document)
        var folded = prepared(key: key, document: document, position: last.position, existing: current.id, sql: sql)
        // A document the batch before inserted has a row id only once that batch has written it.
        folded.existingUnknown = known.map { $0.document != nil && $0.existing == nil } ?? false
        return folded
    }

    /// What writing `document` needs besides the document itself, computed before the write.
    static func prepared(key: String, document: SearchDocument?, position: OutboxPosition, existing: Int64?, sql: DocumentSQL) -> FoldedDocument {
        FoldedDocument(
            key: key, document: document, position: position, existing: existing,
            // The digest of the document as applied; the filter columns a priority change moved
            // ahead are lag to a drift check (that change's event is past the checkpoint).
            digest: document.map { Int64(bitPattern: $0.driftDigest(sql.schema)) } ?? 0)
    }

    /// The last entry of the change log: it moves with every transaction that writes documents.
    static func lastChange(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT ifnull(max(seq), 0) FROM search_changes")) ?? 0
    }

    /// Whether the priority path holds a permission change for a document not created yet.
    static func hasPendingSecurity(_ db: Database) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM security_pending)")) ?? false
    }

    public func refold(stream: StreamID, events: [EventEnvelope], at checkpoint: OutboxPosition) async throws {
        let projection = self.projection
        let sql = self.sql
        var documents: [String: (SearchDocument?, OutboxPosition)] = [:]
        for key in Set(events.compactMap(projection.documentKey(for:))) {
            let own = events.filter { projection.documentKey(for: $0) == key }
            documents[key] = (try projection.fold(own, into: nil), own.last!.position)
        }
        let folded = documents
        try await database.write(at: checkpoint) { db in
            var written = Written()
            let pending = try Self.hasPendingSecurity(db)
            for (key, (document, position)) in folded {
                let existing = try Self.rowID(key, db)
                try Self.write(Self.prepared(key: key, document: document, position: position, existing: existing, sql: sql), sql: sql, pending: pending, written: &written, db)
            }
            try Self.record(written, db)
        }
    }

    public func contentSummary() async throws -> ContentSummary {
        let facets = schema.facetFields.map { "ifnull(d.\(Self.facetColumn($0)), '')" }
        // FTS5 keeps a text field's stored value in column c<i> of its content table, a plain
        // table: reading it there skips the virtual table.
        let text = schema.textFields.indices.map { "f.c\($0)" }
        // Columns, not one concatenated string: the hasher reads each where SQLite holds it.
        let row = (["d.key", "d.team", "d.restricted", "d.clearance", "d.sort_time", "v.display"] + facets + text).joined(separator: ", ")
        return try await database.contentSummary(
            rowsSQL: "SELECT \(row) FROM docs d JOIN docs_fts_content f ON f.id = d.id JOIN doc_display v ON v.id = d.id")
    }

    /// Copies every page the WAL holds into the database file and empties the WAL (what the
    /// next commits would otherwise do a part at a time). Returns the WAL's size before, in bytes.
    @discardableResult
    public func checkpointWAL() async throws -> Int {
        let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        try await database.mapped { try await database.pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) } }
        return wal
    }

    /// The number of documents stored.
    public func count() async throws -> Int {
        try await database.mapped { try await database.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM docs") ?? 0 } }
    }

    /// The stored document for `key`, if any.
    public func document(_ key: String) async throws -> SearchDocument? {
        let sql = self.sql
        return try await database.mapped { try await database.pool.read { db in try Self.load(key, sql: sql, db).document } }
    }

    // MARK: - Writing documents

    /// The stored document and the last position folded into it, rebuilt from its columns and
    /// its full-text row (nothing is stored twice).
    static func load(_ key: String, sql: DocumentSQL, _ db: Database) throws -> (document: SearchDocument?, lastPosition: OutboxPosition, id: Int64?) {
        // Probed first through the key index alone: in a catch-up most documents are new.
        let probe = try RawStatement(db, "SELECT id FROM docs WHERE key = ?")
        probe.bind(1, key)
        guard try probe.step() else { return (nil, .start, nil) }
        let id = probe.int64(0)
        probe.reset()
        // A row whose text or display is missing (drift) is written over in place, never beside.
        guard let row = try GRDB.Row.fetchOne(db.cachedStatement(sql: sql.load), arguments: [id]) else { return (nil, .start, id) }
        var text: [String: String] = [:]
        for (field, column) in zip(sql.fields, sql.textColumns) { text[field] = row[column] }
        var facets: [String: String] = [:]
        for (field, column) in zip(sql.schema.facetFields, sql.facetColumns) { facets[field] = row[column] }
        let display: String = row["display"]
        let document = SearchDocument(
            key: key, text: text, facets: facets, team: row["team"], restricted: (row["restricted"] as Int64) != 0,
            clearance: Int(row["clearance"] as Int64), sortTime: Timestamp.date(microseconds: row["sort_time"]), display: Data(display.utf8))
        return (document, OutboxPosition(row["last_position"]), row["id"])
    }

    /// The row id of `key`'s document, if it exists.
    static func rowID(_ key: String, _ db: Database) throws -> Int64? {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM docs WHERE key = ?"), arguments: [key])
    }

    /// Writes (or deletes) one folded document and adds its words to `terms`, which the caller
    /// records once per transaction. `pending`: whether `security_pending` holds anything.
    static func write(_ folded: FoldedDocument, sql: DocumentSQL, pending hasPending: Bool, written: inout Written, _ db: Database) throws {
        let schema = sql.schema
        let key = folded.key, position = folded.position
        let existing = folded.existingUnknown ? try rowID(key, db) : folded.existing
        if let existing, folded.document == nil,
           let row = try GRDB.Row.fetchOne(
               db.cachedStatement(sql: "SELECT \(sql.fields.joined(separator: ", ")) FROM docs_fts WHERE rowid = ?"), arguments: [existing]) {
            // A deleted document's words leave the vocabulary unless another document still
            // holds them (`record`): a purged case's names must not live on in "did you mean".
            for index in sql.fields.indices { written.dropped.add(row[index] as String? ?? "") }
        }
        if let existing {
            try db.cachedStatement(sql: "DELETE FROM docs_fts WHERE rowid = ?").execute(arguments: [existing])
            written.documents.append(existing)
        }
        guard let document = folded.document else {
            if let existing { try db.cachedStatement(sql: "DELETE FROM doc_display WHERE id = ?").execute(arguments: [existing]) }
            try db.cachedStatement(sql: "DELETE FROM docs WHERE key = ?").execute(arguments: [key])
            return
        }
        let digest = folded.digest
        // A permission change the priority path saw before this document existed.
        let pending = hasPending ? try GRDB.Row.fetchOne(
            db.cachedStatement(sql: "SELECT restricted, clearance, team, position FROM security_pending WHERE key = ?"), arguments: [key]) : nil
        let id: Int64
        if let existing {
            // The filter columns keep a newer permission change applied on the priority path.
            let facetValues: [(any DatabaseValueConvertible)?] = schema.facetFields.map { document.facets[$0] }
            try db.cachedStatement(sql: sql.update)
                .execute(arguments: StatementArguments(
                    [position.rawValue, document.team, position.rawValue, document.restricted ? 1 : 0, position.rawValue, document.clearance,
                     Timestamp.microseconds(document.sortTime), position.rawValue, digest] + facetValues + [existing]))
            id = existing
        } else {
            var restricted = document.restricted ? 1 : 0
            var clearance = document.clearance
            var team = document.team
            var securityPosition: Int64 = 0
            if let pending, (pending["position"] as Int64) > position.rawValue {
                restricted = (pending["restricted"] as Int64?).map(Int.init) ?? restricted
                clearance = (pending["clearance"] as Int64?).map(Int.init) ?? clearance
                team = (pending["team"] as String?) ?? team
                securityPosition = pending["position"]
            }
            let insert = try written.inserts(db, sql).document
            insert.bind(1, key)
            insert.bind(2, team)
            insert.bind(3, restricted)
            insert.bind(4, clearance)
            insert.bind(5, securityPosition)
            insert.bind(6, Timestamp.microseconds(document.sortTime))
            insert.bind(7, position.rawValue)
            insert.bind(8, digest)
            for (index, field) in schema.facetFields.enumerated() { insert.bind(Int32(9 + index), document.facets[field]) }
            try insert.run()
            id = db.lastInsertedRowID
            written.documents.append(id)
        }
        if let pending, (pending["position"] as Int64) <= position.rawValue {
            // The ordinary path has caught up with it.
            try db.cachedStatement(sql: "DELETE FROM security_pending WHERE key = ?").execute(arguments: [key])
        }
        // The display lives apart so the rows filtering and facet counts scan stay small.
        let inserts = try written.inserts(db, sql)
        let displayInsert = inserts.display
        displayInsert.bind(1, id)
        displayInsert.bind(2, utf8: document.display)
        try displayInsert.run()
        let ftsInsert = inserts.fts
        ftsInsert.bind(1, id)
        for (index, field) in sql.fields.enumerated() { ftsInsert.bind(Int32(2 + index), document.text[field] ?? "") }
        try ftsInsert.run()
        // Its words of three letters or more, for the vocabulary spelling correction draws on.
        if !folded.wordsCollected { for field in sql.fields { written.terms.add(document.text[field] ?? "") } }
    }

    /// The statements a document write and load run, made once per store from its schema.
    struct DocumentSQL: Sendable {
        let schema: SearchSchema
        let fields: [String]
        /// The text fields' aliases in `load`.
        let textColumns: [String]
        let facetColumns: [String]
        let load: String
        let update: String
        let insert: String
        let ftsInsert: String
        /// A memory-index hit's key, display and text, by row id.
        let hit: String

        init(_ schema: SearchSchema) {
            self.schema = schema
            fields = schema.textFields.map(\.name)
            textColumns = fields.map { "text_" + $0 }
            facetColumns = schema.facetFields.map(SQLiteSearchStore.facetColumn)
            load = """
                SELECT d.*, v.display, \(zip(fields, textColumns).map { "f.\($0) AS \($1)" }.joined(separator: ", "))
                FROM docs d JOIN docs_fts f ON f.rowid = d.id JOIN doc_display v ON v.id = d.id WHERE d.id = ?
                """
            update = """
                UPDATE docs SET team = CASE WHEN security_position > ? THEN team ELSE ? END,
                    restricted = CASE WHEN security_position > ? THEN restricted ELSE ? END,
                    clearance = CASE WHEN security_position > ? THEN clearance ELSE ? END, sort_time = ?, last_position = ?, digest = ?\(facetColumns.map { ", \($0) = ?" }.joined())
                WHERE id = ?
                """
            let columns = ["key", "team", "restricted", "clearance", "security_position", "sort_time", "last_position", "digest"] + facetColumns
            insert = "INSERT INTO docs (\(columns.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))"
            hit = """
                SELECT d.key, v.display, \(fields.indices.map { "f.c\($0)" }.joined(separator: ", "))
                FROM docs d JOIN doc_display v ON v.id = d.id JOIN docs_fts_content f ON f.id = d.id WHERE d.id = ?
                """
            ftsInsert = "INSERT INTO docs_fts (rowid, \(fields.joined(separator: ", "))) VALUES (?, \(Array(repeating: "?", count: fields.count).joined(separator: ", ")))"
        }
    }

    /// How many transactions the change log keeps. A memory index further behind loads again.
    static let changeLogLength: Int64 = 20_000

    /// What one transaction wrote: new words, and the row ids of the documents written; and the
    /// statements its document writes run, looked up once per transaction.
    struct Written {
        var terms = Vocabulary()
        /// The words of the documents deleted.
        var dropped = Vocabulary()
        var documents: [Int64] = []
        private var statements: InsertStatements?

        /// The document insert statements, looked up on first use.
        mutating func inserts(_ db: Database, _ sql: DocumentSQL) throws -> InsertStatements {
            if let statements { return statements }
            let made = try InsertStatements(db, sql)
            statements = made
            return made
        }

        /// Adds words folded outside the transaction (taken whole when there are none yet).
        mutating func add(words: Vocabulary) { terms.formUnion(words) }
    }

    /// The three statements that write a document's rows.
    struct InsertStatements {
        let document: RawStatement
        let display: RawStatement
        let fts: RawStatement

        init(_ db: Database, _ sql: DocumentSQL) throws {
            document = try RawStatement(db, sql.insert)
            display = try RawStatement(db, "INSERT OR REPLACE INTO doc_display (id, display) VALUES (?, ?)")
            fts = try RawStatement(db, sql.ftsInsert)
        }
    }

    /// Adds new words to the vocabulary that spelling correction draws on, and logs the written
    /// documents (one row per transaction) for memory indexes to follow.
    /// Records what a transaction wrote; returns its change-log entry, if it wrote documents.
    @discardableResult
    static func record(_ written: Written, _ db: Database) throws -> Int64? {
        let logged = try logChanges(written.documents, db)
        let terms = written.terms
        let insertTerm = try db.cachedStatement(sql: "INSERT OR IGNORE INTO terms VALUES (?)")
        let insertTrigram = try db.cachedStatement(sql: "INSERT INTO terms_trigram (term) VALUES (?)")
        for term in terms.words {
            try insertTerm.execute(arguments: [term])
            if db.changesCount > 0 { try insertTrigram.execute(arguments: [term]) }
        }
        // Deletions are rare (purges): each word of a deleted document is looked up in the
        // remaining ones, and leaves the vocabulary when none holds it.
        for word in written.dropped.words where word.count >= 3 {
            let quoted = "\"" + word.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM docs_fts WHERE docs_fts MATCH ? LIMIT 1"), arguments: [quoted]) != true else {
                continue
            }
            try db.cachedStatement(sql: "DELETE FROM terms WHERE term = ?").execute(arguments: [word])
            if db.changesCount > 0 { try db.cachedStatement(sql: "DELETE FROM terms_trigram WHERE term = ?").execute(arguments: [word]) }
        }
        return logged
    }

    /// Appends `documents` to the change log as one row (row ids packed as 64-bit little-endian
    /// integers), and drops the rows beyond `changeLogLength`.
    @discardableResult
    static func logChanges(_ documents: [Int64], _ db: Database) throws -> Int64? {
        guard !documents.isEmpty else { return nil }
        var packed = Data(capacity: documents.count * 8)
        for id in documents { withUnsafeBytes(of: id.littleEndian) { packed.append(contentsOf: $0) } }
        try db.cachedStatement(sql: "INSERT INTO search_changes (ids) VALUES (?)").execute(arguments: [packed])
        let seq = db.lastInsertedRowID
        try db.cachedStatement(sql: "DELETE FROM search_changes WHERE seq <= ? - ?").execute(arguments: [seq, changeLogLength])
        return seq
    }

    // MARK: - Searching

    public func search(_ query: SearchQuery) async throws -> SearchResults {
        let (words, cursor) = try query.plan(for: schema)
        let schema = self.schema
        let queryWords = words
        let accelerator = self.accelerator
        let sql = self.sql
        let pool = database.pool
        return try await database.mapped {
            try await database.pool.read { db in
                func run(_ words: [String], _ cursor: SearchCursor?) throws -> SearchResults {
                    let limit = min(max(query.limit, 1), 200)
                    if let answer = try accelerator.answer(words: words, query: query, cursor: cursor, limit: limit, db, pool: pool) {
                        return try Self.results(of: answer, words: words, limit: limit, sql: sql, db)
                    }
                    return try Self.run(words: words, query: query, cursor: cursor, schema: schema, db)
                }
                var results = try run(queryWords, cursor)
                if !queryWords.isEmpty, cursor == nil, results.hits.count < min(3, max(1, query.limit)) {
                    let corrected = try Self.corrections(for: queryWords, db)
                    if corrected != queryWords {
                        let retry = try run(corrected, nil)
                        if retry.hits.count > results.hits.count {
                            results = retry
                            results.correctedQuery = corrected.joined(separator: " ")
                        }
                    }
                }
                return query.stamping(results)
            }
        }
    }

    /// Whether searches are answered from the memory index now (it is loaded and current).
    public var memoryIndexReady: Bool { accelerator.isReady }

    /// The memory index's state in this process (`GET /v1/ops/projections` shows it).
    public var acceleratorStatus: AcceleratorStatus { accelerator.status }

    /// The loaded memory index's live documents and approximate bytes, if loaded.
    public var memoryIndexSize: (documents: Int, bytes: Int)? { accelerator.size }

    /// Loads the memory index now, unless the store runs without one (a benchmark loads it
    /// before timing queries).
    public func loadMemoryIndex() async throws {
        guard accelerator.mode != .off else { return }
        let accelerator = self.accelerator
        try await database.mapped { try await database.pool.read { db in try accelerator.load(db) } }
    }

    /// The page of a memory-index answer: each hit's key, display and snippet from the file.
    private static func results(of answer: SearchMemoryIndex.Answer, words: [String], limit: Int, sql: DocumentSQL, _ db: Database) throws -> SearchResults {
        let statement = try db.cachedStatement(sql: sql.hit)
        var hits: [SearchResults.Hit] = []
        for hit in answer.hits.prefix(limit) {
            guard let row = try GRDB.Row.fetchOne(statement, arguments: [hit.rowID]) else {
                throw ProjectionError.storage("search document \(hit.rowID) is in the memory index but not in the store")
            }
            let display: String = row[1]
            let snippet = words.isEmpty ? nil : SearchSnippet.make(texts: sql.fields.indices.map { (row[2 + $0] as String?) ?? "" }, words: words)
            hits.append(SearchResults.Hit(key: row[0], score: hit.score, snippet: snippet, display: Data(display.utf8)))
        }
        var nextCursor: String?
        if answer.hits.count > limit {
            let last = answer.hits[limit - 1]
            nextCursor = words.isEmpty ? SearchCursor.recent(last.sortTime, last.rowID).encoded : SearchCursor.ranked(last.score!, last.rowID, words: words).encoded
        }
        return SearchResults(hits: hits, facets: answer.facets, nextCursor: nextCursor, correctedQuery: nil)
    }

    private static func run(words: [String], query: SearchQuery, cursor: SearchCursor?, schema: SearchSchema, _ db: Database) throws -> SearchResults {
        let limit = min(max(query.limit, 1), 200)
        var conditions: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        // Every word is one quoted FTS5 string (a quote inside is doubled), so user text can
        // never become query syntax.
        let match = words.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"*" }.joined(separator: " ")
        if !words.isEmpty {
            conditions.append("docs_fts MATCH ?")
            arguments.append(match)
        }
        switch query.visibility {
        case .everything: break
        case .unrestrictedAndTeams(let teams):
            conditions.append("(d.restricted = 0" + (teams.isEmpty ? ")" : " OR d.team IN (\(teams.map { _ in "?" }.joined(separator: ", "))))"))
            arguments += teams
        case .scoped(let teams, let clearance, let supervised):
            var alternatives = ["d.restricted = 0"]
            if !supervised.isEmpty {
                alternatives.append("d.team IN (\(supervised.map { _ in "?" }.joined(separator: ", ")))")
                arguments += supervised
            }
            if !teams.isEmpty {
                alternatives.append("(d.team IN (\(teams.map { _ in "?" }.joined(separator: ", "))) AND d.clearance <= ?)")
                arguments += teams
                arguments.append(clearance)
            }
            conditions.append("(" + alternatives.joined(separator: " OR ") + ")")
        }
        var filterConditions: [(field: String, sql: String, value: String)] = []
        for (field, value) in query.filters.sorted(by: { $0.key < $1.key }) {
            filterConditions.append((field, "d.\(facetColumn(field)) = ?", value))
        }
        let from = words.isEmpty ? "docs d" : "docs_fts JOIN docs d ON d.id = docs_fts.rowid"
        let weights = schema.textFields.map { String($0.weight) }.joined(separator: ", ")
        let score = "bm25(docs_fts, \(weights))"

        // The page.
        var pageConditions = conditions + filterConditions.map(\.sql)
        var pageArguments = arguments + filterConditions.map(\.value)
        let order: String
        switch cursor {
        case .ranked(let lastScore, let lastID, _, _)?:
            pageConditions.append("(\(score) > ? OR (\(score) = ? AND d.id > ?))")
            pageArguments += [lastScore, lastScore, lastID]
        case .recent(let lastTime, let lastID)?:
            pageConditions.append("(d.sort_time < ? OR (d.sort_time = ? AND d.id < ?))")
            pageArguments += [lastTime, lastTime, lastID]
        case nil: break
        }
        let whereSQL = pageConditions.isEmpty ? "" : " WHERE " + pageConditions.joined(separator: " AND ")
        let sql: String
        if words.isEmpty {
            order = " ORDER BY d.sort_time DESC, d.id DESC"
            sql = "SELECT d.id, d.key, d.sort_time, NULL AS score, NULL AS snippet FROM \(from)\(whereSQL)\(order) LIMIT \(limit + 1)"
        } else {
            order = " ORDER BY score, d.id"
            sql = "SELECT d.id, d.key, d.sort_time, \(score) AS score, snippet(docs_fts, -1, '<mark>', '</mark>', '…', 12) AS snippet FROM \(from)\(whereSQL)\(order) LIMIT \(limit + 1)"
        }
        let rows = try GRDB.Row.fetchAll(db.cachedStatement(sql: sql), arguments: StatementArguments(pageArguments))
        var hits: [SearchResults.Hit] = []
        var nextCursor: String?
        for (index, row) in rows.enumerated() {
            if index == limit {
                let last = rows[limit - 1]
                nextCursor = words.isEmpty
                    ? SearchCursor.recent(last["sort_time"], last["id"]).encoded
                    : SearchCursor.ranked(last["score"], last["id"], words: words).encoded
                break
            }
            hits.append(SearchResults.Hit(
                key: row["key"], score: row["score"], snippet: row["snippet"],
                display: Data((try String.fetchOne(db.cachedStatement(sql: "SELECT display FROM doc_display WHERE id = ?"), arguments: [row["id"] as Int64]) ?? "{}").utf8)))
        }

        // Facet counts: each facet honours every filter except its own. One grouped pass over
        // the matches (text, visibility and the filters on uncounted fields) gives the count of
        // every combination of facet values; each facet then sums the combinations that pass
        // the other facets' filters.
        var facets: [String: [String: Int]] = [:]
        if query.facets {
            var counts = FacetCounts(schema: schema, filters: query.filters)
            let columns = counts.counted.map { "d.\(facetColumn($0))" }
            let groupConditions = conditions + counts.filtersInQuery.map { "d.\(facetColumn($0.field)) = ?" }
            let groupWhere = groupConditions.isEmpty ? "" : " WHERE " + groupConditions.joined(separator: " AND ")
            let groupSQL = "SELECT \(columns.joined(separator: ", ")), COUNT(*) FROM \(from)\(groupWhere) GROUP BY \(columns.joined(separator: ", "))"
            let rows = try GRDB.Row.fetchAll(
                db.cachedStatement(sql: groupSQL), arguments: StatementArguments(arguments + counts.filtersInQuery.map(\.value)))
            for row in rows {
                counts.add(values: (0..<columns.count).map { row[$0] }, count: row[columns.count])
            }
            facets = counts.counts
        }
        return SearchResults(hits: hits, facets: facets, nextCursor: nextCursor, correctedQuery: nil)
    }

    /// Each word not in the vocabulary replaced by the closest known word (edit distance 1, or
    /// 2 for words of 8 letters or more), when there is one.
    private static func corrections(for words: [String], _ db: Database) throws -> [String] {
        try words.map { word in
            guard word.count >= 3 else { return word }
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM terms WHERE term = ?"), arguments: [word]) == true { return word }
            let trigrams = SearchText.trigrams(word)
            guard !trigrams.isEmpty else { return word }
            let match = trigrams.map { "\"\($0)\"" }.joined(separator: " OR ")
            let candidates = try String.fetchAll(
                db.cachedStatement(sql: "SELECT term FROM terms_trigram WHERE terms_trigram MATCH ? ORDER BY rank LIMIT 200"), arguments: [match])
            return SearchText.closest(to: word, among: candidates)
        }
    }
}

extension SQLiteSearchStore: PriorityApplying {
    /// Writes each permission change into the document's filter columns now, unless a newer one
    /// is already there. The ordinary apply path keeps these columns while it folds older events
    /// (see `write`), so the document's visibility never goes back to an older state.
    public func applyPriority(_ events: [EventEnvelope]) async throws {
        let changes = try events.compactMap { event in try projection.securityChange(for: event).map { ($0, event.position) } }
        guard !changes.isEmpty else { return }
        try await database.write { db in
            let statement = try db.cachedStatement(sql: """
                UPDATE docs SET restricted = COALESCE(?, restricted), clearance = COALESCE(?, clearance), team = COALESCE(?, team),
                    security_position = ?
                WHERE key = ? AND security_position < ? AND last_position < ?
                RETURNING id
                """)
            let pending = try db.cachedStatement(sql: """
                INSERT INTO security_pending VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (key) DO UPDATE SET restricted = COALESCE(excluded.restricted, restricted),
                    clearance = COALESCE(excluded.clearance, clearance), team = COALESCE(excluded.team, team), position = excluded.position
                WHERE excluded.position > security_pending.position
                """)
            var written: [Int64] = []
            for (change, position) in changes {
                let restricted = change.restricted.map { $0 ? 1 : 0 }
                if let id = try Int64.fetchOne(statement, arguments: [
                    restricted, change.clearance, change.team, position.rawValue, change.key, position.rawValue, position.rawValue,
                ]) {
                    written.append(id)
                } else if try Int.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM docs WHERE key = ?"), arguments: [change.key]) == nil {
                    // The document does not exist yet (its opening is still in the backlog): keep
                    // the change until the ordinary path creates it.
                    try pending.execute(arguments: [change.key, restricted, change.clearance, change.team, position.rawValue])
                }
            }
            try Self.logChanges(written, db)
        }
    }
}

extension SQLiteSearchStore: DriftCheckable {
    /// The stored content a document's digest covers, in `SearchDocument.driftDigest` order.
    public static func contentDigestSQL(_ schema: SearchSchema) -> String {
        let facets = schema.facetFields.map { "d.\(facetColumn($0))" }
        // FTS5 keeps a text field's stored value in column c<i> of its content table.
        let text = schema.textFields.indices.map { "f.c\($0)" }
        return "canon_digest(" + (["d.key", "d.team", "d.restricted", "d.clearance", "d.sort_time"] + facets + text + ["v.display"]).joined(separator: ", ") + ")"
    }

    /// Left joins, so a document that lost its text or display row no longer matches its digest.
    /// The text is read from the full-text index's own content table (`docs_fts_content`, where
    /// FTS5 stores each row's values): a rowid lookup there is several times cheaper than one
    /// through the virtual table.
    public static let contentFrom = "docs d LEFT JOIN docs_fts_content f ON f.id = d.id LEFT JOIN doc_display v ON v.id = d.id"

    public func driftSnapshot() async throws -> any DriftSnapshot {
        let content = Self.contentDigestSQL(schema)
        let from = Self.contentFrom
        return try SQLiteDriftSnapshot(database, queries: DriftQueries(
            stored: { "SELECT key, digest FROM docs WHERE \($0)" },
            content: { "SELECT d.key AS key, \(content) AS digest FROM \(from) WHERE \($0)" },
            tampered: "SELECT d.key AS key FROM \(from) WHERE d.digest != \(content)",
            keys: "SELECT key FROM docs"))
    }

    public func repair(keys: Set<String>, history: [EventEnvelope], at checkpoint: OutboxPosition) async throws {
        let projection = self.projection
        let sql = self.sql
        var own: [String: [EventEnvelope]] = [:]
        for event in history {
            guard let key = projection.documentKey(for: event), keys.contains(key) else { continue }
            own[key, default: []].append(event)
        }
        // Folded before the write transaction, through the projection's own fold.
        var documents: [(String, SearchDocument?, OutboxPosition)] = []
        for key in keys.sorted() {
            let events = own[key] ?? []
            documents.append((key, events.isEmpty ? nil : try projection.fold(events, into: nil), events.last?.position ?? checkpoint))
        }
        let folded = documents
        try await database.write(at: checkpoint) { db in
            var written = Written()
            let pending = try Self.hasPendingSecurity(db)
            for (key, document, position) in folded {
                // The first row of the key is written in place (its filter columns keep a newer
                // permission change from the priority path); any other row goes, so a duplicate
                // written behind the runtime's back (keys are unique by the writer's lookups, not
                // by an index) is repaired too.
                let ids = try Int64.fetchAll(db.cachedStatement(sql: "SELECT id FROM docs WHERE key = ? ORDER BY id"), arguments: [key])
                for id in ids.dropFirst() {
                    try db.cachedStatement(sql: "DELETE FROM docs_fts WHERE rowid = ?").execute(arguments: [id])
                    try db.cachedStatement(sql: "DELETE FROM doc_display WHERE id = ?").execute(arguments: [id])
                    try db.cachedStatement(sql: "DELETE FROM docs WHERE id = ?").execute(arguments: [id])
                    written.documents.append(id)
                }
                try Self.write(Self.prepared(key: key, document: document, position: position, existing: ids.first, sql: sql), sql: sql, pending: pending, written: &written, db)
            }
            try Self.record(written, db)
        }
    }

    public func recordDrift(_ summary: DriftSummary) async throws { try await database.recordDrift(summary) }

    public func driftSummaries() async throws -> [DriftSummary] { try await database.driftSummaries() }
}

extension SQLiteSearchStore: StateBuildableStore {
    public func stateBuild() async throws -> StateBuildProgress? {
        try await database.mapped {
            try await database.pool.read { db in
                try GRDB.Row.fetchOne(db, sql: "SELECT cursor, complete FROM state_build WHERE id = 1").map {
                    StateBuildProgress(cursor: $0["cursor"], complete: ($0["complete"] as Int64) != 0)
                }
            }
        }
    }

    public func beginStateBuild(at position: OutboxPosition) async throws {
        let identity = self.identity
        stateRangesLeft.withLock { $0 = true }
        try await database.write { db in
            let checkpoint = try SQLiteProjectionDatabase.checkpoint(db).position
            if let row = try GRDB.Row.fetchOne(db, sql: "SELECT cursor, complete FROM state_build WHERE id = 1") {
                guard (row["complete"] as Int64) == 0 else { throw ProjectionError.storage("\(identity) is built from state already") }
                if let cursor = row["cursor"] as String? {
                    // Resuming: the keys after the cursor come from the newer snapshot.
                    try db.execute(sql: "INSERT OR REPLACE INTO state_ranges VALUES (?, ?)", arguments: [cursor, position.rawValue])
                    return
                }
                // Nothing was written yet: start over at the newer snapshot.
                try db.execute(sql: "DELETE FROM state_ranges")
            } else {
                guard checkpoint == .start else {
                    throw ProjectionError.storage("\(identity) holds events up to \(checkpoint) already; it cannot be built from state")
                }
                try db.execute(sql: "INSERT INTO state_build VALUES (1, NULL, 0)")
            }
            try db.execute(sql: "INSERT INTO state_ranges VALUES ('', ?)", arguments: [position.rawValue])
            try db.execute(sql: "UPDATE canon_checkpoint SET position = ?, committed_at = NULL WHERE id = 1", arguments: [position.rawValue])
        }
    }

    public func writeState(_ documents: [SearchDocument], through cursor: String) async throws {
        let sql = self.sql
        let identity = self.identity
        let position = try await database.mapped {
            try await database.pool.read { db in
                try Int64.fetchOne(db, sql: "SELECT position FROM state_ranges ORDER BY after DESC LIMIT 1")
            }
        }
        guard let position else { throw ProjectionError.storage("\(identity) has no build from state in progress") }
        // Everything but the SQL is done beside the write transaction, a chunk ahead of it.
        let handoff = Handoff<FoldedChunk>()
        let preparing = Task.detached {
            var words = Vocabulary()
            var chunk = FoldedChunk(changesSeen: 0)
            for document in documents {
                chunk.append(Self.prepared(key: document.key, document: document, position: OutboxPosition(position), existing: nil, sql: sql), words: &words, fields: sql.fields)
                if chunk.documents.count == Self.foldChunk {
                    guard handoff.put(chunk) else { return }
                    chunk = FoldedChunk(changesSeen: 0)
                }
            }
            chunk.words = words
            handoff.put(chunk)
            handoff.finish()
        }
        defer { handoff.abandon() }
        try await database.write { db in
            // A build writes every index page in every chunk (the keys are random).
            try self.database.useSettings(bulk: true, db)
            guard let row = try GRDB.Row.fetchOne(db, sql: "SELECT cursor, complete FROM state_build WHERE id = 1"), (row["complete"] as Int64) == 0 else {
                throw ProjectionError.storage("\(identity) has no build from state in progress")
            }
            if let reached = row["cursor"] as String?, !Self.precedes(reached, cursor) {
                throw ProjectionError.storage("\(identity): a build from state went back from \(reached) to \(cursor)")
            }
            var written = Written()
            let pending = try Self.hasPendingSecurity(db)
            while let chunk = try handoff.take() {
                for document in chunk.documents { try Self.write(document, sql: sql, pending: pending, written: &written, db) }
                written.add(words: chunk.words)
            }
            try Self.record(written, db)
            try db.execute(sql: "UPDATE state_build SET cursor = ? WHERE id = 1", arguments: [cursor])
        }
        await preparing.value
    }

    public func finishStateBuild() async throws {
        try await database.write { db in
            try self.database.useSettings(bulk: false, now: true, db)
            try db.execute(sql: "UPDATE state_build SET complete = 1 WHERE id = 1")
            try db.execute(sql: """
                DELETE FROM state_ranges WHERE (SELECT max(position) FROM state_ranges) <= (SELECT position FROM canon_checkpoint WHERE id = 1)
                """)
        }
    }
}
