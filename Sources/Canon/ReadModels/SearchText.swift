import Foundation

/// A keyset position in a result list, opaque to clients.
public enum SearchCursor: Equatable, Sendable {
    /// After the hit with this score and id, for these (possibly corrected) words; `asked`: the
    /// words of the query that issued it (a later page must ask the same).
    case ranked(Double, Int64, words: [String]?, asked: [String]? = nil)
    case recent(Int64, Int64)

    public var encoded: String {
        let raw: String
        switch self {
        case .ranked(let score, let id, let words, let asked):
            raw = "r:\(score.bitPattern):\(id):\((words ?? []).joined(separator: " "))\(asked.map { ":" + $0.joined(separator: " ") } ?? "")"
        case .recent(let time, let id): raw = "t:\(time):\(id)"
        }
        return Data(raw.utf8).base64EncodedString()
    }

    public init(encoded: String) throws {
        guard let data = Data(base64Encoded: encoded), let raw = String(data: data, encoding: .utf8) else {
            throw SearchError(field: "cursor", "is not a cursor this server issued")
        }
        let parts = raw.split(separator: ":", maxSplits: 4, omittingEmptySubsequences: false)
        if (4...5).contains(parts.count), parts[0] == "r", let bits = UInt64(parts[1]), let id = Int64(parts[2]) {
            let words = SearchText.words(String(parts[3]))
            // (A cursor issued before `asked` existed has four parts: nothing to compare.)
            let asked = parts.count == 5 ? SearchText.words(String(parts[4])) : nil
            self = .ranked(Double(bitPattern: bits), id, words: words.isEmpty ? nil : words, asked: asked)
        } else if parts.count == 3, parts[0] == "t", let time = Int64(parts[1]), let id = Int64(parts[2]) {
            self = .recent(time, id)
        } else {
            throw SearchError(field: "cursor", "is not a cursor this server issued")
        }
    }
}

/// Word handling shared by indexing and querying.
public enum SearchText {
    /// Lower-cased, accent-folded words of letters and digits, in order.
    public static func words(_ text: String) -> [String] {
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            // The common case, without Foundation's folding: split ASCII bytes on anything that is
            // not a letter or digit, lower-casing as we go.
            var words: [String] = []
            var current: [UInt8] = []
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): current.append(byte)
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): current.append(byte + 32)
                default:
                    if !current.isEmpty {
                        words.append(String(decoding: current, as: UTF8.self))
                        current.removeAll(keepingCapacity: true)
                    }
                }
            }
            if !current.isEmpty { words.append(String(decoding: current, as: UTF8.self)) }
            return words
        }
        let folded = text.folding(options: [.diacriticInsensitive, .caseInsensitive], locale: nil).lowercased()
        return folded.split { !($0.isLetter || $0.isNumber) }.map(String.init)
    }

    public static func trigrams(_ word: String) -> [String] {
        let characters = Array(word)
        guard characters.count >= 3 else { return [] }
        return (0...(characters.count - 3)).map { String(characters[$0..<$0 + 3]) }
    }

    /// Levenshtein distance, giving up (returning `limit + 1`) once it must exceed `limit`.
    public static func editDistance(_ a: String, _ b: String, limit: Int) -> Int {
        let a = Array(a), b = Array(b)
        if abs(a.count - b.count) > limit { return limit + 1 }
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            var rowMinimum = current[0]
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                rowMinimum = min(rowMinimum, current[j])
            }
            if rowMinimum > limit { return limit + 1 }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}


extension SearchText {
    /// `word` replaced by the closest of `candidates` (edit distance 1, or 2 for words of 8
    /// letters or more), or `word` itself when none is that close.
    public static func closest(to word: String, among candidates: [String]) -> String {
        let allowed = word.count >= 8 ? 2 : 1
        var best: (term: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(word, candidate, limit: allowed)
            if distance <= allowed, best == nil || distance < best!.distance { best = (candidate, distance) }
        }
        return best?.term ?? word
    }
}

extension SearchQuery {
    /// `results` with its next cursor stamped with this query's words (`SearchCursor.ranked`'s
    /// `asked`), so that a later page sent with another `q` is refused instead of answered for
    /// the cursor's words. Every engine's `search` returns through it.
    public func stamping(_ results: SearchResults) -> SearchResults {
        guard let encoded = results.nextCursor, case .ranked(let score, let id, let words, _)? = try? SearchCursor(encoded: encoded) else {
            return results
        }
        var stamped = results
        stamped.nextCursor = SearchCursor.ranked(score, id, words: words, asked: SearchText.words(text ?? "")).encoded
        return stamped
    }

    /// The words to match and the decoded cursor, after checking the filters and the cursor
    /// against `schema` (every engine answers the same errors). A cursor of a corrected page
    /// carries the corrected words, so the next page continues the corrected query.
    ///
    /// - Throws: `SearchError` for a filter on an unknown field or a cursor that does not belong
    ///   to this query.
    public func plan(for schema: SearchSchema) throws -> (words: [String], cursor: SearchCursor?) {
        for field in filters.keys where !schema.facetFields.contains(field) {
            throw SearchError(field: field, "cannot filter by \(field); filters: \(schema.facetFields.joined(separator: ", "))")
        }
        let cursor = try self.cursor.map(SearchCursor.init(encoded:))
        var words = SearchText.words(text ?? "")
        switch cursor {
        case .ranked(_, _, let cursorWords, let asked)?:
            guard !words.isEmpty else { throw SearchError(field: "cursor", "belongs to a query with text; repeat the same q with it") }
            if let asked, asked != words {
                throw SearchError(field: "cursor", "belongs to another query (q=\(asked.joined(separator: " "))); repeat the same q with it")
            }
            if let cursorWords { words = cursorWords }
        case .recent?:
            guard words.isEmpty else { throw SearchError(field: "cursor", "belongs to a query without text; repeat the same query with it") }
        case nil:
            break
        }
        return (words, cursor)
    }
}

/// The distinct words of three letters or more of many texts, as `SearchText.words` splits them
/// (what spelling correction draws on), collected without making a String of every word: ASCII
/// text is split and lower-cased byte by byte into an open-addressing table, and only a word not
/// seen yet becomes a String. (A `Set<String>` of every word of every document hashed each with
/// SipHash: a tenth of a catch-up's CPU.)
public struct Vocabulary: Sendable {
    /// The words in the order first seen.
    public private(set) var words: [String] = []
    private var hashes: [UInt64] = []
    /// Index + 1 into `words` (0 is empty); its count is a power of two, at most half full.
    private var slots = [Int32](repeating: 0, count: 64)

    public init() {}

    public var isEmpty: Bool { words.isEmpty }
    public var count: Int { words.count }

    /// Adds the words of `text`.
    public mutating func add(_ text: String) {
        var text = text
        let ascii = text.withUTF8 { utf8 -> Bool in
            for byte in utf8 where byte >= 0x80 { return false }
            var start = 0
            for index in 0...utf8.count {
                let byte = index < utf8.count ? utf8[index] : 0x20
                let wordByte = (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A)
                if wordByte { continue }
                if index - start >= 3 { insert(UnsafeBufferPointer(rebasing: utf8[start..<index])) }
                start = index + 1
            }
            return true
        }
        guard !ascii else { return }
        for word in SearchText.words(text) where word.count >= 3 { insert(word) }
    }

    /// Adds every word of `other`.
    public mutating func formUnion(_ other: Vocabulary) {
        if words.isEmpty {
            self = other
            return
        }
        for word in other.words { insert(word) }
    }

    private static func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte + 32 : byte }

    /// FNV-1a of the lower-cased bytes.
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(lower(byte))) &* 0x0000_0100_0000_01B3 }
        return hash
    }

    /// The slot of the word with `hash` that `equals` accepts, or the empty slot it would take.
    private func probe(_ hash: UInt64, _ equals: (String) -> Bool) -> (slot: Int, found: Bool) {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] != 0 {
            let index = Int(slots[slot] - 1)
            if hashes[index] == hash, equals(words[index]) { return (slot, true) }
            slot = (slot + 1) & mask
        }
        return (slot, false)
    }

    /// An ASCII word, in any case.
    private mutating func insert(_ bytes: UnsafeBufferPointer<UInt8>) {
        let hash = Self.hash(bytes)
        let (slot, found) = probe(hash) { $0.utf8.elementsEqual(bytes.lazy.map(Self.lower)) }
        guard !found else { return }
        let word = String(unsafeUninitializedCapacity: bytes.count) { target in
            for (offset, byte) in bytes.enumerated() { target[offset] = Self.lower(byte) }
            return bytes.count
        }
        append(word, hash: hash, at: slot)
    }

    /// A word as `SearchText.words` gives it (lower-cased already).
    private mutating func insert(_ word: String) {
        var word = word
        let (hash, slot, found) = word.withUTF8 { bytes in
            let hash = Self.hash(bytes)
            let (slot, found) = probe(hash) { $0.utf8.elementsEqual(bytes) }
            return (hash, slot, found)
        }
        if !found { append(word, hash: hash, at: slot) }
    }

    private mutating func append(_ word: String, hash: UInt64, at slot: Int) {
        words.append(word)
        hashes.append(hash)
        slots[slot] = Int32(words.count)
        if words.count * 2 > slots.count { grow() }
    }

    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        for (index, hash) in hashes.enumerated() {
            var slot = Int(truncatingIfNeeded: hash) & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(index + 1)
        }
    }
}
