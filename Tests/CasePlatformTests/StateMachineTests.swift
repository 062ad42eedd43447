import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// The case state machine, as pure logic and through the commands on a real SQLite store.
@Suite struct StateMachineTests {
    static let allowed: Set<[CaseStatus]> = [
        [.intake, .triage], [.triage, .investigation], [.investigation, .enforcement], [.enforcement, .closed],
        [.closed, .investigation],
    ]

    // MARK: - Pure logic

    @Test(arguments: CaseStatus.allCases, CaseStatus.allCases)
    func canMove_is_true_exactly_for_the_five_documented_moves(from: CaseStatus, to: CaseStatus) {
        #expect(from.canMove(to: to) == Self.allowed.contains([from, to]))
        #expect(from.allowedNextStatuses.contains(to) == Self.allowed.contains([from, to]))
    }

    @Test func every_status_has_exactly_one_next_status() {
        for status in CaseStatus.allCases {
            #expect(status.allowedNextStatuses.count == 1, "\(status)")
        }
    }

    @Test(arguments: CaseStatus.allCases, CaseStatus.allCases)
    func transition_decision_follows_the_state_machine_without_a_store(from: CaseStatus, to: CaseStatus) throws {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let metadata = CommandMetadata(actor: People.ivan.id)
        var current = try CaseDecisions.openCase(Requests.openCase(), id: "00000000-0000-4000-8000-000000000001", by: People.ivan,
                                                 at: now, metadata: metadata).value
        let path: [CaseStatus] = [.intake, .triage, .investigation, .enforcement, .closed]
        for status in path.dropFirst().prefix(path.firstIndex(of: from)!) {
            current = try CaseDecisions.transition(current, TransitionRequest(to: status.rawValue, reason: "next"), by: People.ivan,
                                                   at: now, metadata: metadata).value
        }
        #expect(current.status == from)
        let request = TransitionRequest(to: to.rawValue, reason: "because")
        if Self.allowed.contains([from, to]) {
            let decision = try CaseDecisions.transition(current, request, by: People.ivan, at: now, metadata: metadata)
            #expect(decision.value.status == to)
            #expect(decision.value.version == current.version + 1)
            #expect(decision.work.expectations == [.init(streamID: current.streamID, expected: .exactly(current.version))])
            #expect(decision.work.events.map(\.type) == [CaseEvents.caseStatusChanged])
            #expect(decision.work.mutations.map(\.table) == ["cases", "case_transitions"])
        } else {
            #expect(throws: DomainError.transitionRefused(from: from, to: to)) {
                try CaseDecisions.transition(current, request, by: People.ivan, at: now, metadata: metadata)
            }
        }
    }

    @Test func transition_decision_rejects_an_unknown_target_status_naming_the_field() throws {
        let now = Date()
        let opened = try CaseDecisions.openCase(Requests.openCase(), id: "00000000-0000-4000-8000-000000000002", by: People.ivan,
                                                at: now, metadata: .system).value
        do {
            _ = try CaseDecisions.transition(opened, TransitionRequest(to: "archived", reason: "x"), by: People.ivan, at: now, metadata: .system)
            Issue.record("an unknown status was accepted")
        } catch {
            #expect(error.code == .invalid)
            #expect(error.field == "to")
        }
    }

    // MARK: - Through CaseCommands on SQLite

    @Test(arguments: CaseStatus.allCases, CaseStatus.allCases)
    func transition_command_commits_allowed_moves_and_refuses_others_writing_nothing(from: CaseStatus, to: CaseStatus) async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        try await fixture.advance(opened.id, to: from)
        let before = try await fixture.snapshot()
        let current = try await fixture.currentCase(opened.id)
        #expect(current.status == from)
        let historyBefore = try await fixture.queries.history(caseID: opened.id)

        let request = TransitionRequest(to: to.rawValue, reason: "reviewed by the team")
        if Self.allowed.contains([from, to]) {
            let outcome = try await fixture.commands.transition(opened.id, request, by: People.ivan)
            #expect(outcome.version == current.version + 1)
            #expect(outcome.status == to)
            #expect(outcome.position == before.head.next)

            let after = try await fixture.currentCase(opened.id)
            #expect(after.status == to)
            #expect(after.version == current.version + 1)

            let history = try await fixture.queries.history(caseID: opened.id)
            #expect(history.count == historyBefore.count + 1)
            let entry = try #require(history.last)
            #expect(entry.from == from)
            #expect(entry.to == to)
            #expect(entry.caseVersion == after.version)
            #expect(entry.actor == People.ivan.id)
            #expect(entry.reason == "reviewed by the team")

            let newEvents = try await fixture.store.events(after: before.head, limit: 10)
            #expect(newEvents.count == 1)
            let event = try #require(newEvents.first)
            #expect(event.type == CaseEvents.caseStatusChanged)
            #expect(event.streamID == Case.streamID(opened.id))
            #expect(event.streamVersion == after.version)
            #expect(event.actor == People.ivan.id)
            let payload = try event.decodePayload(as: CaseEvents.StatusChanged.self)
            #expect(payload.from == from && payload.to == to && payload.caseID == opened.id)
            #expect(try await fixture.store.streamVersion(Case.streamID(opened.id)) == after.version)
        } else {
            await expectDomainError(.transitionRefused) {
                _ = try await fixture.commands.transition(opened.id, request, by: People.ivan)
            }
            let after = try await fixture.snapshot()
            #expect(after == before)
            #expect(after.head == before.head)
            #expect(try await fixture.currentCase(opened.id).version == current.version)
        }
    }

    @Test func reopened_case_can_walk_the_path_again() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        try await fixture.advance(opened.id, to: .closed)
        _ = try await fixture.commands.transition(opened.id, TransitionRequest(to: "investigation", reason: "new evidence"), by: People.ivan)
        try await fixture.advance(opened.id, to: .closed)
        let history = try await fixture.queries.history(caseID: opened.id)
        #expect(history.map(\.to) == [.intake, .triage, .investigation, .enforcement, .closed, .investigation, .enforcement, .closed])
        #expect(history.map(\.caseVersion) == Array(1...8))
        #expect(history.first?.from == nil)
        #expect(try await fixture.currentCase(opened.id).version == 8)
    }
}
