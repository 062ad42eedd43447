import Canon
@testable import CasePlatform
import Foundation
import Testing

/// Projections read the hot payloads with the flat JSON reader instead of `JSONDecoder`: for
/// every payload the encoder writes, both must give the same value; for anything else the flat
/// reader must step aside, so the decoder gives the same value or the same typed error.
@Suite("Flat payload decoding")
struct FlatPayloadTests {
    /// The payload the outbox stores for `value` (the event encoder, sorted keys).
    static func encode(_ value: some Encodable) throws -> Data {
        try PendingEvent(streamID: StreamID("case-x"), type: "t", encoding: value, occurredAt: Date()).payload
    }

    /// `JSONDecoder` with the outbox's date strategy.
    static var decoder: JSONDecoder { CaseSearchProjection.decoder }

    static func text(_ random: inout SeededGenerator) -> String { DisplayJSONTests.text(&random) }

    static func date(_ random: inout SeededGenerator) -> Date {
        Timestamp.date(microseconds: Int64(random.int(0...2_000_000_000)) * 1_000_000 + (random.chance(0.5) ? Int64(random.int(0...999_999)) : 0))
    }

    static func event(_ payload: Data) -> EventEnvelope {
        EventEnvelope(
            position: OutboxPosition(1), streamID: StreamID("case-x"), streamVersion: 1, type: "t", schemaVersion: 1, payload: payload,
            actor: "ivan", correlationID: nil, causationID: nil, occurredAt: Date(), committedAt: Date(), priority: false)
    }

    /// `JSONEncoder` set up as the outbox's event encoder: what a `FlatEncodable` payload's
    /// writer must match byte for byte (events written before it, and drift digests, compare
    /// equal).
    static var reference: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = Timestamp.encodingStrategy
        return encoder
    }

    /// Encodes `value` (as `JSONEncoder` would, byte for byte), then checks the flat reader takes
    /// it and agrees with `JSONDecoder`.
    static func check<T: FlatDecodable & Encodable & Equatable>(_ value: T) throws {
        let payload = try encode(value)
        let expected = try reference.encode(value)
        #expect(payload == expected, "\(String(decoding: payload, as: UTF8.self)) != \(String(decoding: expected, as: UTF8.self))")
        let flat = try #require(FlatObject(payload).flatMap(T.init(flat:)), "the flat reader refused \(String(decoding: payload, as: UTF8.self))")
        #expect(flat == (try decoder.decode(T.self, from: payload)))
        #expect(flat == value)
        #expect(try event(payload).decodePayload(as: T.self) == value)
    }

    @Test func theHotPayloadsAreWrittenByTheFlatWriter() {
        #expect(Case.self is any FlatEncodable.Type && CaseEvents.StatusChanged.self is any FlatEncodable.Type)
    }

    @Test func everyHotPayloadReadsTheSameThroughBothReaders() throws {
        var random = SeededGenerator(seed: 11)
        for _ in 0..<1_000 {
            try Self.check(Case(
                id: random.uuid(), title: Self.text(&random), summary: Self.text(&random), sector: random.pick(Sector.allCases),
                region: random.pick(Region.allCases), priority: random.pick(Priority.allCases), status: random.pick(CaseStatus.allCases),
                team: Self.text(&random), assignee: random.chance(0.5) ? Self.text(&random) : nil, restricted: random.chance(0.5),
                clearance: random.int(1...3), slaDueAt: Self.date(&random), version: Int64(random.int(1...100_000)), openedAt: Self.date(&random),
                openedBy: Self.text(&random), updatedAt: Self.date(&random)))
            try Self.check(CaseEvents.StatusChanged(
                caseID: random.uuid(), from: random.pick(CaseStatus.allCases), to: random.pick(CaseStatus.allCases), reason: Self.text(&random),
                unassigned: random.chance(0.5) ? Self.text(&random) : nil))
            try Self.check(CaseEvents.Assigned(
                caseID: random.uuid(), investigator: Self.text(&random), previous: random.chance(0.5) ? Self.text(&random) : nil))
            try Self.check(CaseEvents.RestrictionChanged(
                caseID: random.uuid(), restricted: random.chance(0.5), reason: Self.text(&random), clearance: random.chance(0.5) ? random.int(1...3) : nil))
            try Self.check(CaseEvents.TeamChanged(caseID: random.uuid(), from: Self.text(&random), to: Self.text(&random), reason: Self.text(&random)))
            try Self.check(CaseEvents.PartyLinked(
                caseID: random.uuid(), partyID: random.uuid(), role: random.pick(PartyRole.allCases), partyKind: random.pick(PartyKind.allCases),
                partyName: Self.text(&random)))
        }
    }

    @Test func whatTheFlatReaderDoesNotTakeGoesThroughJSONDecoder() throws {
        // An event written before clearance existed: both readers give clearance 1.
        let old = Data(#"{"assignee":null,"id":"c1","opened_at":"2026-01-01T00:00:00Z","opened_by":"ivan","priority":"low","region":"north","restricted":false,"sector":"energy","sla_due_at":"2026-02-01T00:00:00Z","status":"intake","summary":"","team":"t","title":"T","updated_at":"2026-01-01T00:00:00Z","version":1}"#.utf8)
        #expect(Case(flat: try #require(FlatObject(old)))?.clearance == 1)
        #expect(try Self.event(old).decodePayload(as: Case.self) == (try Self.decoder.decode(Case.self, from: old)))
        // Unknown keys are ignored by both; a nested value is refused by the flat reader, not by JSONDecoder.
        let nested = Data(#"{"case_id":"c1","from":"intake","to":"triage","reason":"r","extra":{"a":[1,2]}}"#.utf8)
        #expect(FlatObject(nested) == nil)
        #expect(try Self.event(nested).decodePayload(as: CaseEvents.StatusChanged.self).to == .triage)
        // A value of the wrong type or an unknown enum case: the flat reader answers nil and the decoder's error is thrown.
        for bad in [#"{"case_id":"c1","from":"intake","to":"nowhere","reason":"r"}"#, #"{"case_id":1,"from":"intake","to":"triage","reason":"r"}"#,
                    #"{"case_id":"c1","from":"intake","reason":"r"}"#, #"{"case_id":"c1","restricted":"yes","reason":"r"}"#] {
            let payload = Data(bad.utf8)
            #expect(FlatObject(payload).flatMap(CaseEvents.StatusChanged.init(flat:)) == nil)
            #expect(throws: DecodingError.self) { try Self.event(payload).decodePayload(as: CaseEvents.StatusChanged.self) }
        }
        #expect(throws: DecodingError.self) {
            try Self.event(Data(#"{"case_id":"c1","restricted":true,"reason":"r","clearance":"high"}"#.utf8)).decodePayload(as: CaseEvents.RestrictionChanged.self)
        }
    }

    /// The request bodies the server reads with the flat reader first: whatever it takes, it reads
    /// as `JSONDecoder` does; whatever else (repeated keys, a wrong type, a missing field, a
    /// nested value, a field the request does not have) it refuses, so the decoder answers.
    @Test func theHotRequestBodiesReadAsJSONDecoderReadsThem() throws {
        func same<T: FlatDecodable & Equatable>(_ body: String, as type: T.Type, flat expected: Bool) {
            same(Data(body.utf8), as: type, flat: expected)
        }
        func same<T: FlatDecodable & Equatable>(_ data: Data, as type: T.Type, flat expected: Bool) {
            let body = String(decoding: data, as: UTF8.self)
            let flat = FlatObject(data, strict: true).flatMap(T.init(flat:))
            #expect((flat != nil) == expected, "\(body)")
            if let flat { #expect(flat == (try? JSONDecoder().decode(T.self, from: data)), "\(body)") }
        }
        var random = SeededGenerator(seed: 12)
        for _ in 0..<500 {
            let open = OpenCaseRequest(
                title: Self.text(&random), summary: Self.text(&random), sector: Self.text(&random), region: Self.text(&random),
                priority: Self.text(&random), team: random.chance(0.5) ? Self.text(&random) : nil)
            same(String(decoding: try JSONEncoder().encode(open), as: UTF8.self), as: OpenCaseRequest.self, flat: true)
            let move = TransitionRequest(to: Self.text(&random), reason: Self.text(&random))
            same(String(decoding: try JSONEncoder().encode(move), as: UTF8.self), as: TransitionRequest.self, flat: true)
        }
        let fields = #""title":"T","summary":"S","sector":"energy","region":"north","priority":"low""#
        same("{\(fields)}", as: OpenCaseRequest.self, flat: true)
        same("{\(fields),\"team\":null}", as: OpenCaseRequest.self, flat: true)
        same(" {\(fields), \"team\" : \"t\\u00e9am\"} \n", as: OpenCaseRequest.self, flat: true)
        // A field the request does not have: refused, so the server's other path names it (422).
        same(" {\(fields), \"team\" : \"t\\u00e9am\", \"unknown\": [\"x\"]} \n", as: OpenCaseRequest.self, flat: false)
        same("{\(fields),\"title\":\"second\"}", as: OpenCaseRequest.self, flat: false)
        same("{\(fields),\"team\":7}", as: OpenCaseRequest.self, flat: false)
        same("{\(fields),\"extra\":{\"a\":1}}", as: OpenCaseRequest.self, flat: false)
        same(#"{"to":"triage"}"#, as: TransitionRequest.self, flat: false)
        same(#"{"to":"triage","reason":"r","to":"closed"}"#, as: TransitionRequest.self, flat: false)
        same(#"{"to":"triage","reason":5}"#, as: TransitionRequest.self, flat: false)
        same(#"{"to":"triage","reason":"r"} trailing"#, as: TransitionRequest.self, flat: false)
        // What JSON does not allow and the decoder refuses: a raw control character inside a
        // string, bytes that are not UTF-8, a leading zero; and bodies of many keys go to the
        // decoder (the check for repeated keys compares every pair).
        same("{\"to\":\"tri\tage\",\"reason\":\"r\"}", as: TransitionRequest.self, flat: false)
        same("{\"to\":\"triage\",\"reason\":\"line\nbreak\"}", as: TransitionRequest.self, flat: false)
        same("{\"to\":\"triage\",\n\t\"reason\":\"r\"}", as: TransitionRequest.self, flat: true)
        same(Data(#"{"to":"triage","reason":"r"#.utf8) + Data([0xC3, 0x28]) + Data(#""}"#.utf8), as: TransitionRequest.self, flat: false)
        same(#"{"to":"triage","reason":"r","n":01}"#, as: TransitionRequest.self, flat: false)
        same(#"{"to":"triage","reason":"r","n":0,"m":-10}"#, as: TransitionRequest.self, flat: false)
        let many = (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        same("{\"to\":\"triage\",\"reason\":\"r\",\(many)}", as: TransitionRequest.self, flat: false)
        #expect((try? JSONDecoder().decode(TransitionRequest.self, from: Data("{\"to\":\"triage\",\"reason\":\"r\",\(many)}".utf8))) != nil)
    }

    @Test func aFlatObjectChecksEveryFieldButDecodesOnlyTheOnesAskedFor() throws {
        // Keys with escapes, values with escapes, spaces, and a repeated key (the last one wins).
        let object = try #require(FlatObject(Data(#" { "a\u0062" : "x\"y" , "n":-12, "t":true, "l":[ "p" , "q\n" ], "a":"first", "a":"last", "z":null } "#.utf8)))
        #expect(object.string("ab") == "x\"y")
        #expect(object.integer("n") == -12)
        #expect(object.bool("t") == true)
        #expect(object.strings("l") == ["p", "q\n"])
        #expect(object.string("a") == "last")
        #expect(object["z"] == .null)
        #expect(object["missing"] == nil && object["a\\u0062"] == nil)
        #expect(try #require(FlatObject(Data("{}".utf8)))["a"] == nil)
        // Keys compare as Swift Strings, as before and as `JSONDecoder` compares them: canonically
        // equivalent spellings are one key (the Kelvin sign is K; é precomposed or not).
        let unicode = try #require(FlatObject(Data(#"{"\u212Aey":1,"caf\u00e9":2,"nai\u0308ve":3,"é":4}"#.utf8)))
        #expect(unicode["Key"] == .integer(1) && unicode["\u{212A}ey"] == .integer(1))
        #expect(unicode["café"] == .integer(2) && unicode["cafe\u{301}"] == .integer(2))
        #expect(unicode["naïve"] == .integer(3))
        #expect(unicode["e\u{301}"] == .integer(4))
        // A field no one asks for is still checked: the object is refused, as `FlatJSON.fields` refuses it.
        for bad in [#"{"a":"b","c":"\x"}"#, #"{"a":"b","c":1.5}"#, #"{"a":"b","c":"open}"#, #"{"a":"b","c":"\ud800"}"#,
                    #"{"a":"b","c":[1]}"#, #"{"a":"b",}"#, #"{"a":"b"} x"#, #"{"a" "b"}"#, #"{"a":tru}"#] {
            #expect(FlatObject(Data(bad.utf8)) == nil, "\(bad)")
            #expect(FlatJSON.fields(Data(bad.utf8)) == nil, "\(bad)")
        }
    }

    /// Says which reader built it.
    struct Probe: FlatDecodable {
        var reader: String
        init(from decoder: any Decoder) throws { reader = "JSONDecoder" }
        init?(flat object: FlatObject) { reader = "flat" }
    }

    @Test func decodePayloadUsesTheFlatReaderWhenItCan() throws {
        #expect(try Self.event(Data(#"{"a":"b"}"#.utf8)).decodePayload(as: Probe.self).reader == "flat")
        #expect(try Self.event(Data(#"{"a":{"b":1}}"#.utf8)).decodePayload(as: Probe.self).reader == "JSONDecoder")
    }
}
