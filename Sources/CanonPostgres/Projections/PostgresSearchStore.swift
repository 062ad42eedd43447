import Canon
import Foundation
import PostgresNIO

/// A full-text search store in its own PostgreSQL schema: `tsvector` with a GIN index, ranked by
/// `ts_rank` with per-field weights, every query word also matching as a prefix; spelling
/// correction from a vocabulary with a `pg_trgm` index; facet counts that honour the other
/// filters; keyset pagination. It answers the same `SearchQuery` as the SQLite store.
///
/// - Documents are folded from events in Swift (the projection's own code), so both engines
///   hold the same documents; the words are folded (lower case, no accents) before PostgreSQL
///   sees them, with the `simple` configuration, so both engines match the same words.
/// - Text fields get the weights A, B, C, D in schema order (at most four), scaled from the
///   schema's weights.
public final class PostgresSearchStore: SearchStore, BookkeepingProjectionStore {
    public let identity: ProjectionIdentity
    public var selection: EventSelection { projection.selection }
    public var bookkeeping: any ProjectionBookkeeping { database }
    private let projection: any DocumentProjection
    private let schema: SearchSchema
    private let database: PostgresProjectionDatabase

    public static func open(url: PostgresURL, projection: any DocumentProjection, faults: FaultInjector? = nil) async throws -> PostgresSearchStore {
        let schema = projection.schema
        guard (1...4).contains(schema.textFields.count) else {
            throw ProjectionError.storage("\(projection.identity): PostgreSQL search weighs one to four text fields, not \(schema.textFields.count)")
        }
        let facetColumns = schema.facetFields.map { "\(facetColumn($0)) TEXT COLLATE \"C\"" }.joined(separator: ", ")
        let textColumns = schema.textFields.map { "\(textColumn($0.name)) TEXT NOT NULL" }.joined(separator: ", ")
        var ddl = [
            """
            CREATE TABLE docs (
                id BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, key TEXT COLLATE "C" PRIMARY KEY, team TEXT NOT NULL,
                restricted BIGINT NOT NULL, clearance BIGINT NOT NULL, sort_time BIGINT NOT NULL, last_position BIGINT NOT NULL,
                digest BIGINT NOT NULL, display TEXT NOT NULL, tsv tsvector NOT NULL, \(textColumns), \(facetColumns),
                security_position BIGINT NOT NULL DEFAULT 0)
            """,
            // Permission changes the priority path saw before their document existed.
            "CREATE TABLE security_pending (key TEXT COLLATE \"C\" PRIMARY KEY, restricted BIGINT, clearance BIGINT, team TEXT, position BIGINT NOT NULL)",
            "CREATE INDEX docs_tsv ON docs USING GIN (tsv)",
            "CREATE INDEX docs_recent ON docs (sort_time DESC, id DESC)",
            "CREATE TABLE terms (term TEXT PRIMARY KEY)",
            "CREATE INDEX terms_trigram ON terms USING GIN (term gin_trgm_ops)",
        ]
        ddl += schema.facetFields.map { "CREATE INDEX docs_\(facetColumn($0)) ON docs (\(facetColumn($0)))" }
        let database = try await PostgresProjectionDatabase.open(
            url: url, identity: projection.identity, faults: faults, extensions: ["pg_trgm"],
            // Candidates for a one-letter typo of a short word share few trigrams.
            settings: [("pg_trgm.similarity_threshold", "0.2")],
            migrations: [
                ("search.v1", ddl),
                // A build from canonical state (`StateBuildableStore`): begun, how far, complete.
                ("search.v2-state-build", ["CREATE TABLE state_build (id INTEGER PRIMARY KEY CHECK (id = 1), cursor TEXT, complete BOOLEAN NOT NULL)"]),
            ])
        return PostgresSearchStore(projection: projection, database: database)
    }

    private init(projection: any DocumentProjection, database: PostgresProjectionDatabase) {
        self.identity = projection.identity
        self.projection = projection
        self.schema = projection.schema
        self.database = database
    }

    /// Whether the spelling vocabulary holds `word` (tests: a purged case's words leave it).
    func vocabularyContains(_ word: String) async throws -> Bool {
        try await !database.database.rows("SELECT 1 FROM terms WHERE term = $1", [.text(word)]).isEmpty
    }

    static func facetColumn(_ field: String) -> String { "f_" + field.filter { $0.isLetter || $0.isNumber || $0 == "_" } }
    static func textColumn(_ field: String) -> String { "t_" + field.filter { $0.isLetter || $0.isNumber || $0 == "_" } }

    /// The schema the store lives in.
    public var schemaName: String { database.schema }

    // MARK: - ProjectionStore

    public func apply(_ events: [EventEnvelope], from: OutboxPosition, to: Checkpoint) async throws {
        let projection = self.projection
        let schema = self.schema
        try await database.advance(from: from, to: to) { transaction in
            let documents = projection.byDocument(events)
            guard !documents.isEmpty else { return }
            let current = try await Self.load(documents.map(\.key), schema: schema, transaction)
            var writes: [(key: String, document: SearchDocument?, position: OutboxPosition)] = []
            for (key, events) in documents {
                let stored = current[key]
                let fresh = events.filter { $0.position > (stored?.lastPosition ?? .start) }
                guard let last = fresh.last else { continue }
                writes.append((key, try projection.fold(fresh, into: stored?.document), last.position))
            }
            try await Self.write(writes, schema: schema, transaction)
        }
    }

    public func refold(stream: StreamID, events: [EventEnvelope], at checkpoint: OutboxPosition) async throws {
        var writes: [(key: String, document: SearchDocument?, position: OutboxPosition)] = []
        for key in Set(events.compactMap(projection.documentKey(for:))).sorted() {
            let own = events.filter { projection.documentKey(for: $0) == key }
            writes.append((key, try projection.fold(own, into: nil), own.last!.position))
        }
        let schema = self.schema
        let folded = writes
        try await database.write(at: checkpoint) { transaction in try await Self.write(folded, schema: schema, transaction) }
    }

    public func contentSummary() async throws -> ContentSummary {
        let columns = ["key", "team", "restricted", "clearance", "sort_time", "display"]
            + schema.textFields.map { Self.textColumn($0.name) } + schema.facetFields.map(Self.facetColumn)
        return try await database.contentSummary(rowsSQL: "SELECT concat_ws(chr(31), \(columns.joined(separator: ", "))) FROM docs")
    }

    /// The number of documents.
    public func count() async throws -> Int {
        try await database.mapped { Int(try await database.database.rows("SELECT COUNT(*) FROM docs").first?.decode(Int64.self) ?? 0) }
    }

    /// The stored document for `key`, if any.
    public func document(_ key: String) async throws -> SearchDocument? {
        let schema = self.schema
        return try await database.mapped {
            try await database.database.withConnection { try await Self.load([key], schema: schema, $0)[key]?.document }
        }
    }

    // MARK: - Writing documents

    private static func selectColumns(_ schema: SearchSchema) -> String {
        (["key", "last_position", "team", "restricted", "clearance", "sort_time", "display"]
            + schema.textFields.map { textColumn($0.name) } + schema.facetFields.map(facetColumn)).joined(separator: ", ")
    }

    /// The stored documents of `keys` with the last position folded into each.
    static func load(
        _ keys: [String], schema: SearchSchema, _ transaction: PostgresTransaction
    ) async throws -> [String: (document: SearchDocument, lastPosition: OutboxPosition)] {
        var binds = PostgresBindings()
        binds.append(keys)
        let rows = try await transaction.connection.query(
            PostgresQuery(unsafeSQL: "SELECT \(selectColumns(schema)) FROM docs WHERE key = ANY($1)", binds: binds), logger: transaction.logger
        ).collect()
        var documents: [String: (SearchDocument, OutboxPosition)] = [:]
        for row in rows {
            let (document, last) = try Self.document(row, schema: schema)
            documents[document.key] = (document, last)
        }
        return documents
    }

    /// The document in a row of `selectColumns` (more columns may follow), and its last position.
    static func document(_ row: PostgresRow, schema: SearchSchema) throws -> (SearchDocument, OutboxPosition) {
        let cells = Array(row)
        let key = try cells[0].decode(String.self), last = try cells[1].decode(Int64.self), team = try cells[2].decode(String.self)
        let restricted = try cells[3].decode(Int64.self), clearance = try cells[4].decode(Int64.self)
        let sortTime = try cells[5].decode(Int64.self), display = try cells[6].decode(String.self)
        var text: [String: String] = [:]
        for (index, field) in schema.textFields.enumerated() { text[field.name] = try cells[7 + index].decode(String.self) }
        var facets: [String: String] = [:]
        for (index, field) in schema.facetFields.enumerated() {
            facets[field] = try cells[7 + schema.textFields.count + index].decode(String?.self)
        }
        return (
            SearchDocument(
                key: key, text: text, facets: facets, team: team, restricted: restricted != 0, clearance: Int(clearance),
                sortTime: Timestamp.date(microseconds: sortTime), display: Data(display.utf8)),
            OutboxPosition(last))
    }

    /// Writes (or deletes) documents, and adds their words to the spelling vocabulary.
    static func write(_ writes: [(key: String, document: SearchDocument?, position: OutboxPosition)], schema: SearchSchema, _ transaction: PostgresTransaction) async throws {
        let deleted = writes.filter { $0.document == nil }.map(\.key)
        var dropped = Set<String>()
        if !deleted.isEmpty {
            var binds = PostgresBindings()
            binds.append(deleted)
            // The deleted documents' words leave the vocabulary below unless another document
            // still holds them: a purged case's names must not live on in "did you mean".
            let texts = schema.textFields.map { textColumn($0.name) }.joined(separator: ", ")
            for row in try await transaction.connection.query(
                PostgresQuery(unsafeSQL: "DELETE FROM docs WHERE key = ANY($1) RETURNING \(texts)", binds: binds), logger: transaction.logger
            ).collect() {
                for cell in row {
                    for word in SearchText.words(try cell.decode(String.self)) where word.count >= 3 { dropped.insert(word) }
                }
            }
        }
        if !dropped.isEmpty {
            // Rare (purges): each word is looked up in the remaining documents' vectors.
            var binds = PostgresBindings()
            binds.append(dropped.sorted())
            try await transaction.connection.query(
                PostgresQuery(unsafeSQL: """
                    DELETE FROM terms t WHERE t.term = ANY($1)
                        AND NOT EXISTS (SELECT 1 FROM docs d WHERE d.tsv @@ plainto_tsquery('simple', t.term))
                    """, binds: binds), logger: transaction.logger
            ).collect()
        }
        let kept = writes.compactMap { write in write.document.map { (document: $0, position: write.position) } }
        let weights = ["A", "B", "C", "D"]
        let columns = ["key", "team", "restricted", "clearance", "sort_time", "last_position", "digest", "display"]
            + schema.textFields.map { textColumn($0.name) } + schema.facetFields.map(facetColumn)
        // The rows as arrays (`PostgresColumns`): c0…c7 the fixed columns, then each text field,
        // each text field's words (for its weighted part of `tsv`), each facet. One statement
        // text for any number of documents, prepared once per connection.
        let texts = schema.textFields.count
        let kinds: [PostgresColumn.Kind] = [.text, .text, .bigint, .bigint, .bigint, .bigint, .bigint, .text]
            + Array(repeating: .text, count: 2 * texts + schema.facetFields.count)
        let fields = kinds.indices.map { "c\($0)" }
        let vector = (0..<texts).map { "setweight(to_tsvector('simple', c\(8 + texts + $0)), '\(weights[$0])')" }.joined(separator: " || ")
        let selected = Array(fields[0..<(8 + texts)]) + Array(fields[(8 + 2 * texts)...]) + [vector]
        // The filter columns keep a newer permission change applied on the priority path.
        let updates = (columns.dropFirst() + ["tsv"]).map { column in
            ["team", "restricted", "clearance"].contains(column)
                ? "\(column) = CASE WHEN docs.security_position > excluded.last_position THEN docs.\(column) ELSE excluded.\(column) END"
                : "\(column) = excluded.\(column)"
        }.joined(separator: ", ")
        var terms = Set<String>()
        for start in stride(from: 0, to: kept.count, by: 1000) {
            var rows = PostgresColumns(kinds)
            for (document, position) in kept[start..<min(start + 1000, kept.count)] {
                var values: [CanonValue] = [
                    .text(document.key), .text(document.team), .bool(document.restricted), .integer(Int64(document.clearance)),
                    .timestamp(document.sortTime), .integer(position.rawValue), .integer(Int64(bitPattern: document.driftDigest(schema))),
                    .text(String(decoding: document.display, as: UTF8.self)),
                ]
                var words: [CanonValue] = []
                for field in schema.textFields {
                    let text = document.text[field.name] ?? ""
                    let split = SearchText.words(text)
                    for word in split where word.count >= 3 { terms.insert(word) }
                    values.append(.text(text))
                    words.append(.text(split.joined(separator: " ")))
                }
                values += words
                values += schema.facetFields.map { .optionalText(document.facets[$0]) }
                try rows.append(values)
            }
            var binds = PostgresSchemaSQL.Binds()
            let sql = """
                INSERT INTO docs (\((columns + ["tsv"]).joined(separator: ", ")))
                SELECT \(selected.joined(separator: ", ")) FROM \(rows.unnest(binding: &binds)) AS r(\(fields.joined(separator: ", ")))
                ON CONFLICT (key) DO UPDATE SET \(updates)
                """
            try await transaction.rows(sql, binds.values, prepared: true)
        }
        if !kept.isEmpty {
            // A permission change the priority path saw before the document existed (applied
            // now), or one the ordinary path has caught up with (dropped); and the new words of
            // the spelling vocabulary. One statement.
            var binds = PostgresBindings()
            binds.append(kept.map(\.document.key))
            binds.append(terms.sorted())
            try await transaction.connection.query(
                PostgresQuery(unsafeSQL: """
                    WITH pending AS (
                        UPDATE docs d SET restricted = COALESCE(p.restricted, d.restricted), clearance = COALESCE(p.clearance, d.clearance),
                            team = COALESCE(p.team, d.team), security_position = p.position
                        FROM security_pending p
                        WHERE p.key = d.key AND d.key = ANY($1) AND p.position > d.last_position AND p.position > d.security_position
                        RETURNING d.key),
                    caught_up AS (
                        DELETE FROM security_pending p USING docs d
                        WHERE p.key = d.key AND d.key = ANY($1) AND p.position <= d.last_position RETURNING p.key),
                    words AS (INSERT INTO terms SELECT unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING term)
                    SELECT (SELECT count(*) FROM pending), (SELECT count(*) FROM caught_up), (SELECT count(*) FROM words)
                    """, binds: binds), logger: transaction.logger
            ).collect()
        }
    }

    // MARK: - Searching

    public func search(_ query: SearchQuery) async throws -> SearchResults {
        let (words, cursor) = try query.plan(for: schema)
        var results = try await run(words: words, query: query, cursor: cursor)
        if !words.isEmpty, cursor == nil, results.hits.count < min(3, max(1, query.limit)) {
            let corrected = try await corrections(for: words)
            if corrected != words {
                let retry = try await run(words: corrected, query: query, cursor: nil)
                if retry.hits.count > results.hits.count {
                    results = retry
                    results.correctedQuery = corrected.joined(separator: " ")
                }
            }
        }
        return query.stamping(results)
    }

    private func run(words: [String], query: SearchQuery, cursor: SearchCursor?) async throws -> SearchResults {
        let limit = min(max(query.limit, 1), 200)
        var binds = PostgresSchemaSQL.Binds()
        var conditions: [String] = []
        var from = "docs d"
        if !words.isEmpty {
            // Words hold letters and digits only (`SearchText.words`), so they cannot become tsquery syntax.
            from = "docs d, to_tsquery('simple', \(binds.bind(.text(words.map { "\($0):*" }.joined(separator: " & "))))) q"
            conditions.append("d.tsv @@ q")
        }
        switch query.visibility {
        case .everything: break
        case .unrestrictedAndTeams(let teams):
            conditions.append("(d.restricted = 0" + (teams.isEmpty ? ")" : " OR d.team IN (\(teams.map { binds.bind(.text($0)) }.joined(separator: ", "))))"))
        case .scoped(let teams, let clearance, let supervised):
            var alternatives = ["d.restricted = 0"]
            if !supervised.isEmpty { alternatives.append("d.team IN (\(supervised.map { binds.bind(.text($0)) }.joined(separator: ", ")))") }
            if !teams.isEmpty {
                alternatives.append("(d.team IN (\(teams.map { binds.bind(.text($0)) }.joined(separator: ", "))) AND d.clearance <= \(binds.bind(.integer(Int64(clearance)))))")
            }
            conditions.append("(" + alternatives.joined(separator: " OR ") + ")")
        }
        let shared = (conditions, binds)
        var pageConditions = conditions
        for (field, value) in query.filters.sorted(by: { $0.key < $1.key }) {
            pageConditions.append("d.\(Self.facetColumn(field)) = \(binds.bind(.text(value)))")
        }
        let maximum = schema.textFields.map(\.weight).max() ?? 1
        let scaled = (0..<4).reversed().map { index in index < schema.textFields.count ? schema.textFields[index].weight / maximum : 0 }
        // Negated, so that lower is better as with bm25: both engines order and page the same way.
        let score = "(-ts_rank('{\(scaled.map { String($0) }.joined(separator: ","))}'::float4[], d.tsv, q))::float8"
        switch cursor {
        case .ranked(let lastScore, let lastID, _, _)?:
            let last = binds.bind(.real(lastScore))
            pageConditions.append("(\(score) > \(last) OR (\(score) = \(last) AND d.id > \(binds.bind(.integer(lastID)))))")
        case .recent(let lastTime, let lastID)?:
            let last = binds.bind(.integer(lastTime))
            pageConditions.append("(d.sort_time < \(last) OR (d.sort_time = \(last) AND d.id < \(binds.bind(.integer(lastID)))))")
        case nil: break
        }
        let whereSQL = pageConditions.isEmpty ? "" : " WHERE " + pageConditions.joined(separator: " AND ")
        let sql: String
        if words.isEmpty {
            sql = "SELECT d.id, d.key, d.sort_time, NULL::float8, NULL::text, d.display FROM \(from)\(whereSQL) ORDER BY d.sort_time DESC, d.id DESC LIMIT \(limit + 1)"
        } else {
            let text = schema.textFields.map { "d.\(Self.textColumn($0.name))" }.joined(separator: ", ")
            let snippet = "ts_headline('simple', concat_ws(' ', \(text)), q, 'StartSel=<mark>, StopSel=</mark>, MaxWords=14, MinWords=6, MaxFragments=1, FragmentDelimiter=…')"
            sql = "SELECT d.id, d.key, d.sort_time, \(score) AS score, \(snippet), d.display FROM \(from)\(whereSQL) ORDER BY score, d.id LIMIT \(limit + 1)"
        }
        let facetQuery = query.facets ? FacetCounts(schema: schema, filters: query.filters) : nil
        let database = self.database.database
        let rows = try await self.database.mapped { try await database.rows(sql, binds.values) }
        var hits: [SearchResults.Hit] = []
        var nextCursor: String?
        for (index, row) in rows.enumerated() {
            let (id, key, sortTime, score, snippet, display) = try row.decode((Int64, String, Int64, Double?, String?, String).self)
            if index == limit {
                let (lastID, _, lastTime, lastScore, _, _) = try rows[limit - 1].decode((Int64, String, Int64, Double?, String?, String).self)
                nextCursor = words.isEmpty ? SearchCursor.recent(lastTime, lastID).encoded : SearchCursor.ranked(lastScore ?? 0, lastID, words: words).encoded
                break
            }
            _ = (id, sortTime)
            hits.append(SearchResults.Hit(key: key, score: score, snippet: snippet, display: Data(display.utf8)))
        }
        var facets: [String: [String: Int]] = [:]
        if var counts = facetQuery {
            var (groupConditions, groupBinds) = shared
            groupConditions += counts.filtersInQuery.map { "d.\(Self.facetColumn($0.field)) = \(groupBinds.bind(.text($0.value)))" }
            let columns = counts.counted.map { "d.\(Self.facetColumn($0))" }
            let groupWhere = groupConditions.isEmpty ? "" : " WHERE " + groupConditions.joined(separator: " AND ")
            let groupSQL = "SELECT \(columns.joined(separator: ", ")), COUNT(*) FROM \(from)\(groupWhere) GROUP BY \(columns.joined(separator: ", "))"
            for row in try await self.database.mapped({ try await database.rows(groupSQL, groupBinds.values) }) {
                let cells = Array(row)
                let values = try cells.prefix(columns.count).map { try $0.decode(String?.self) }
                counts.add(values: values, count: Int(try cells[columns.count].decode(Int64.self)))
            }
            facets = counts.counts
        }
        return SearchResults(hits: hits, facets: facets, nextCursor: nextCursor, correctedQuery: nil)
    }

    /// Each word not in the vocabulary replaced by the closest known word, candidates found by
    /// the trigram index.
    private func corrections(for words: [String]) async throws -> [String] {
        var corrected: [String] = []
        for word in words {
            guard word.count >= 3 else {
                corrected.append(word)
                continue
            }
            let rows = try await database.mapped {
                try await database.database.rows(
                    "SELECT term FROM terms WHERE term = $1 OR term % $1 ORDER BY term = $1 DESC, similarity(term, $1) DESC LIMIT 200", [.text(word)])
            }
            let candidates = try rows.map { try $0.decode(String.self) }
            corrected.append(candidates.first == word ? word : SearchText.closest(to: word, among: candidates))
        }
        return corrected
    }
}

extension PostgresSearchStore: PriorityApplying {
    /// Writes each permission change into the document's filter columns now, unless a newer one
    /// is already there. The ordinary apply path keeps these columns while it folds older events
    /// (see `write`), so the document's visibility never goes back to an older state.
    public func applyPriority(_ events: [EventEnvelope]) async throws {
        let changes = try events.compactMap { event in try projection.securityChange(for: event).map { ($0, event.position) } }
        guard !changes.isEmpty else { return }
        try await database.write { transaction in
            // Wait out an apply in flight (it holds the checkpoint row from its first statement):
            // under READ COMMITTED the updates below would skip a document it inserted but has not
            // committed yet, and the change would wait for the backlog after all.
            try await transaction.execute("SELECT 1 FROM canon_checkpoint WHERE id = 1 FOR SHARE")
            for (change, position) in changes {
                let values: [CanonValue] = [
                    change.restricted.map { .bool($0) } ?? .null, change.clearance.map { .integer(Int64($0)) } ?? .null,
                    .optionalText(change.team), .integer(position.rawValue), .text(change.key),
                ]
                let updated = try await transaction.rows(
                    """
                    UPDATE docs SET restricted = COALESCE($1::bigint, restricted), clearance = COALESCE($2::bigint, clearance),
                        team = COALESCE($3::text, team), security_position = $4
                    WHERE key = $5 AND security_position < $4 AND last_position < $4 RETURNING 1
                    """, values)
                guard updated.isEmpty else { continue }
                // The document does not exist yet (its opening is still in the backlog): keep the
                // change until the ordinary path creates it.
                try await transaction.execute(
                    """
                    INSERT INTO security_pending (restricted, clearance, team, position, key)
                    SELECT $1::bigint, $2::bigint, $3::text, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM docs WHERE key = $5)
                    ON CONFLICT (key) DO UPDATE SET restricted = COALESCE(excluded.restricted, security_pending.restricted),
                        clearance = COALESCE(excluded.clearance, security_pending.clearance), team = COALESCE(excluded.team, security_pending.team),
                        position = excluded.position
                    WHERE excluded.position > security_pending.position
                    """, values)
            }
        }
    }
}

extension PostgresSearchStore: DriftCheckable {
    /// One row per key: the digest kept when the document was applied is the key's digest.
    public func driftSnapshot() async throws -> any DriftSnapshot {
        let schema = self.schema
        let columns = Self.selectColumns(schema) + ", digest"
        let digestColumn = 7 + schema.textFields.count + schema.facetFields.count
        return try await database.driftSnapshot(PostgresDriftQueries(
            stored: { "SELECT key, digest FROM docs WHERE \($0)" },
            keys: "SELECT key FROM docs",
            content: { keys, transaction in
                try await Self.load(keys, schema: schema, transaction).mapValues { $0.document.driftDigest(schema) }
            },
            tampered: { transaction in
                var keys: [String] = []
                var after = ""
                while true {
                    // Documents in key order, a page at a time ("" sorts before every key).
                    let page = try await transaction.rows("SELECT \(columns) FROM docs WHERE key > $1 ORDER BY key LIMIT 2000", [.text(after)]).map { row in
                        let (document, _) = try Self.document(row, schema: schema)
                        let kept = UInt64(bitPattern: try Array(row)[digestColumn].decode(Int64.self))
                        return (key: document.key, changed: document.driftDigest(schema) != kept)
                    }
                    guard let last = page.last else { return keys }
                    keys += page.filter(\.changed).map(\.key)
                    after = last.key
                }
            }))
    }

    /// Folds each key's history through the projection and writes it (or deletes the document
    /// when the history makes none) at `checkpoint`, through the agent's own write.
    public func repair(keys: Set<String>, history: [EventEnvelope], at checkpoint: OutboxPosition) async throws {
        var own: [String: [EventEnvelope]] = [:]
        for event in history {
            guard let key = projection.documentKey(for: event), keys.contains(key) else { continue }
            own[key, default: []].append(event)
        }
        var writes: [(key: String, document: SearchDocument?, position: OutboxPosition)] = []
        for key in keys.sorted() {
            let events = own[key] ?? []
            writes.append((key, events.isEmpty ? nil : try projection.fold(events, into: nil), events.last?.position ?? checkpoint))
        }
        let schema = self.schema
        let folded = writes
        try await database.write(at: checkpoint) { transaction in try await Self.write(folded, schema: schema, transaction) }
    }

    public func recordDrift(_ summary: DriftSummary) async throws { try await database.recordDrift(summary) }

    public func driftSummaries() async throws -> [DriftSummary] { try await database.driftSummaries() }
}

/// A build from canonical state (`ProjectionRebuild` with a `DocumentStateSource`): the documents
/// as of one snapshot, each written with the snapshot's position as its last, then the outbox
/// from there as usual (an event at or before a document's last position is not applied again).
///
/// Interrupted, the state phase starts again from a new snapshot: the documents written so far
/// are dropped when it begins again (they came from a snapshot that is gone, and a key that has
/// no document in the new one would keep the old one's). The embedded engine instead resumes
/// after its cursor and records the snapshot of each range of keys; here the state phase is the
/// short part of a rebuild, and starting it again keeps the catch-up's rule to one position per
/// document.
extension PostgresSearchStore: StateBuildableStore {
    /// A build not complete reports no cursor: nothing of it is kept (see above).
    public func stateBuild() async throws -> StateBuildProgress? {
        try await database.mapped {
            try await database.database.rows("SELECT complete FROM state_build WHERE id = 1").first.map {
                StateBuildProgress(cursor: nil, complete: try $0.decode(Bool.self))
            }
        }
    }

    public func beginStateBuild(at position: OutboxPosition) async throws {
        let identity = self.identity
        try await database.write { transaction in
            let checkpoint = try await transaction.rows("SELECT position FROM canon_checkpoint WHERE id = 1 FOR UPDATE").first?.decode(Int64.self) ?? 0
            if let row = try await transaction.rows("SELECT complete FROM state_build WHERE id = 1").first {
                guard try !row.decode(Bool.self) else { throw ProjectionError.storage("\(identity) is built from state already") }
                // Begun before from an older snapshot: its documents go.
                try await transaction.execute("DELETE FROM docs")
                try await transaction.execute("DELETE FROM terms")
                try await transaction.execute("DELETE FROM security_pending")
                try await transaction.execute("UPDATE state_build SET cursor = NULL WHERE id = 1")
            } else {
                guard checkpoint == 0 else {
                    throw ProjectionError.storage("\(identity) holds events up to \(checkpoint) already; it cannot be built from state")
                }
                try await transaction.execute("INSERT INTO state_build VALUES (1, NULL, false)")
            }
            try await transaction.execute("UPDATE canon_checkpoint SET position = $1, committed_at = NULL WHERE id = 1", [.integer(position.rawValue)])
        }
    }

    public func writeState(_ documents: [SearchDocument], through cursor: String) async throws {
        let identity = self.identity
        let schema = self.schema
        try await database.write { transaction in
            guard let row = try await transaction.rows("SELECT complete FROM state_build WHERE id = 1 FOR UPDATE").first, try !row.decode(Bool.self) else {
                throw ProjectionError.storage("\(identity) has no build from state in progress")
            }
            // The snapshot's position: the checkpoint the build began at, which nothing moves
            // until the build is complete.
            let position = OutboxPosition(try await transaction.rows("SELECT position FROM canon_checkpoint WHERE id = 1").first?.decode(Int64.self) ?? 0)
            try await Self.write(documents.map { (key: $0.key, document: Optional($0), position: position) }, schema: schema, transaction)
            try await transaction.execute("UPDATE state_build SET cursor = $1 WHERE id = 1", [.text(cursor)])
        }
    }

    public func finishStateBuild() async throws {
        try await database.write { transaction in
            try await transaction.execute("UPDATE state_build SET complete = true WHERE id = 1")
        }
    }
}
