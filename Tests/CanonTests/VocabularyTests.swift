import Canon
import Testing

/// `Vocabulary` must collect exactly the distinct words of three letters or more that
/// `SearchText.words` gives, whatever the case, accents and punctuation.
@Suite("Vocabulary")
struct VocabularyTests {
    static func expected(_ texts: [String]) -> Set<String> {
        Set(texts.flatMap { SearchText.words($0).filter { $0.count >= 3 } })
    }

    @Test func collectsTheDistinctWordsSearchTextGivesOnceEach() {
        let texts = [
            "Harbor Health: price-fixing ALLEGATION (2024) at Harbor", "Records show repeated late notifications.",
            "Société Générale · Crédit Agricole", "naïve café owner; NAIVE Cafe", "ab cd 12 123 x1y2", "", "   ...   ",
            "Straße ÉCOLE Ærø", "mixed ASCII and ünïcödé words in one text", "end-of-text",
        ]
        var vocabulary = Vocabulary()
        for text in texts { vocabulary.add(text) }
        #expect(Set(vocabulary.words) == Self.expected(texts))
        #expect(vocabulary.words.count == Set(vocabulary.words).count, "each word once")
        #expect(vocabulary.words.contains("allegation") && vocabulary.words.contains("cafe") && !vocabulary.words.contains("ab"))
    }

    @Test func growsPastItsFirstTableAndMergesWithoutDuplicates() {
        var random = SystemRandomNumberGenerator()
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var texts: [String] = []
        for _ in 0..<2_000 {
            let words = (0..<8).map { _ in String((0..<Int.random(in: 2...9, using: &random)).map { _ in letters.randomElement(using: &random)! }) }
            texts.append(words.joined(separator: Bool.random(using: &random) ? " " : ", "))
        }
        var first = Vocabulary(), second = Vocabulary()
        for (index, text) in texts.enumerated() {
            if index.isMultiple(of: 2) { first.add(text) } else { second.add(text) }
        }
        #expect(first.count > 1_000)
        first.formUnion(second)
        #expect(Set(first.words) == Self.expected(texts))
        #expect(first.words.count == Set(first.words).count)
    }
}
