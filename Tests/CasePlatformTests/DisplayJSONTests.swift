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

/// Stores keep a case's display without the fields its document holds anyway (the id, title,
/// facets and opening time), and must read back exactly the display the projection made.
@Suite("Display elision")
struct DisplayElisionTests {
    @Test func aCaseDisplayIsStoredWithoutWhatItsDocumentHoldsAndReadBackByteForByte() throws {
        let projection = CaseSearchProjection()
        let elision = DisplayElision(projection.schema)
        var random = SeededGenerator(seed: 31)
        var elided = 0
        for _ in 0..<2_000 {
            // Random text: quotes, slashes, control characters and non-ASCII, which JSON escapes.
            let document = try projection.document(DisplayJSONTests.display(&random), summary: DisplayJSONTests.text(&random))
            let stored = elision.stored(document.display, of: document)
            #expect(elision.restored(stored, of: document) == document.display, "\(String(decoding: stored, as: UTF8.self))")
            if stored.first == 0x01 {
                elided += 1
                #expect(stored.count < document.display.count)
            }
        }
        // Every display leaves out at least its id, status, sector, region, priority and opening time.
        #expect(elided == 2_000)
    }

    @Test func aPlainCaseDisplayKeepsOnlyWhatNoColumnHolds() throws {
        let projection = CaseSearchProjection()
        let display = CaseSearchProjection.Display(
            id: "c-1", title: "Harbor Health: price fixing", status: .triage, sector: .retail, region: .east, priority: .critical,
            team: "financial-crime", assignee: nil, restricted: false, clearance: 1, parties: ["Harbor Health"],
            openedAt: Timestamp.date(microseconds: 1_795_736_348_780_313), slaDueAt: Timestamp.date(microseconds: 1_796_168_348_780_313), version: 3)
        let document = try projection.document(display, summary: "Records show repeated late notifications.")
        let stored = DisplayElision(projection.schema).stored(document.display, of: document)
        #expect(String(decoding: stored, as: UTF8.self) == "\u{1}255:" + #"{"clearance":1,"parties":["Harbor Health"],"restricted":false,"sla_due_at":"2026-12-01T23:39:08.780313Z","version":3}"#)
    }

    static let schema = SearchSchema(
        textFields: [.init("title")], facetFields: ["status"],
        displayFields: [.init("id", .key), .init("title", .text("title")), .init("status", .facet("status"))])

    static func document(_ display: String, status: String? = "open") -> SearchDocument {
        SearchDocument(
            key: "k1", text: ["title": "T/1"], facets: status.map { ["status": $0] } ?? [:], team: "t", restricted: false,
            sortTime: Date(timeIntervalSince1970: 0), display: Data(display.utf8))
    }

    @Test(arguments: [
        // Left out: id and status (bits 1 and 4); the title holds a slash, which JSON may escape or not.
        (#"{"id":"k1","n":2,"status":"open","title":"T\/1"}"#, "\u{1}5:" + #"{"n":2,"title":"T\/1"}"#),
        (#"{"id":"k1","status":"open"}"#, "\u{1}5:{}"),
        (#"{"id":"k2","status":"open"}"#, "\u{1}4:" + #"{"id":"k2"}"#),
        // Stored as given: not compact, keys out of order or repeated, not an object, no field left out.
        (#"{ "id":"k1","status":"open"}"#, #"{ "id":"k1","status":"open"}"#),
        (#"{"status":"open","id":"k1"}"#, #"{"status":"open","id":"k1"}"#),
        (#"{"id":"k1","id":"k1"}"#, #"{"id":"k1","id":"k1"}"#),
        ("plain text", "plain text"),
        (#"{"n":1}"#, #"{"n":1}"#),
        ("", ""),
        // A display that begins with the marker itself is marked as stored whole.
        ("\u{1}5:{}", "\u{1}0:\u{1}5:{}"),
    ])
    func eachDisplayIsStoredExactlyAsItCanBeReadBack(display: String, expected: String) {
        let elision = DisplayElision(Self.schema)
        let document = Self.document(display)
        let stored = elision.stored(document.display, of: document)
        #expect(String(decoding: stored, as: UTF8.self) == expected)
        #expect(String(decoding: elision.restored(stored, of: document), as: UTF8.self) == display)
    }

    @Test func aStoredDisplayReadWithOtherPartsShowsThemAndAMalformedOneReadsAsStored() {
        let elision = DisplayElision(Self.schema)
        let stored = elision.stored(Data(#"{"id":"k1","status":"open"}"#.utf8), of: Self.document(""))
        // The parts changed behind the store's back show in the display (and so in its digest).
        #expect(String(decoding: elision.restored(stored, of: Self.document("", status: "closed")), as: UTF8.self) == #"{"id":"k1","status":"closed"}"#)
        #expect(String(decoding: elision.restored(stored, of: Self.document("", status: nil)), as: UTF8.self) == #"{"id":"k1"}"#)
        for malformed in ["\u{1}", "\u{1}5", "\u{1}x:{}", "\u{1}99999999999999999999999:{}", "\u{1}5:{broken"] {
            #expect(String(decoding: elision.restored(Data(malformed.utf8), of: Self.document("")), as: UTF8.self) != #"{"id":"k1","status":"open"}"#)
        }
    }
}
