import Foundation

/// BERT's uncased WordPiece tokenizer, matching the model's `tokenizer.json` (BertNormalizer with
/// clean_text, handle_chinese_chars and lowercase, which implies accent stripping;
/// BertPreTokenizer; WordPiece with `##` continuations and `[UNK]` for a word it cannot cover).
///
/// ```swift
/// let tokenizer = try WordPieceTokenizer(vocabularyPath: "vocab.txt")
/// tokenizer.encode("The weather is lovely today.")  // [101, 1996, 4633, 2003, 8403, 2651, 1012, 102]
/// ```
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: [String: Int32]
    public let maxLength: Int
    public let unknown: Int32
    public let classifier: Int32
    public let separator: Int32
    public let padding: Int32
    private let maxCharactersPerWord = 100

    /// - Parameter maxLength: tokens per input including `[CLS]` and `[SEP]` (the model's `max_seq_length`).
    /// - Throws: `EmbeddingError` when the file is missing or lacks the special tokens.
    public init(vocabularyPath: String, maxLength: Int = 256) throws(EmbeddingError) {
        guard let text = try? String(contentsOfFile: vocabularyPath, encoding: .utf8) else { throw .modelMissing(vocabularyPath) }
        var vocabulary: [String: Int32] = [:]
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let token = line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
            if !token.isEmpty && vocabulary[token] == nil { vocabulary[token] = Int32(index) }
        }
        try self.init(vocabulary: vocabulary, maxLength: maxLength)
    }

    public init(vocabulary: [String: Int32], maxLength: Int = 256) throws(EmbeddingError) {
        func special(_ token: String) throws(EmbeddingError) -> Int32 {
            guard let id = vocabulary[token] else { throw EmbeddingError(code: .vocabulary, message: "the vocabulary has no \(token) token") }
            return id
        }
        self.vocabulary = vocabulary
        self.maxLength = max(2, maxLength)
        self.unknown = try special("[UNK]")
        self.classifier = try special("[CLS]")
        self.separator = try special("[SEP]")
        self.padding = try special("[PAD]")
    }

    /// The token ids of `text`: `[CLS]`, the word pieces (truncated to fit), `[SEP]`.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = [classifier]
        let budget = maxLength - 2
        outer: for word in Self.words(Self.normalize(text)) {
            for piece in pieces(of: word) {
                if ids.count - 1 >= budget { break outer }
                ids.append(piece)
            }
        }
        ids.append(separator)
        return ids
    }

    /// The word pieces of `text` as strings, for inspection.
    public func tokens(_ text: String) -> [String] {
        let names = Dictionary(vocabulary.map { ($0.value, $0.key) }, uniquingKeysWith: { first, _ in first })
        return encode(text).map { names[$0] ?? "?" }
    }

    // MARK: - Normalization (BertNormalizer)

    static func normalize(_ text: String) -> [Unicode.Scalar] {
        var cleaned: [Unicode.Scalar] = []
        cleaned.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || isControl(scalar) { continue }
            if isWhitespace(scalar) {
                cleaned.append(" ")
            } else if isChinese(scalar) {
                cleaned.append(" ")
                cleaned.append(scalar)
                cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        // Accent stripping (NFD, drop non-spacing marks), then lower-casing.
        var view = String.UnicodeScalarView()
        view.append(contentsOf: cleaned)
        let decomposed = String(view).decomposedStringWithCanonicalMapping
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(decomposed.unicodeScalars.count)
        for scalar in decomposed.unicodeScalars where scalar.properties.generalCategory != .nonspacingMark {
            if scalar.isASCII {
                result.append(scalar.value >= 65 && scalar.value <= 90 ? Unicode.Scalar(scalar.value + 32)! : scalar)
            } else {
                result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return result
    }

    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case " ", "\t", "\n", "\r": true
        default: scalar.properties.generalCategory == .spaceSeparator
        }
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "\t", "\n", "\r": return false
        default:
            switch scalar.properties.generalCategory {
            case .control, .format, .unassigned, .privateUse: return true
            default: return false
            }
        }
    }

    static func isChinese(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F, 0x2B820...0x2CEAF,
             0xF900...0xFAFF, 0x2F800...0x2FA1F:
            true
        default:
            false
        }
    }

    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            let value = scalar.value
            return (33...47).contains(value) || (58...64).contains(value) || (91...96).contains(value) || (123...126).contains(value)
        }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation, .finalPunctuation,
             .otherPunctuation:
            return true
        default:
            return false
        }
    }

    // MARK: - Pre-tokenization (BertPreTokenizer)

    /// Splits on whitespace, and makes each punctuation character a word of its own.
    static func words(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for scalar in scalars {
            if scalar.properties.isWhitespace {
                if !current.isEmpty { words.append(current); current = [] }
            } else if isPunctuation(scalar) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([scalar])
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    // MARK: - WordPiece

    /// Greedy longest-match-first; a word that cannot be covered is one `[UNK]`.
    func pieces(of word: [Unicode.Scalar]) -> [Int32] {
        if word.count > maxCharactersPerWord { return [unknown] }
        var pieces: [Int32] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32?
            while start < end {
                var view = String.UnicodeScalarView()
                if start > 0 { view.append(contentsOf: "##".unicodeScalars) }
                view.append(contentsOf: word[start..<end])
                if let id = vocabulary[String(view)] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else { return [unknown] }
            pieces.append(id)
            start = end
        }
        return pieces
    }
}
