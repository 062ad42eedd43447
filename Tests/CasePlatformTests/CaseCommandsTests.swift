import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// The commands' effects and their input validation, on a real SQLite store.
@Suite struct CaseCommandsTests {
    // MARK: - Effects

    @Test func openCase_writes_the_case_its_opening_history_entry_and_a_case_opened_event() async throws {
        let fixture = try await Fixture()
        let before = try await fixture.snapshot()
        let outcome = try await fixture.commands.openCase(Requests.openCase(priority: "critical"), by: People.ivan, correlationID: "req-1")
        #expect(outcome.version == 1)
        #expect(outcome.status == .intake)
        #expect(outcome.position == before.head.next)

        let opened = try await fixture.currentCase(outcome.id)
        #expect(opened.title == "Northwind Capital: misleading tariffs")
        #expect(opened.sector == .banking && opened.region == .north && opened.priority == .critical)
        #expect(opened.team == "financial-crime")
        #expect(opened.openedBy == "ivan")
        #expect(opened.assignee == nil && !opened.restricted)
        #expect(opened.slaDueAt.timeIntervalSince(opened.openedAt) == 5 * 86_400)

        let history = try await fixture.queries.history(caseID: outcome.id)
        #expect(history.count == 1)
        #expect(history.first?.from == nil && history.first?.to == .intake && history.first?.caseVersion == 1)

        let events = try await fixture.store.events(after: before.head, limit: 10)
        #expect(events.map(\.type) == [CaseEvents.caseOpened])
        #expect(events.first?.streamID == Case.streamID(outcome.id))
        #expect(events.first?.streamVersion == 1)
        #expect(events.first?.correlationID == "req-1")
        #expect(events.first?.actor == "ivan")
        // Timestamps in payloads are compared in EventPayloadTests; here, every other field.
        var payload = try #require(events.first).decodePayload(as: Case.self)
        payload.openedAt = opened.openedAt
        payload.updatedAt = opened.updatedAt
        payload.slaDueAt = opened.slaDueAt
        #expect(payload == opened)
    }

    @Test func openCase_trims_the_title_and_uses_an_explicit_team() async throws {
        let fixture = try await Fixture()
        let outcome = try await fixture.commands.openCase(Requests.openCase(title: "  Spaced title \n", team: "market-integrity"), by: People.ada)
        let opened = try await fixture.currentCase(outcome.id)
        #expect(opened.title == "Spaced title")
        #expect(opened.team == "market-integrity")
    }

    /// New aggregates get time-ordered ids (UUID version 7), so each lands at the end of its
    /// table's key index and of every derived store's, instead of anywhere in it.
    @Test func cases_parties_and_evidence_get_ids_in_the_order_they_were_made() async throws {
        let fixture = try await Fixture()
        var ids: [String] = []
        for index in 0..<20 {
            let opened = try await fixture.openCase(title: "Case \(index): misleading tariffs")
            let party = try await fixture.commands.registerParty(RegisterPartyRequest(kind: "person", name: "Party \(index)"), by: People.ivan)
            let evidence = try await fixture.commands.addEvidence(opened.id, Requests.evidence(index), by: People.ivan)
            #expect(try await fixture.queries.evidence(caseID: opened.id).map(\.id) == [evidence.id])
            ids += [opened.id, party.id, evidence.id]
        }
        #expect(ids == ids.sorted())
        #expect(ids.allSatisfy { TimeOrderedID.time(of: $0) != nil })
    }

    @Test func addEvidence_stores_metadata_bumps_the_case_version_and_emits_an_event() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let before = try await fixture.snapshot()
        let upper = Requests.digest(7).uppercased()
        let outcome = try await fixture.commands.addEvidence(opened.id, Requests.evidence(7, mediaType: "Application/PDF", sha256: upper), by: People.ivan)
        #expect(outcome.version == 2)
        #expect(outcome.position == before.head.next)

        let evidence = try await fixture.queries.evidence(caseID: opened.id)
        #expect(evidence.count == 1)
        let item = try #require(evidence.first)
        #expect(item.id == outcome.id)
        #expect(item.sha256 == Requests.digest(7))
        #expect(item.mediaType == "application/pdf")
        #expect(item.sizeBytes == 12_345)
        #expect(item.addedBy == "ivan")
        #expect(try await fixture.currentCase(opened.id).version == 2)

        let events = try await fixture.store.events(after: before.head, limit: 10)
        #expect(events.map(\.type) == [CaseEvents.caseEvidenceAdded])
        #expect(events.first?.streamVersion == 2)
        var payload = try #require(events.first).decodePayload(as: Evidence.self)
        payload.addedAt = item.addedAt
        #expect(payload == item)
    }

    @Test func registerParty_and_linkParty_record_the_party_and_its_link() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let party = try await fixture.commands.registerParty(
            RegisterPartyRequest(kind: "person", name: "Elena Dubois", email: "elena@example.org", nationalID: "NI-1234"), by: People.ivan)
        let stored = try #require(try await fixture.queries.party(party.id))
        #expect(stored.name == "Elena Dubois" && stored.email == "elena@example.org" && stored.nationalID == "NI-1234")
        #expect(try await fixture.store.streamVersion(Party.streamID(party.id)) == 1)

        let before = try await fixture.snapshot()
        let linked = try await fixture.commands.linkParty(opened.id, LinkPartyRequest(partyID: party.id, role: "witness"), by: People.ivan)
        #expect(linked.id == opened.id)
        #expect(linked.version == 2)
        let links = try await fixture.queries.partyLinks(caseID: opened.id)
        #expect(links.map(\.partyID) == [party.id])
        #expect(links.map(\.role) == [.witness])
        let events = try await fixture.store.events(after: before.head, limit: 10)
        #expect(events.map(\.type) == [CaseEvents.casePartyLinked])
        let payload = try #require(events.first).decodePayload(as: CaseEvents.PartyLinked.self)
        #expect(payload.partyID == party.id && payload.partyName == "Elena Dubois" && payload.partyKind == .person)

        let afterLink = try await fixture.snapshot()
        await expectDomainError(.conflict) {
            _ = try await fixture.commands.linkParty(opened.id, LinkPartyRequest(partyID: party.id, role: "witness"), by: People.ivan)
        }
        #expect(try await fixture.snapshot() == afterLink)
    }

    @Test func assign_sets_the_assignee_and_emits_case_assigned_with_the_previous_one() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        _ = try await fixture.commands.assign(opened.id, AssignmentRequest(investigator: "ivan"), by: People.sam)
        let before = try await fixture.snapshot()
        let outcome = try await fixture.commands.assign(opened.id, AssignmentRequest(investigator: "iris"), by: People.sam)
        #expect(outcome.version == 3)
        #expect(try await fixture.currentCase(opened.id).assignee == "iris")
        let event = try #require(try await fixture.store.events(after: before.head, limit: 10).first)
        #expect(event.type == CaseEvents.caseAssigned)
        let payload = try event.decodePayload(as: CaseEvents.Assigned.self)
        #expect(payload.investigator == "iris" && payload.previous == "ivan")

        await expectDomainError(.conflict) {
            _ = try await fixture.commands.assign(opened.id, AssignmentRequest(investigator: "iris"), by: People.sam)
        }
    }

    @Test func commands_on_a_closed_case_that_must_not_change_it_are_conflicts() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        try await fixture.advance(opened.id, to: .closed)
        let before = try await fixture.snapshot()
        await expectDomainError(.conflict) {
            _ = try await fixture.commands.addEvidence(opened.id, Requests.evidence(), by: People.ivan)
        }
        await expectDomainError(.conflict) {
            _ = try await fixture.commands.assign(opened.id, AssignmentRequest(investigator: "ivan"), by: People.sam)
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test func commands_on_an_unknown_case_are_notFound() async throws {
        let fixture = try await Fixture()
        let before = try await fixture.snapshot()
        for id in ["00000000-0000-4000-8000-00000000dead", "not-a-uuid"] {
            await expectDomainError(.notFound) {
                _ = try await fixture.commands.transition(id, TransitionRequest(to: "triage", reason: "x"), by: People.ivan)
            }
            await expectDomainError(.notFound) {
                _ = try await fixture.commands.addEvidence(id, Requests.evidence(), by: People.ivan)
            }
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test func registering_a_user_twice_is_a_conflict() async throws {
        let fixture = try await Fixture()
        let before = try await fixture.snapshot()
        await expectDomainError(.conflict) { _ = try await fixture.commands.registerUser(People.ivan) }
        #expect(try await fixture.snapshot() == before)
        #expect(before.users.count == People.all.count)
        #expect(before.events.filter { $0.type == CaseEvents.userRegistered }.count == People.all.count)
    }

    // MARK: - The principal at commit

    /// A principal's rights as the caller holds them may be older than the store's (a server's
    /// cache, or a change while the command ran): the commit requires the stored row unchanged,
    /// so a command is always decided, in the end, on what the principal holds now.
    @Test func a_stale_principal_never_commits_on_rights_it_no_longer_has() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.commands.openCase(Requests.openCase(), by: People.ivan)
        // Nora is an analyst (read only); a principal that says she investigates is refused on
        // both commit paths, an insert and a change of a case, and nothing is written.
        var staleNora = People.nora
        staleNora.role = .investigator
        let before = try await fixture.snapshot()
        await expectDomainError(.forbidden) { _ = try await fixture.commands.openCase(Requests.openCase(), by: staleNora) }
        await expectDomainError(.forbidden) {
            _ = try await fixture.commands.transition(opened.id, TransitionRequest(to: "triage", reason: "x"), by: staleNora)
        }
        await expectDomainError(.forbidden) { _ = try await fixture.commands.addEvidence(opened.id, Requests.evidence(), by: staleNora) }
        #expect(try await fixture.snapshot() == before)
    }

    @Test func a_stale_principal_is_decided_again_with_the_rights_it_holds_now() async throws {
        let fixture = try await Fixture()
        // Ivan investigates; a principal that says he is an analyst is refused at first, then
        // decided again as he is.
        var staleIvan = People.ivan
        staleIvan.role = .analyst
        let opened = try await fixture.commands.openCase(Requests.openCase(), by: staleIvan)
        let event = try #require(try await fixture.store.events(after: .start, limit: 100).last)
        #expect(event.actor == "ivan" && event.type == CaseEvents.caseOpened && event.position == opened.position)
        // Otto moved teams in the store's eyes long ago: a principal that still says
        // financial-crime opens the case in his team now, consumer-protection.
        var staleOtto = People.otto
        staleOtto.team = "financial-crime"
        let ottos = try await fixture.commands.openCase(Requests.openCase(), by: staleOtto)
        #expect(try await fixture.queries.cases(ids: [ottos.id])[ottos.id]?.team == "consumer-protection")
        // Evidence on a case goes through the same, on the path that changes a case.
        let evidence = try await fixture.commands.addEvidence(opened.id, Requests.evidence(), by: staleIvan)
        #expect(evidence.version == 2)
    }

    @Test func a_principal_who_no_longer_exists_cannot_write() async throws {
        let fixture = try await Fixture()
        let ghost = User(id: "ghost", displayName: "Ghost", role: .investigator, team: "financial-crime", clearance: 3)
        let before = try await fixture.snapshot()
        await expectDomainError(.unauthenticated) { _ = try await fixture.commands.openCase(Requests.openCase(), by: ghost) }
        await expectDomainError(.unauthenticated) {
            _ = try await fixture.commands.registerParty(RegisterPartyRequest(kind: "person", name: "Pat"), by: ghost)
        }
        #expect(try await fixture.snapshot() == before)
    }

    // MARK: - Validation

    struct InvalidOpen: Sendable, CustomTestStringConvertible {
        var request: OpenCaseRequest
        var field: String
        var testDescription: String { "\(field): \(request.title.prefix(20))…" }
    }

    static let invalidOpenRequests: [InvalidOpen] = [
        .init(request: Requests.openCase(sector: "crypto"), field: "sector"),
        .init(request: Requests.openCase(region: "atlantis"), field: "region"),
        .init(request: Requests.openCase(priority: "urgent"), field: "priority"),
        .init(request: Requests.openCase(team: "Financial Crime"), field: "team"),
        .init(request: Requests.openCase(team: ""), field: "team"),
        .init(request: Requests.openCase(title: ""), field: "title"),
        .init(request: Requests.openCase(title: "   \n\t "), field: "title"),
        .init(request: Requests.openCase(title: String(repeating: "x", count: 201)), field: "title"),
        .init(request: Requests.openCase(title: "bell\u{07}"), field: "title"),
        .init(request: Requests.openCase(title: "delete\u{7F}"), field: "title"),
        .init(request: Requests.openCase(title: String(repeating: "é", count: 201)), field: "title"),
    ]

    @Test(arguments: invalidOpenRequests)
    func openCase_with_an_invalid_field_is_invalid_naming_the_field_and_writes_nothing(_ invalid: InvalidOpen) async throws {
        let fixture = try await Fixture()
        let before = try await fixture.snapshot()
        await expectDomainError(.invalid, field: invalid.field) {
            _ = try await fixture.commands.openCase(invalid.request, by: People.ivan)
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test func openCase_title_of_exactly_200_characters_is_accepted() async throws {
        let fixture = try await Fixture()
        let outcome = try await fixture.commands.openCase(Requests.openCase(title: String(repeating: "x", count: 200)), by: People.ivan)
        #expect(try await fixture.currentCase(outcome.id).title.count == 200)
        // Characters, not bytes: 200 letters of two bytes each, and 100 line breaks of two (CRLF).
        let accented = try await fixture.commands.openCase(Requests.openCase(title: String(repeating: "é", count: 200)), by: People.ivan)
        #expect(try await fixture.currentCase(accented.id).title.count == 200)
        let lines = try await fixture.commands.openCase(Requests.openCase(title: "a" + String(repeating: "\r\nb", count: 99) + "!"), by: People.ivan)
        #expect(try await fixture.currentCase(lines.id).title.count == 200)
    }

    @Test func openCase_by_a_user_without_team_and_no_team_given_is_invalid_team() async throws {
        let fixture = try await Fixture()
        let before = try await fixture.snapshot()
        await expectDomainError(.invalid, field: "team") {
            _ = try await fixture.commands.openCase(Requests.openCase(), by: People.ada)
        }
        #expect(try await fixture.snapshot() == before)
    }

    struct InvalidEvidence: Sendable, CustomTestStringConvertible {
        var request: AddEvidenceRequest
        var field: String
        var testDescription: String { field }
    }

    static let invalidEvidenceRequests: [InvalidEvidence] = [
        .init(request: Requests.evidence(sha256: "abc"), field: "sha256"),
        .init(request: Requests.evidence(sha256: String(repeating: "g", count: 64)), field: "sha256"),
        .init(request: Requests.evidence(sha256: String(repeating: "a", count: 65)), field: "sha256"),
        .init(request: Requests.evidence(mediaType: "pdf"), field: "media_type"),
        .init(request: Requests.evidence(mediaType: "application/"), field: "media_type"),
        .init(request: Requests.evidence(mediaType: "application/pdf/x"), field: "media_type"),
        .init(request: Requests.evidence(sizeBytes: -1), field: "size_bytes"),
        .init(request: Requests.evidence(sizeBytes: (1 << 40) + 1), field: "size_bytes"),
        .init(request: AddEvidenceRequest(title: " ", description: "", mediaType: "text/plain", sizeBytes: 1, sha256: Requests.digest(1)),
              field: "title"),
    ]

    @Test(arguments: invalidEvidenceRequests)
    func addEvidence_with_an_invalid_field_is_invalid_naming_the_field_and_writes_nothing(_ invalid: InvalidEvidence) async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let before = try await fixture.snapshot()
        await expectDomainError(.invalid, field: invalid.field) {
            _ = try await fixture.commands.addEvidence(opened.id, invalid.request, by: People.ivan)
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test(arguments: ["not-an-email", "@example.org", "name@localhost", "two@at@example.org", "a b@example.org"])
    func registerParty_with_a_bad_email_is_invalid_email_and_writes_nothing(_ email: String) async throws {
        let fixture = try await Fixture()
        let before = try await fixture.snapshot()
        await expectDomainError(.invalid, field: "email") {
            _ = try await fixture.commands.registerParty(RegisterPartyRequest(kind: "person", name: "Elena", email: email), by: People.ivan)
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test func registerParty_rejects_bad_kind_and_a_national_id_on_an_organisation() async throws {
        let fixture = try await Fixture()
        let before = try await fixture.snapshot()
        await expectDomainError(.invalid, field: "kind") {
            _ = try await fixture.commands.registerParty(RegisterPartyRequest(kind: "robot", name: "R2"), by: People.ivan)
        }
        await expectDomainError(.invalid, field: "national_id") {
            _ = try await fixture.commands.registerParty(RegisterPartyRequest(kind: "organisation", name: "Acme", nationalID: "NI-1"), by: People.ivan)
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test(arguments: ["00000000-0000-4000-8000-0000000000aa", "not-a-party", ""])
    func linkParty_with_an_unknown_party_id_is_invalid_party_id_and_writes_nothing(_ partyID: String) async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let before = try await fixture.snapshot()
        await expectDomainError(.invalid, field: "party_id") {
            _ = try await fixture.commands.linkParty(opened.id, LinkPartyRequest(partyID: partyID, role: "subject"), by: People.ivan)
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test func linkParty_with_an_unknown_role_is_invalid_role_and_writes_nothing() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let party = try await fixture.commands.registerParty(RegisterPartyRequest(kind: "organisation", name: "Acme"), by: People.ivan)
        let before = try await fixture.snapshot()
        await expectDomainError(.invalid, field: "role") {
            _ = try await fixture.commands.linkParty(opened.id, LinkPartyRequest(partyID: party.id, role: "accomplice"), by: People.ivan)
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test func assign_to_an_unknown_investigator_is_invalid_investigator_and_writes_nothing() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let before = try await fixture.snapshot()
        await expectDomainError(.invalid, field: "investigator") {
            _ = try await fixture.commands.assign(opened.id, AssignmentRequest(investigator: "ghost"), by: People.sam)
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test func transition_with_an_empty_reason_or_unknown_status_is_invalid_and_writes_nothing() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let before = try await fixture.snapshot()
        await expectDomainError(.invalid, field: "reason") {
            _ = try await fixture.commands.transition(opened.id, TransitionRequest(to: "triage", reason: "  "), by: People.ivan)
        }
        await expectDomainError(.invalid, field: "to") {
            _ = try await fixture.commands.transition(opened.id, TransitionRequest(to: "Triage", reason: "x"), by: People.ivan)
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test func registerUser_validates_id_team_and_clearance() async throws {
        let fixture = try await Fixture(registerUsers: false)
        let before = try await fixture.snapshot()
        await expectDomainError(.invalid, field: "id") {
            _ = try await fixture.commands.registerUser(User(id: "Bad Id", displayName: "X", role: .legal, team: nil, clearance: 1))
        }
        await expectDomainError(.invalid, field: "team") {
            _ = try await fixture.commands.registerUser(User(id: "x", displayName: "X", role: .investigator, team: nil, clearance: 1))
        }
        await expectDomainError(.invalid, field: "clearance") {
            _ = try await fixture.commands.registerUser(User(id: "x", displayName: "X", role: .legal, team: nil, clearance: 4))
        }
        #expect(try await fixture.snapshot() == before)
        #expect(before.head == .start)
    }
}
