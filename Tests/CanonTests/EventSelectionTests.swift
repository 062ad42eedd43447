import Canon
import Foundation
import Testing

@Suite("Event selection")
struct EventSelectionTests {
    static func event(_ position: Int64, stream: String, type: String) -> EventEnvelope {
        EventEnvelope(
            position: OutboxPosition(position), streamID: StreamID(stream), streamVersion: 1, type: type, schemaVersion: 1, payload: Data("{}".utf8),
            actor: "a", correlationID: nil, causationID: nil, occurredAt: Date(timeIntervalSince1970: Double(position)),
            committedAt: Date(timeIntervalSince1970: Double(position)), priority: false)
    }

    @Test func aSelectionTestsStringsAndBytesAlike() {
        let selection = EventSelection(streamPrefixes: ["case-", "party-"], types: ["case.opened", "party.registered"])
        let samples = [
            ("case-1", "case.opened", true), ("party-9", "party.registered", true), ("case-1", "case.assigned", false),
            ("user-1", "case.opened", false), ("cas", "case.opened", false), ("case-1", "case.opened.v2", false), ("", "", false),
        ]
        for (stream, type, expected) in samples {
            #expect(selection.includes(stream: stream, type: type) == expected, "\(stream) \(type)")
            let bytes = Array(stream.utf8), typeBytes = Array(type.utf8)
            let viaBytes = bytes.withUnsafeBytes { s in typeBytes.withUnsafeBytes { t in selection.includes(stream: s, type: t) } }
            #expect(viaBytes == expected, "\(stream) \(type) as bytes")
        }
        #expect(EventSelection.all.includes(stream: "anything", type: "at.all") && EventSelection.all.includesAll)
        #expect(!selection.includesAll)
    }

    /// A prefetch cut to a smaller batch ends at an included event whose time it knows; a cut
    /// that would hold no included event keeps the whole range.
    @Test func aRangeIsCutAtItsLastIncludedEventWithinTheLimit() {
        let all = (1...10).map { Self.event($0, stream: [3, 4, 8].contains($0) ? "case-\($0)" : "party-\($0)", type: "t") }
        let range = OutboxRange(all, selecting: EventSelection(streamPrefixes: ["case-"]))
        #expect(range.events.map(\.position.rawValue) == [3, 4, 8] && range.count == 10 && range.through?.position == OutboxPosition(10))

        let cut = range.prefix(6, after: .start)
        #expect(cut.events.map(\.position.rawValue) == [3, 4])
        #expect(cut.through == Checkpoint(position: OutboxPosition(4), committedAt: all[3].committedAt) && cut.count == 6)
        #expect(range.prefix(2, after: .start).events.count == 3, "no included event in the first two: the whole range")
        #expect(range.prefix(10, after: .start).events.count == 3 && range.prefix(10, after: .start).count == 10)

        let whole = OutboxRange(all, selecting: .all).prefix(4, after: .start)
        #expect(whole.events.map(\.position.rawValue) == [1, 2, 3, 4] && whole.through?.position == OutboxPosition(4) && whole.count == 4)
    }

    /// An envelope shares its fields until one copy changes them.
    @Test func envelopesAreValuesThoughTheyShareTheirFields() throws {
        let original = Self.event(1, stream: "case-1", type: "case.opened")
        var copy = original
        #expect(copy == original && copy.hashValue == original.hashValue)
        copy.type = "case.assigned"
        copy.position = OutboxPosition(2)
        #expect(original.type == "case.opened" && original.position == OutboxPosition(1))
        #expect(copy.type == "case.assigned" && copy != original)
        let decoded = try JSONDecoder().decode(EventEnvelope.self, from: JSONEncoder().encode(copy))
        #expect(decoded == copy)
        let keys = try JSONSerialization.jsonObject(with: JSONEncoder().encode(original)) as? [String: Any]
        #expect(Set(keys?.keys ?? [:].keys) == [
            "position", "streamID", "streamVersion", "type", "schemaVersion", "payload", "actor", "occurredAt", "committedAt", "priority",
        ])
    }
}
