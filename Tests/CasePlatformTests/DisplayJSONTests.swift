import Canon
@testable import CasePlatform
import Foundation
import Testing

/// The search display is written on every document write by a hand-written JSON writer: it must
/// give exactly `JSONEncoder`'s bytes (documents written before it, and drift digests, compare
/// equal), and read back what either wrote.
@Suite("Search display JSON")
struct DisplayJSONTests {
    static let alphabet: [String] = (0..<0x80).map { String(UnicodeScalar(UInt8($0))) } + ["é", "ß", "\u{2028}", "😀", "漢", "\u{7f}", "\u{85}"]

    static func text(_ random: inout SeededGenerator) -> String {
        String((0..<random.int(0...24)).map { _ in Character(random.pick(alphabet)) })
    }

    static func display(_ random: inout SeededGenerator) -> CaseSearchProjection.Display {
        CaseSearchProjection.Display(
            id: random.uuid(), title: text(&random), status: random.pick(CaseStatus.allCases), sector: random.pick(Sector.allCases),
            region: random.pick(Region.allCases), priority: random.pick(Priority.allCases), team: text(&random),
            assignee: random.chance(0.5) ? text(&random) : nil, restricted: random.chance(0.5), clearance: random.chance(0.8) ? random.int(1...3) : nil,
            parties: (0..<random.int(0...4)).map { _ in text(&random) },
            openedAt: Timestamp.date(microseconds: Int64(random.int(0...2_000_000_000)) * 1_000_000 + Int64(random.int(0...999_999))),
            slaDueAt: Timestamp.date(microseconds: Int64(random.int(0...2_000_000_000)) * 1_000_000), version: Int64(random.int(1...10_000)))
    }

    @Test func theWriterMatchesJSONEncoderByteForByteAndTheReaderReadsBoth() throws {
        var random = SeededGenerator(seed: 2026)
        for _ in 0..<2_000 {
            let display = Self.display(&random)
            let reference = try CaseSearchProjection.encoder.encode(display)
            let fast = display.encoded()
            #expect(fast == reference, "\(String(decoding: fast, as: UTF8.self)) != \(String(decoding: reference, as: UTF8.self))")
            #expect(try CaseSearchProjection.Display.decode(fast) == display)
        }
    }

    @Test(arguments: [0, 7, -1, 10, -10, 1_234_567_890_123, Int64.max, Int64.min])
    func integersAreWrittenAsJSONEncoderWritesThem(_ value: Int64) throws {
        struct Number: Encodable { var n: Int64 }
        var writer = FlatJSONWriter()
        writer.integer("n", value)
        #expect(writer.finish() == (try JSONEncoder().encode(Number(n: value))))
    }

    @Test func anythingTheFlatReaderDoesNotExpectFallsBackToJSONDecoder() throws {
        var random = SeededGenerator(seed: 7)
        let display = Self.display(&random)
        let pretty = JSONEncoder()
        pretty.outputFormatting = [.prettyPrinted, .sortedKeys]
        pretty.dateEncodingStrategy = Timestamp.encodingStrategy
        #expect(try CaseSearchProjection.Display.decode(try pretty.encode(display)) == display)
        #expect(FlatJSON.parse(Data(#"{"a":{"nested":1}}"#.utf8)) == nil)
        #expect(FlatJSON.parse(Data(#"{"a":1.5}"#.utf8)) == nil)
        #expect(FlatJSON.parse(Data(#"{"a":"\ud83d\ude00"}"#.utf8))?["a"] == .string("😀"))
        #expect(throws: DecodingError.self) { try CaseSearchProjection.Display.decode(Data("{}".utf8)) }
    }
}
