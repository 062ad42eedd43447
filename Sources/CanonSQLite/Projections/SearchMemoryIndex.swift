import Canon
import Foundation
import GRDB

/// An in-memory inverted index over a search store's file, for the queries FTS5 answers slowly.
///
/// FTS5 visits every match of a query word to order by bm25 and to count facets. With common
/// words (hundreds of thousands of documents each) that is 100 ms to a second. This index keeps,
/// per word, the documents holding it with their hit counts per field, and per document its
/// access and facet values as small integer codes. A query walks the posting lists of its words
/// (merged for a prefix, intersected for several words), scores each match with the formula of
/// FTS5's `bm25()` (same IDF, same average length, same field weights, in the same order, so the
/// scores and therefore the cursors are the same to the bit), keeps the best page, and counts
/// facets in the same pass.
///
/// - The SQLite file stays the source: the index is loaded from it and follows it through the
///   store's change log (`search_changes`: each write transaction of the store, in any process,
///   appends the row ids it wrote). A query reads the log's head in its own read transaction;
///   the index is brought to exactly that head before answering, or the query is answered by
///   FTS5. (Writes to the file that bypass the store, such as tampering to test drift
///   detection, are not logged; drift detection reads the file itself.)
/// - Documents are numbered in the order they enter the index. A changed document gets a new
///   number and its old one is marked dead (as Lucene does), so posting lists are only
///   appended to. When the dead outnumber the live, the index is loaded again.
/// - It answers only what it answers exactly like FTS5: ASCII query words, at most
///   `maxPhrases` of them, and schemas of at most four text fields. Everything else (and every
///   query while the index loads) goes to FTS5.
struct SearchMemoryIndex: Sendable {
    static let maxFields = 4
    static let maxPhrases = 8

    let schema: SearchSchema
    private let weights: [Double]

    /// The change-log sequence the index reflects.
    private(set) var sequence: Int64 = 0

    // Documents, by internal number. The query loop reads only `access`, `combinations`,
    // `lengths` and the match's postings per document (a 1,000,000-document scan is bound by
    // memory traffic); the rest is read for the page's hits and for uncounted filters.
    private var rowIDs: [Int64] = []
    private var live = Bitmap()
    private(set) var liveCount = 0
    private(set) var deadCount = 0
    private var lengths: [Int32] = []
    /// Team code (low 16 bits), restricted (bit 16) and clearance (bits 17 up).
    private var access: [UInt32] = []
    private var sortTimes: [Int64] = []
    /// `facetCodes[doc * facetCount + field]`; 0 is no value.
    private var facetCodes: [UInt16] = []
    /// Each document's combination of counted facet values, numbered in order of first sight.
    private var combinations: [UInt32] = []
    private var combinationIDs: [[UInt16]: UInt32] = [:]
    private var combinationCodes: [[UInt16]] = []
    /// The facet fields counted (`FacetCounts`), by index in the schema.
    private let countedFields: [Int]
    private var totalTokens: Int64 = 0
    private var numberOfRow: [Int64: Int32] = [:]

    private var facetValues: [ValueCodes] = []
    private var teamValues = ValueCodes()

    // Words.
    private var termIDs: [String: Int32] = [:]
    private var termNames: [String] = []
    /// Term ids in the order of their names, for prefix ranges.
    private var sortedTerms: [Int32] = []
    private var postings: [Postings] = []

    init?(schema: SearchSchema) {
        guard schema.textFields.count <= Self.maxFields else { return nil }
        self.schema = schema
        weights = schema.textFields.map(\.weight)
        facetValues = schema.facetFields.map { _ in ValueCodes() }
        let counted = FacetCounts(schema: schema, filters: [:]).counted
        countedFields = counted.map { schema.facetFields.firstIndex(of: $0)! }
    }

    var documentCount: Int { rowIDs.count }

    /// The bytes the index's arrays hold (dictionaries and strings counted roughly).
    var approximateBytes: Int {
        let perDocument = 8 + 4 + 4 + 8 + 4 + 2 * schema.facetFields.count + 8 + 16
        let postingBytes = postings.reduce(0) { $0 + $1.documents.capacity * 4 + $1.hits.capacity * 4 }
        return rowIDs.count * perDocument + postingBytes + termNames.count * 64 + live.words.count * 8
    }

    // MARK: - Loading and following the file

    /// The columns a document is read with, in `add(row:)` order.
    static func documentSQL(_ schema: SearchSchema) -> String {
        let facets = schema.facetFields.map { "d.\(SQLiteSearchStore.facetColumn($0))" }
        let text = schema.textFields.indices.map { "f.c\($0)" }
        let columns = ["d.id", "d.team", "d.restricted", "d.clearance", "d.sort_time"] + facets + text
        return "SELECT \(columns.joined(separator: ", ")) FROM docs d JOIN docs_fts_content f ON f.id = d.id"
    }

    /// Every document of the file, as of `db`'s snapshot.
    ///
    /// - Returns: false when a document cannot be held (a word more than 255 times in a field).
    mutating func load(_ db: Database, progress: ((Int) -> Void)? = nil) throws -> Bool {
        sequence = try Self.head(db)
        let rows = try GRDB.Row.fetchCursor(db, sql: Self.documentSQL(schema))
        var count = 0
        while let row = try rows.next() {
            guard add(row) else { return false }
            count += 1
            if count % 100_000 == 0 { progress?(count) }
        }
        return true
    }

    /// The newest change in the store's log (0 when there is none).
    static func head(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT ifnull(max(seq), 0) FROM search_changes")) ?? 0
    }

    enum Refresh { case current, refreshed, reloadNeeded }

    /// Brings the index to `head`, the log's head in `db`'s snapshot, by reading again the
    /// documents changed since `sequence`.
    mutating func refresh(to head: Int64, _ db: Database, maxChanges: Int = 50_000) throws -> Refresh {
        if head == sequence { return .current }
        // A log that went back (a store emptied and rebuilt) or was pruned past us: load again.
        guard head > sequence else { return .reloadNeeded }
        let oldest = try Int64.fetchOne(db.cachedStatement(sql: "SELECT ifnull(min(seq), 0) FROM search_changes")) ?? 0
        guard oldest <= sequence + 1 else { return .reloadNeeded }
        var changed = Set<Int64>()
        let rows = try GRDB.Row.fetchCursor(
            db.cachedStatement(sql: "SELECT ids FROM search_changes WHERE seq > ? AND seq <= ?"), arguments: [sequence, head])
        while let row = try rows.next() {
            let packed: Data = row[0]
            packed.withUnsafeBytes { bytes in
                for offset in stride(from: 0, to: bytes.count - 7, by: 8) {
                    changed.insert(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int64.self)))
                }
            }
            guard changed.count <= maxChanges else { return .reloadNeeded }
        }
        let statement = try db.cachedStatement(sql: Self.documentSQL(schema) + " WHERE d.id = ?")
        for rowID in changed.sorted() {
            remove(rowID: rowID)
            if let row = try GRDB.Row.fetchOne(statement, arguments: [rowID]) {
                guard add(row) else { return .reloadNeeded }
            }
        }
        sequence = head
        return deadCount > max(10_000, liveCount) ? .reloadNeeded : .refreshed
    }

    private mutating func remove(rowID: Int64) {
        guard let doc = numberOfRow.removeValue(forKey: rowID) else { return }
        live.clear(Int(doc))
        liveCount -= 1
        deadCount += 1
        totalTokens -= Int64(lengths[Int(doc)])
    }

    private mutating func add(_ row: GRDB.Row) -> Bool {
        let doc = Int32(rowIDs.count)
        let facetCount = schema.facetFields.count
        var wordsOfDocument: [(term: Int32, hits: UInt32)] = []
        var length: Int32 = 0
        for field in schema.textFields.indices {
            let text: String = row[5 + facetCount + field] ?? ""
            let shift = UInt32(8 * field)
            for word in SearchText.words(text) {
                length += 1
                let term = termID(word)
                if let at = wordsOfDocument.firstIndex(where: { $0.term == term }) {
                    guard (wordsOfDocument[at].hits >> shift) & 0xFF < 0xFF else { return false }
                    wordsOfDocument[at].hits += 1 << shift
                } else {
                    wordsOfDocument.append((term, 1 << shift))
                }
            }
        }
        let rowID: Int64 = row[0]
        // Codes are 16 bits wide; a store with more distinct values is answered by FTS5.
        let team = teamValues.code(row[1])
        let clearance = UInt32(clamping: max(0, row[3] as Int64))
        guard team <= 0xFFFF, clearance < 1 << 15 else { return false }
        var codes: [UInt16] = []
        for field in 0..<facetCount {
            let code = facetValues[field].code(row[5 + field] as String?)
            guard code <= 0xFFFF else { return false }
            codes.append(UInt16(code))
        }
        let counted = countedFields.map { codes[$0] }
        let combination: UInt32
        if let known = combinationIDs[counted] {
            combination = known
        } else {
            combination = UInt32(combinationCodes.count)
            combinationIDs[counted] = combination
            combinationCodes.append(counted)
        }
        rowIDs.append(rowID)
        numberOfRow[rowID] = doc
        live.set(Int(doc))
        liveCount += 1
        lengths.append(length)
        totalTokens += Int64(length)
        access.append(team | ((row[2] as Int64) != 0 ? 1 << 16 : 0) | clearance << 17)
        sortTimes.append(row[4])
        facetCodes += codes
        combinations.append(combination)
        for (term, hits) in wordsOfDocument {
            postings[Int(term)].documents.append(doc)
            postings[Int(term)].hits.append(hits)
        }
        return true
    }

    private mutating func termID(_ word: String) -> Int32 {
        if let id = termIDs[word] { return id }
        let id = Int32(termNames.count)
        termIDs[word] = id
        termNames.append(word)
        postings.append(Postings())
        let at = lowerBound(word)
        sortedTerms.insert(id, at: at)
        return id
    }

    /// The first place in `sortedTerms` whose name is not below `word`.
    private func lowerBound(_ word: String) -> Int {
        var low = 0, high = sortedTerms.count
        while low < high {
            let middle = (low + high) / 2
            if termNames[Int(sortedTerms[middle])] < word { low = middle + 1 } else { high = middle }
        }
        return low
    }

    // MARK: - Searching

    struct Hit: Equatable {
        var rowID: Int64
        var score: Double?
        var sortTime: Int64
    }

    struct Answer {
        /// Up to `limit + 1` hits, in result order (one more than a page tells there is a next).
        var hits: [Hit]
        var facets: [String: [String: Int]]
    }

    /// The page and facet counts of a query, as `SQLiteSearchStore.run` computes them in SQL.
    func search(words: [String], query: SearchQuery, cursor: SearchCursor?, limit: Int) -> Answer {
        let documents = rowIDs.count
        let rows = Double(max(liveCount, 1))
        let averageLength = Double(totalTokens) / rows

        // Each word is a prefix: the terms it covers.
        let phrases = words.map { word -> [Int] in
            var terms: [Int] = []
            var index = lowerBound(word)
            while index < sortedTerms.count, termNames[Int(sortedTerms[index])].hasPrefix(word) {
                terms.append(Int(sortedTerms[index]))
                index += 1
            }
            return terms
        }
        // FTS5's IDF: log((N - n + 0.5) / (n + 0.5)), at least 1e-6, n the live documents with the word.
        func idf(_ hit: Int) -> Double {
            let value = log((rows - Double(hit) + 0.5) / (Double(hit) + 0.5))
            return value <= 0 ? 1e-6 : value
        }

        // Visibility and filters as codes; facet counts by combination of counted values.
        let visibility = VisibilityCodes(query.visibility, teams: teamValues)
        var counting = FacetCounts(schema: schema, filters: query.filters)
        let facetCount = schema.facetFields.count
        let fieldIndex = Dictionary(uniqueKeysWithValues: schema.facetFields.enumerated().map { ($1, $0) })
        func code(_ field: Int, _ value: String) -> UInt16? {
            let code = facetValues[field].lookup(value)
            return code <= 0xFFFF ? UInt16(code) : nil
        }
        // Filters on uncounted fields; a value no document holds matches nothing.
        let inQuery = counting.filtersInQuery.map { (field: fieldIndex[$0.field]!, code: code(fieldIndex[$0.field]!, $0.value)) }
        let countedFilters = query.filters.filter { counting.counted.contains($0.key) }
            .map { (position: counting.counted.firstIndex(of: $0.key)!, code: code(fieldIndex[$0.key]!, $0.value)) }
        // Which combinations pass the filters on counted fields (the page's filters).
        let passes = combinationCodes.map { codes in countedFilters.allSatisfy { codes[$0.position] == $0.code } }
        let combinationCounts = [Int](repeating: 0, count: combinationCodes.count)
        let unmatchable = inQuery.contains { $0.code == nil }

        var scan = Scan(
            visibility: visibility, inQuery: inQuery.map { ($0.field, $0.code ?? 0) }, facetCount: facetCount, passes: passes,
            cursor: cursor, counts: combinationCounts, page: TopHits(limit: limit + 1, ranked: !words.isEmpty),
            access: access, combinations: combinations, facetCodes: facetCodes, rowIDs: rowIDs, sortTimes: sortTimes)
        let k1 = 1.2, b = 0.75

        // FTS5's bm25() for one phrase's weighted frequency `f` in a document of `length` tokens.
        @inline(__always) func term(_ f: Double, _ length: Int32, _ idf: Double) -> Double {
            idf * ((f * (k1 + 1.0)) / (f + k1 * (1 - b + b * Double(length) / averageLength)))
        }

        if unmatchable || phrases.contains(where: \.isEmpty) {
            // Nothing matches.
        } else if words.isEmpty {
            live.forEach { doc in
                guard scan.admits(doc) else { return }
                let time = sortTimes[doc], rowID = rowIDs[doc]
                if case .recent(let lastTime, let lastID)? = cursor, !(time < lastTime || (time == lastTime && rowID < lastID)) { return }
                scan.page.offer(Hit(rowID: rowID, score: nil, sortTime: time))
            }
        } else if phrases.count == 1, phrases[0].count == 1 {
            // One word of one term (the common query): walk its postings, no per-document arrays.
            let postings = self.postings[phrases[0][0]]
            let weights = self.weights
            var hit = 0
            postings.documents.withUnsafeBufferPointer { documents in
                for doc in documents where live.contains(Int(doc)) { hit += 1 }
            }
            let wordIDF = idf(hit)
            postings.documents.withUnsafeBufferPointer { documents in
                postings.hits.withUnsafeBufferPointer { hits in
                    for index in 0..<documents.count {
                        let doc = Int(documents[index])
                        guard live.contains(doc), scan.admits(doc) else { continue }
                        let f = Postings.frequency(hits[index], weights)
                        let score = -1.0 * (0.0 + term(f, lengths[doc], wordIDF))
                        if !scan.page.rejects(score: score) { scan.offer(doc, score: score) }
                    }
                }
            }
        } else if phrases.count == 1 {
            // One prefix of several terms: walk the merge of their postings.
            let merged = stream(of: phrases[0], documents: documents)
            let wordIDF = idf(merged.documents.count)
            merged.documents.withUnsafeBufferPointer { documents in
                merged.frequencies.withUnsafeBufferPointer { frequencies in
                    for index in 0..<documents.count {
                        let doc = Int(documents[index])
                        guard scan.admits(doc) else { continue }
                        scan.offer(doc, score: -1.0 * (0.0 + term(frequencies[index], lengths[doc], wordIDF)))
                    }
                }
            }
        } else {
            // Several words, or prefixes of several terms: per word the sorted stream of its live
            // documents with their summed frequencies, then their intersection, walked from the
            // shortest stream.
            let streams = phrases.map { stream(of: $0, documents: documents) }
            let idfs = streams.map { idf($0.documents.count) }
            let order = streams.indices.sorted { streams[$0].documents.count < streams[$1].documents.count }
            var positions = [Int](repeating: 0, count: streams.count)
            var frequencies = [Double](repeating: 0, count: streams.count)
            let shortest = streams[order[0]]
            candidates: for (index, doc32) in shortest.documents.enumerated() {
                frequencies[order[0]] = shortest.frequencies[index]
                for other in order.dropFirst() {
                    let documents = streams[other].documents
                    var position = positions[other]
                    // Gallop, then step.
                    var step = 1
                    while position + step < documents.count, documents[position + step] < doc32 { position += step; step *= 2 }
                    while position < documents.count, documents[position] < doc32 { position += 1 }
                    positions[other] = position
                    guard position < documents.count else { break candidates }
                    guard documents[position] == doc32 else { continue candidates }
                    frequencies[other] = streams[other].frequencies[position]
                }
                let doc = Int(doc32)
                guard scan.admits(doc) else { continue }
                var total = 0.0
                for phrase in 0..<streams.count { total += term(frequencies[phrase], lengths[doc], idfs[phrase]) }
                scan.offer(doc, score: -1.0 * total)
            }
        }

        var facets: [String: [String: Int]] = [:]
        if query.facets {
            for (combination, count) in scan.counts.enumerated() where count > 0 {
                let codes = combinationCodes[combination]
                counting.add(values: countedFields.indices.map { facetValues[countedFields[$0]].value(UInt32(codes[$0])) }, count: count)
            }
            facets = counting.counts
        }
        return Answer(hits: scan.page.sorted, facets: facets)
    }

    /// The live documents holding any of `terms`, in order, with their summed frequencies.
    private func stream(of terms: [Int], documents: Int) -> Stream {
        var merged = Stream()
        if terms.count <= 8 {
            // Merge the posting lists one into the other.
            let weights = self.weights
            for term in terms {
                let next = postings[term]
                var result = Stream()
                result.documents.reserveCapacity(merged.documents.count + next.documents.count)
                result.frequencies.reserveCapacity(merged.documents.count + next.documents.count)
                merged.documents.withUnsafeBufferPointer { a in
                    merged.frequencies.withUnsafeBufferPointer { af in
                        next.documents.withUnsafeBufferPointer { b in
                            next.hits.withUnsafeBufferPointer { bh in
                                var i = 0, j = 0
                                while i < a.count || j < b.count {
                                    if j == b.count || (i < a.count && a[i] < b[j]) {
                                        result.documents.append(a[i])
                                        result.frequencies.append(af[i])
                                        i += 1
                                    } else if i == a.count || b[j] < a[i] {
                                        result.documents.append(b[j])
                                        result.frequencies.append(Postings.frequency(bh[j], weights))
                                        j += 1
                                    } else {
                                        result.documents.append(a[i])
                                        result.frequencies.append(af[i] + Postings.frequency(bh[j], weights))
                                        i += 1
                                        j += 1
                                    }
                                }
                            }
                        }
                    }
                }
                merged = result
            }
            // Only the live documents.
            var kept = 0
            for index in 0..<merged.documents.count where live.contains(Int(merged.documents[index])) {
                merged.documents[kept] = merged.documents[index]
                merged.frequencies[kept] = merged.frequencies[index]
                kept += 1
            }
            merged.documents.removeLast(merged.documents.count - kept)
            merged.frequencies.removeLast(merged.frequencies.count - kept)
        } else {
            // Many terms (a short prefix): sum into a dense array.
            var phrase = Bitmap(count: documents)
            var frequency = [Double](repeating: 0, count: documents)
            for term in terms { postings[term].accumulate(into: &frequency, marking: &phrase, weights: weights) }
            phrase.formIntersection(live)
            phrase.forEach { doc in
                merged.documents.append(Int32(doc))
                merged.frequencies.append(frequency[doc])
            }
        }
        return merged
    }

    struct Stream {
        var documents: [Int32] = []
        var frequencies: [Double] = []
    }

    // MARK: - Parts

    /// One query's pass over its candidates: visibility, filters, facet counts and the page.
    struct Scan {
        let visibility: VisibilityCodes
        let inQuery: [(field: Int, code: UInt16)]
        let facetCount: Int
        let passes: [Bool]
        let cursor: SearchCursor?
        var counts: [Int]
        var page: TopHits
        let access: [UInt32]
        let combinations: [UInt32]
        let facetCodes: [UInt16]
        let rowIDs: [Int64]
        let sortTimes: [Int64]

        /// Everything but the score, for one candidate (counting its facets); true when it may go
        /// on the page.
        @inline(__always) mutating func admits(_ doc: Int) -> Bool {
            guard visibility.allows(access[doc]) else { return false }
            if !inQuery.isEmpty {
                let base = doc * facetCount
                for filter in inQuery where facetCodes[base + filter.field] != filter.code { return false }
            }
            let combination = Int(combinations[doc])
            counts[combination] += 1
            return passes[combination]
        }

        @inline(__always) mutating func offer(_ doc: Int, score: Double) {
            if page.rejects(score: score) { return }
            let rowID = rowIDs[doc]
            if case .ranked(let lastScore, let lastID, _, _)? = cursor, !(score > lastScore || (score == lastScore && rowID > lastID)) { return }
            page.offer(Hit(rowID: rowID, score: score, sortTime: sortTimes[doc]))
        }
    }

    /// The documents holding one word, in document order, with its hits per field (8 bits each).
    struct Postings {
        var documents: [Int32] = []
        var hits: [UInt32] = []

        /// The weighted frequency of packed hits: FTS5 adds a field's weight once per hit.
        @inline(__always) static func frequency(_ packed: UInt32, _ weights: [Double]) -> Double {
            var f = 0.0
            for field in 0..<weights.count { f += Double((packed >> UInt32(8 * field)) & 0xFF) * weights[field] }
            return f
        }

        func accumulate(into frequency: inout [Double], marking phrase: inout Bitmap, weights: [Double]) {
            documents.withUnsafeBufferPointer { documents in
                hits.withUnsafeBufferPointer { hits in
                    frequency.withUnsafeMutableBufferPointer { frequency in
                        for index in 0..<documents.count {
                            let doc = Int(documents[index])
                            let packed = hits[index]
                            frequency[doc] += Postings.frequency(packed, weights)
                            phrase.set(doc)
                        }
                    }
                }
            }
        }
    }

    /// Distinct values of one field as codes from 1.
    struct ValueCodes {
        private var codes: [String: UInt32] = [:]
        private var values: [String] = []

        var count: Int { values.count }

        mutating func code(_ value: String?) -> UInt32 {
            guard let value else { return 0 }
            if let code = codes[value] { return code }
            values.append(value)
            codes[value] = UInt32(values.count)
            return UInt32(values.count)
        }

        /// The code of `value`, or one that no document holds.
        func lookup(_ value: String) -> UInt32 { codes[value] ?? UInt32.max }

        func value(_ code: UInt32) -> String? { code == 0 ? nil : values[Int(code) - 1] }
    }

    /// `SearchVisibility` with team names turned into codes: per team code, whether its
    /// restricted documents are visible at any clearance or up to `clearance`.
    struct VisibilityCodes {
        var everything = false
        var anyClearance: [Bool]
        var withClearance: [Bool]
        var clearance = 0

        init(_ visibility: SearchVisibility, teams: ValueCodes) {
            anyClearance = [Bool](repeating: false, count: teams.count + 1)
            withClearance = anyClearance
            func mark(_ names: [String], _ flags: inout [Bool]) {
                for name in names {
                    let code = Int(teams.lookup(name))
                    if code < flags.count { flags[code] = true }
                }
            }
            switch visibility {
            case .everything: everything = true
            case .unrestrictedAndTeams(let names): mark(names, &anyClearance)
            case .scoped(let names, let clearance, let supervised):
                mark(supervised, &anyClearance)
                mark(names, &withClearance)
                self.clearance = clearance
            }
        }

        /// Whether a document of `access` (see `SearchMemoryIndex.access`) is visible.
        @inline(__always)
        func allows(_ access: UInt32) -> Bool {
            if everything || access & (1 << 16) == 0 { return true }
            let team = Int(access & 0xFFFF)
            return anyClearance[team] || (withClearance[team] && Int(access >> 17) <= clearance)
        }
    }

    /// The best `limit` hits seen: by score then row id (ranked), or newest first.
    struct TopHits {
        let limit: Int
        let ranked: Bool
        private(set) var sorted: [Hit] = []

        init(limit: Int, ranked: Bool) {
            self.limit = limit
            self.ranked = ranked
            sorted.reserveCapacity(limit + 1)
        }

        func before(_ a: Hit, _ b: Hit) -> Bool {
            if ranked {
                let x = a.score!, y = b.score!
                return x < y || (x == y && a.rowID < b.rowID)
            }
            return a.sortTime > b.sortTime || (a.sortTime == b.sortTime && a.rowID > b.rowID)
        }

        /// The score of the last hit of a full ranked page (anything worse is not on it).
        private(set) var worst = Double.infinity

        /// Whether a hit of `score` is certainly not on the page (ranked pages only).
        @inline(__always) func rejects(score: Double) -> Bool { score > worst }

        mutating func offer(_ hit: Hit) {
            if sorted.count == limit, let last = sorted.last, !before(hit, last) { return }
            var low = 0, high = sorted.count
            while low < high {
                let middle = (low + high) / 2
                if before(sorted[middle], hit) { low = middle + 1 } else { high = middle }
            }
            sorted.insert(hit, at: low)
            if sorted.count > limit { sorted.removeLast() }
            if ranked, sorted.count == limit { worst = sorted[limit - 1].score! }
        }
    }
}

/// A set of small integers as bits.
struct Bitmap: Sendable {
    private(set) var words: [UInt64]

    init(count: Int = 0) { words = [UInt64](repeating: 0, count: (count + 63) / 64) }

    mutating func set(_ index: Int) {
        let word = index >> 6
        if word >= words.count { words.append(contentsOf: repeatElement(0, count: word - words.count + 1)) }
        words[word] |= 1 << UInt64(index & 63)
    }

    mutating func clear(_ index: Int) {
        let word = index >> 6
        guard word < words.count else { return }
        words[word] &= ~(1 << UInt64(index & 63))
    }

    func contains(_ index: Int) -> Bool {
        let word = index >> 6
        return word < words.count && words[word] & (1 << UInt64(index & 63)) != 0
    }

    var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    mutating func formIntersection(_ other: Bitmap) {
        let shared = min(words.count, other.words.count)
        words.withUnsafeMutableBufferPointer { mine in
            other.words.withUnsafeBufferPointer { theirs in
                for index in 0..<shared { mine[index] &= theirs[index] }
            }
        }
        if words.count > shared { words.removeLast(words.count - shared) }
    }

    /// Calls `body` with every member, in increasing order.
    func forEach(_ body: (Int) -> Void) {
        for (index, word) in words.enumerated() where word != 0 {
            var bits = word
            while bits != 0 {
                body(index << 6 + bits.trailingZeroBitCount)
                bits &= bits - 1
            }
        }
    }
}
