import Canon
import Foundation
import GRDB
import Logging
import Metrics
import Synchronization

/// Whether a search store answers from a memory index (`SearchMemoryIndex`) beside FTS5.
public enum MemoryIndexMode: Sendable, Equatable {
    /// Small stores (up to `inlineLimit` documents) load the index on their first search;
    /// larger ones load it in the background and answer through FTS5 until it is ready.
    case automatic(inlineLimit: Int = 50_000)
    /// Load on the first search, whatever the size (tests).
    case inline
    /// FTS5 only.
    case off
}

/// Holds a store's memory index: loads it, keeps it at the head of the store's change log, and
/// answers a query from it when it can answer exactly as FTS5 would.
///
/// Queries share the index under a read lock; bringing it to a newer head takes the write lock.
/// A query is answered only by an index at exactly its own snapshot's head, so it never sees
/// more or less than the FTS5 tables of the same read transaction.
final class SearchAccelerator: @unchecked Sendable {
    let mode: MemoryIndexMode
    private let schema: SearchSchema
    private let lock = ReadWriteLock()
    /// Guarded by `lock`.
    private var index: SearchMemoryIndex?
    private let state = Mutex(State.idle)
    private let logger = Logger(label: "canon.search-index")

    enum State: Equatable { case idle, loading, ready, unavailable }

    // `canon_search_queries_total` by the path that answered, and the loaded index's size.
    private let memoryQueries: Counter
    private let fts5Queries: Counter
    private let documentsGauge: Gauge
    private let bytesGauge: Gauge

    init(mode: MemoryIndexMode, schema: SearchSchema, store: String) {
        self.mode = mode
        self.schema = schema
        memoryQueries = Counter(label: "canon_search_queries_total", dimensions: [("store", store), ("path", "memory")])
        fts5Queries = Counter(label: "canon_search_queries_total", dimensions: [("store", store), ("path", "fts5")])
        documentsGauge = Gauge(label: "canon_search_memory_index_documents", dimensions: [("store", store)])
        bytesGauge = Gauge(label: "canon_search_memory_index_bytes", dimensions: [("store", store)])
        if mode == .off || SearchMemoryIndex(schema: schema) == nil { state.withLock { $0 = .unavailable } }
    }

    var isReady: Bool { state.withLock { $0 == .ready } }

    /// The index's state in this process, for status.
    var status: AcceleratorStatus {
        let current = state.withLock { $0 }
        let size = self.size
        let shown: AcceleratorStatus.State = switch current {
        case .idle: .idle
        case .loading: .loading
        case .ready: .ready
        case .unavailable: .off
        }
        return AcceleratorStatus(name: "memory-index", state: shown, documents: size?.documents, bytes: size?.bytes)
    }

    /// The loaded index's size: documents and approximate bytes.
    var size: (documents: Int, bytes: Int)? { lock.read { index.map { ($0.liveCount, $0.approximateBytes) } } }

    /// The answer from the index, or nil when FTS5 must answer (index off, loading or behind
    /// this snapshot, or a query it does not answer exactly). Counts the path taken.
    func answer(words: [String], query: SearchQuery, cursor: SearchCursor?, limit: Int, _ db: Database, pool: DatabasePool) throws -> SearchMemoryIndex.Answer? {
        let answer = try memoryAnswer(words: words, query: query, cursor: cursor, limit: limit, db, pool: pool)
        (answer == nil ? fts5Queries : memoryQueries).increment()
        return answer
    }

    private func memoryAnswer(words: [String], query: SearchQuery, cursor: SearchCursor?, limit: Int, _ db: Database, pool: DatabasePool) throws -> SearchMemoryIndex.Answer? {
        let current = state.withLock { $0 }
        guard current != .unavailable, current != .loading else { return nil }
        guard SearchMemoryIndex.answers(words) else { return nil }
        let head = try SearchMemoryIndex.head(db)
        if let answer = lock.read({ () -> SearchMemoryIndex.Answer? in
            guard let index, index.sequence == head else { return nil }
            return index.search(words: words, query: query, cursor: cursor, limit: limit)
        }) {
            return answer
        }
        if current == .idle {
            guard try loadsInline(db) else {
                startLoading(pool)
                return nil
            }
            try load(db)
        } else {
            try lock.write {
                guard index != nil, index!.sequence < head else { return }
                if try index!.refresh(to: head, db) == .reloadNeeded {
                    // Loaded again from scratch; until then FTS5 answers.
                    index = nil
                    state.withLock { $0 = .idle }
                }
            }
            recordSize()
        }
        return lock.read {
            guard let index, index.sequence == head else { return nil }
            return index.search(words: words, query: query, cursor: cursor, limit: limit)
        }
    }

    /// Loads the index now, for `db`'s snapshot (a benchmark waits for this before timing).
    func load(_ db: Database) throws {
        guard var fresh = SearchMemoryIndex(schema: schema) else { return }
        guard try fresh.load(db) else {
            state.withLock { $0 = .unavailable }
            return
        }
        lock.write { index = fresh }
        state.withLock { $0 = .ready }
        recordSize(bytes: true)
    }

    /// Publishes the index's live documents, and its bytes when `bytes` (summing them visits
    /// every word, so only after a load).
    private func recordSize(bytes: Bool = false) {
        if bytes {
            let size = self.size
            documentsGauge.record(size.map { $0.documents } ?? 0)
            bytesGauge.record(size.map { $0.bytes } ?? 0)
        } else {
            documentsGauge.record(lock.read { index?.liveCount ?? 0 })
        }
    }

    private func loadsInline(_ db: Database) throws -> Bool {
        switch mode {
        case .off: return false
        case .inline: return true
        case .automatic(let inlineLimit):
            let documents = try Int.fetchOne(db, sql: "SELECT count(*) FROM docs") ?? 0
            return documents <= inlineLimit
        }
    }

    private func startLoading(_ pool: DatabasePool) {
        let starts = state.withLock { state in
            guard state == .idle else { return false }
            state = .loading
            return true
        }
        guard starts else { return }
        let logger = self.logger
        Task.detached {
            let clock = ContinuousClock()
            let started = clock.now
            do {
                try await BlockingWork.run { try pool.read { db in try self.load(db) } }
                let documents = self.lock.read { self.index?.documentCount ?? 0 }
                logger.info("search memory index loaded", metadata: [
                    "documents": "\(documents)", "elapsed": "\(clock.now - started)"])
            } catch {
                // FTS5 keeps answering; the next search tries again.
                logger.warning("search memory index failed to load", metadata: ["error": "\(error)"])
                self.state.withLock { $0 = .idle }
            }
        }
    }
}

extension SearchMemoryIndex {
    /// Whether the index answers `words` exactly as FTS5 would.
    static func answers(_ words: [String]) -> Bool {
        words.count <= maxPhrases && words.allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } }
    }
}

/// A pthread read-write lock.
final class ReadWriteLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = .allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func read<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    func write<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}

/// Highlighted fragments of a document's text, made for hits the memory index found.
///
/// Like FTS5's `snippet()`: the window of `tokens` words (in any field) holding the most
/// distinct query words, then the most hits; matched words in `<mark>…</mark>`, and `…` where
/// the field's text goes on beyond the window.
enum SearchSnippet {
    static func make(texts: [String], words: [String], tokens: Int = 12) -> String? {
        var best: (score: Int, field: Int, start: Int)?
        var fieldTokens: [[(range: Range<String.Index>, phrase: Int?)]] = []
        for (field, text) in texts.enumerated() {
            let found = Self.tokens(text).map { token -> (range: Range<String.Index>, phrase: Int?) in
                let folded = SearchText.words(String(text[token])).first ?? ""
                return (token, words.firstIndex { folded.hasPrefix($0) })
            }
            fieldTokens.append(found)
            for (index, token) in found.enumerated() where token.phrase != nil {
                let start = max(0, min(index - 2, found.count - tokens))
                let window = found[start..<min(found.count, start + tokens)].compactMap(\.phrase)
                let score = Set(window).count * 1000 + window.count
                if best == nil || score > best!.score { best = (score, field, start) }
            }
        }
        guard let best else { return nil }
        let text = texts[best.field]
        let found = fieldTokens[best.field]
        let end = min(found.count, best.start + tokens)
        var snippet = best.start > 0 ? "…" : ""
        var cursor = found[best.start].range.lowerBound
        for token in found[best.start..<end] {
            snippet += text[cursor..<token.range.lowerBound]
            snippet += token.phrase == nil ? String(text[token.range]) : "<mark>\(text[token.range])</mark>"
            cursor = token.range.upperBound
        }
        if end < found.count { snippet += "…" } else { snippet += text[cursor...] }
        return snippet
    }

    /// The ranges of the words of `text` (runs of letters and digits).
    static func tokens(_ text: String) -> [Range<String.Index>] {
        var ranges: [Range<String.Index>] = []
        var start: String.Index?
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character.isLetter || character.isNumber {
                if start == nil { start = index }
            } else if let open = start {
                ranges.append(open..<index)
                start = nil
            }
            index = text.index(after: index)
        }
        if let open = start { ranges.append(open..<text.endIndex) }
        return ranges
    }
}
