import Canon
import Foundation
import Testing

/// A timeline entry's details are stored (and digested for drift) as `JSONEncoder` with
/// `.sortedKeys` writes them; they are written directly when every key is ASCII. Both ways must
/// give the same bytes, or entries stored before and after would count as drift.
@Suite("Timeline details as JSON")
struct TimelineDetailsTests {
    /// A small deterministic generator (the same cases on every run).
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 11 | state << 53
        }
    }

    static let keyCharacters = Array("abcxyzABZ019_-./ ")
    static let valueCharacters = Array("abc XYZ 123 / \\ \" é ✓ 🙂 \t\n\r\u{1}\u{1F}\u{7F}'<>&")

    @Test func detailsAreWhatTheEncoderWrites() throws {
        var random = Generator(state: 7)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for round in 0..<2_000 {
            var details: [String: String] = [:]
            for _ in 0..<Int.random(in: 0...6, using: &random) {
                let key = String((0..<Int.random(in: 0...8, using: &random)).map { _ in Self.keyCharacters.randomElement(using: &random)! })
                let value = String((0..<Int.random(in: 0...12, using: &random)).map { _ in Self.valueCharacters.randomElement(using: &random)! })
                details[key] = value
            }
            // Now and then a key that is not ASCII (the encoder's way).
            if round % 50 == 0 { details["clé"] = "valeur" }
            let entry = TimelineEntry(key: "k", position: OutboxPosition(1), at: Date(), kind: "case.x", actor: "ivan", summary: "s", details: details)
            let expected = String(decoding: try encoder.encode(details), as: UTF8.self)
            #expect(entry.detailsJSON == expected)
            #expect(entry.driftDigest == entry.driftDigest(detailsJSON: expected))
        }
    }
}
