import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// An event must describe its rows exactly: a derived store fed only from the outbox has to be
/// able to rebuild what the canonical store holds, timestamps included.
@Suite struct EventPayloadTests {
    /// A clock with a sub-second part, as `Date()` nearly always has.
    static let fractionalNow = Date(timeIntervalSince1970: 1_700_000_000.25)
    /// A clock on a whole second.
    static let wholeNow = Date(timeIntervalSince1970: 1_700_000_000)

    @Test func envelope_occurredAt_keeps_the_command_clock_to_the_microsecond() async throws {
        let fixture = try await Fixture(clock: { Self.fractionalNow })
        let head = try await fixture.store.headPosition()
        let opened = try await fixture.openCase()
        let event = try #require(try await fixture.store.events(after: head, limit: 1).first)
        #expect(event.occurredAt == Self.fractionalNow)
        #expect(try await fixture.currentCase(opened.id).openedAt == Self.fractionalNow)
    }

    @Test func payloads_equal_the_stored_rows_when_the_clock_is_on_a_whole_second() async throws {
        let fixture = try await Fixture(clock: { Self.wholeNow })
        let head = try await fixture.store.headPosition()
        let opened = try await fixture.openCase()
        let added = try await fixture.commands.addEvidence(opened.id, Requests.evidence(), by: People.ivan)
        let events = try await fixture.store.events(after: head, limit: 10)
        #expect(events.map(\.type) == [CaseEvents.caseOpened, CaseEvents.caseEvidenceAdded])
        var openedRow = try await fixture.currentCase(opened.id)
        openedRow.version = 1
        #expect(try events[0].decodePayload(as: Case.self) == openedRow)
        let evidence = try #require(try await fixture.queries.evidence(caseID: opened.id).first)
        #expect(evidence.id == added.id)
        #expect(try events[1].decodePayload(as: Evidence.self) == evidence)
    }

    /// Payload dates keep the rows' microseconds. (Once a bug: the event encoder wrote dates with
    /// `.iso8601`, which drops fractional seconds, so every `opened_at`, `updated_at`,
    /// `sla_due_at`, `added_at` and `created_at` in a payload was truncated to the second and a
    /// projection built from the outbox disagreed with the canonical rows.)
    @Test func payload_timestamps_keep_the_microsecond_precision_of_the_stored_rows() async throws {
        let fixture = try await Fixture(clock: { Self.fractionalNow })
        let head = try await fixture.store.headPosition()
        let opened = try await fixture.openCase()
        _ = try await fixture.commands.addEvidence(opened.id, Requests.evidence(), by: People.ivan)
        let events = try await fixture.store.events(after: head, limit: 10)
        #expect(events.map(\.type) == [CaseEvents.caseOpened, CaseEvents.caseEvidenceAdded])

        let row = try await fixture.currentCase(opened.id)
        let openedPayload = try events[0].decodePayload(as: Case.self)
        #expect(row.openedAt == Self.fractionalNow)
        #expect(openedPayload.openedAt == row.openedAt,
                "payload opened_at \(openedPayload.openedAt.timeIntervalSince1970) vs row \(row.openedAt.timeIntervalSince1970)")
        #expect(openedPayload.slaDueAt == row.slaDueAt,
                "payload sla_due_at \(openedPayload.slaDueAt.timeIntervalSince1970) vs row \(row.slaDueAt.timeIntervalSince1970)")

        let evidence = try #require(try await fixture.queries.evidence(caseID: opened.id).first)
        let evidencePayload = try events[1].decodePayload(as: Evidence.self)
        #expect(evidencePayload.addedAt == evidence.addedAt,
                "payload added_at \(evidencePayload.addedAt.timeIntervalSince1970) vs row \(evidence.addedAt.timeIntervalSince1970)")
    }
}
