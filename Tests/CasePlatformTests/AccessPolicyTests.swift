import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// Who may do what, and who may see a restricted case, enforced by the commands and queries.
@Suite struct AccessPolicyTests {
    // MARK: - Pure policy

    static let expectedRoles: [AccessPolicy.Action: Set<Role>] = [
        .openCase: [.investigator, .supervisor, .admin],
        .transitionCase: [.investigator, .supervisor, .admin],
        .registerParty: [.investigator, .supervisor, .admin],
        .linkParty: [.investigator, .supervisor, .admin],
        .addEvidence: [.investigator, .supervisor, .admin],
        .assignCase: [.supervisor, .admin],
        .restrictCase: [.supervisor, .legal, .admin],
        .generateEnforcementNotice: [.supervisor, .legal, .admin],
        .changeTeam: [.supervisor, .legal, .admin],
        .purgeCase: [.legal, .admin],
        .holdCase: [.legal, .admin],
    ]

    @Test(arguments: AccessPolicy.Action.allCases, Role.allCases)
    func require_allows_exactly_the_documented_roles(action: AccessPolicy.Action, role: Role) throws {
        let principal = User(id: "p", displayName: "P", role: role, team: "financial-crime", clearance: 1)
        let allowed = try #require(Self.expectedRoles[action]).contains(role)
        if allowed {
            #expect(throws: Never.self) { try AccessPolicy.require(principal, may: action) }
        } else {
            #expect(throws: DomainError.self) { try AccessPolicy.require(principal, may: action) }
        }
    }

    @Test func analysts_never_write() {
        for action in AccessPolicy.Action.allCases {
            #expect(!AccessPolicy.roles(allowedTo: action).contains(.analyst), "\(action)")
        }
    }

    // MARK: - Commands

    @Test func analyst_cannot_open_a_case() async throws {
        let fixture = try await Fixture()
        let before = try await fixture.snapshot()
        let error = await expectDomainError(.forbidden) {
            _ = try await fixture.commands.openCase(Requests.openCase(), by: People.nora)
        }
        #expect(error?.message.contains("nora") == true)
        #expect(try await fixture.snapshot() == before)
    }

    @Test func analyst_and_legal_cannot_do_case_work() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let before = try await fixture.snapshot()
        for principal in [People.nora, People.lena] {
            await expectDomainError(.forbidden) {
                _ = try await fixture.commands.transition(opened.id, TransitionRequest(to: "triage", reason: "x"), by: principal)
            }
            await expectDomainError(.forbidden) {
                _ = try await fixture.commands.addEvidence(opened.id, Requests.evidence(), by: principal)
            }
            await expectDomainError(.forbidden) {
                _ = try await fixture.commands.registerParty(RegisterPartyRequest(kind: "organisation", name: "Acme"), by: principal)
            }
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test func investigator_cannot_assign() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let before = try await fixture.snapshot()
        await expectDomainError(.forbidden) {
            _ = try await fixture.commands.assign(opened.id, AssignmentRequest(investigator: "ivan"), by: People.ivan)
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test func investigator_and_analyst_cannot_restrict() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let before = try await fixture.snapshot()
        for principal in [People.ivan, People.nora] {
            await expectDomainError(.forbidden) {
                _ = try await fixture.commands.restrict(opened.id, RestrictionRequest(restricted: true, reason: "x"), by: principal)
            }
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test func supervisor_and_admin_can_assign_a_same_team_investigator() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        _ = try await fixture.commands.assign(opened.id, AssignmentRequest(investigator: "ivan"), by: People.sam)
        #expect(try await fixture.currentCase(opened.id).assignee == "ivan")
        _ = try await fixture.commands.assign(opened.id, AssignmentRequest(investigator: "iris"), by: People.ada)
        #expect(try await fixture.currentCase(opened.id).assignee == "iris")
    }

    /// A restricted case is assigned only to an investigator who may see it: assigned one above
    /// their clearance, they got 404 on their own assignment.
    @Test func a_restricted_case_is_assigned_only_to_an_investigator_cleared_for_it() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        _ = try await fixture.commands.restrict(opened.id, RestrictionRequest(restricted: true, reason: "r", clearance: 2), by: People.lena)
        let before = try await fixture.snapshot()
        await expectDomainError(.invalid, field: "investigator") {
            _ = try await fixture.commands.assign(opened.id, AssignmentRequest(investigator: "iris"), by: People.sam)
        }
        #expect(try await fixture.snapshot() == before)
        _ = try await fixture.commands.assign(opened.id, AssignmentRequest(investigator: "ivan"), by: People.sam)
        #expect(try await fixture.currentCase(opened.id).assignee == "ivan")
    }

    /// Restricting a case above its assignee's clearance unassigns them in the same commit (they
    /// could not open their own assignment); an assignee the restriction leaves in sight keeps it.
    /// The search document and the timeline fold the change to what canonical state says.
    @Test func restricting_a_case_above_its_assignees_clearance_unassigns_them() async throws {
        let fixture = try await Fixture()
        let kept = try await fixture.openCase()
        _ = try await fixture.commands.assign(kept.id, AssignmentRequest(investigator: "ivan"), by: People.sam)
        _ = try await fixture.commands.restrict(kept.id, RestrictionRequest(restricted: true, reason: "r", clearance: 2), by: People.lena)
        #expect(try await fixture.currentCase(kept.id).assignee == "ivan", "ivan is cleared for it")

        let moved = try await fixture.openCase()
        _ = try await fixture.commands.assign(moved.id, AssignmentRequest(investigator: "iris"), by: People.sam)
        let before = try await fixture.snapshot()
        _ = try await fixture.commands.restrict(moved.id, RestrictionRequest(restricted: true, reason: "informant", clearance: 2), by: People.lena)
        let restricted = try await fixture.currentCase(moved.id)
        #expect(restricted.restricted && restricted.assignee == nil)
        let event = try #require(try await fixture.store.events(after: before.head, limit: 10).first)
        #expect(try event.decodePayload(as: CaseEvents.RestrictionChanged.self).unassigned == "iris")
        #expect(FlatObject(event.payload).flatMap(CaseEvents.RestrictionChanged.init(flat:))?.unassigned == "iris", "the flat reader agrees")

        let history = try await fixture.store.events(in: StreamID("case-\(moved.id)"), through: try await fixture.store.headPosition())
        let projection = CaseSearchProjection()
        let document = try #require(try projection.fold(history, into: nil))
        let expected = try await CaseSearchExpectation(source: fixture.store).expectedDigests([moved.id])
        #expect(expected[moved.id] == document.driftDigest(projection.schema), "the document folds to what canonical state says")
        #expect(try CaseTimelineProjection().replay(history).last?.details["unassigned"] == "iris")
    }

    @Test(arguments: ["sam", "nora", "lena", "ada", "otto"])
    func assignment_to_a_non_investigator_or_another_teams_investigator_is_invalid(_ investigator: String) async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let before = try await fixture.snapshot()
        await expectDomainError(.invalid, field: "investigator") {
            _ = try await fixture.commands.assign(opened.id, AssignmentRequest(investigator: investigator), by: People.sam)
        }
        #expect(try await fixture.snapshot() == before)
    }

    @Test func legal_can_restrict_and_the_event_travels_the_priority_path() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        _ = try await fixture.commands.addEvidence(opened.id, Requests.evidence(), by: People.ivan)
        let before = try await fixture.snapshot()
        let outcome = try await fixture.commands.restrict(opened.id, RestrictionRequest(restricted: true, reason: "whistleblower identity"),
                                                         by: People.lena, correlationID: "req-r")
        #expect(outcome.version == 3)
        let restricted = try await fixture.currentCase(opened.id)
        #expect(restricted.restricted)
        #expect(restricted.version == 3)

        let events = try await fixture.store.events(after: before.head, limit: 10)
        #expect(events.count == 1)
        let event = try #require(events.first)
        #expect(event.type == CaseEvents.caseRestrictionChanged)
        #expect(event.priority == true)
        #expect(event.actor == "lena")
        #expect(event.correlationID == "req-r")
        let payload = try event.decodePayload(as: CaseEvents.RestrictionChanged.self)
        #expect(payload.restricted && payload.reason == "whistleblower identity" && payload.caseID == opened.id)
        // Ordinary events are not priority events.
        #expect(before.events.allSatisfy { !$0.priority })
    }

    @Test func restricting_an_already_restricted_case_is_a_conflict_and_writes_nothing() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        _ = try await fixture.commands.restrict(opened.id, RestrictionRequest(restricted: true, reason: "sensitive"), by: People.lena)
        let before = try await fixture.snapshot()
        await expectDomainError(.conflict) {
            _ = try await fixture.commands.restrict(opened.id, RestrictionRequest(restricted: true, reason: "again"), by: People.lena)
        }
        #expect(try await fixture.snapshot() == before)

        // Lifting it is a change, also on the priority path; lifting twice is a conflict.
        _ = try await fixture.commands.restrict(opened.id, RestrictionRequest(restricted: false, reason: "cleared"), by: People.sam)
        #expect(try await fixture.currentCase(opened.id).restricted == false)
        let lifted = try #require(try await fixture.store.events(after: before.head, limit: 10).first)
        #expect(lifted.priority)
        await expectDomainError(.conflict) {
            _ = try await fixture.commands.restrict(opened.id, RestrictionRequest(restricted: false, reason: "again"), by: People.sam)
        }
    }

    // MARK: - Visibility

    @Test func restricted_case_is_invisible_to_other_teams_and_visible_to_its_team_legal_and_admin() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        // Unrestricted: everyone sees it.
        for principal in People.all {
            #expect(try await fixture.queries.caseIfVisible(opened.id, to: principal) != nil, "\(principal.id)")
        }
        _ = try await fixture.commands.restrict(opened.id, RestrictionRequest(restricted: true, reason: "sensitive"), by: People.lena)

        for principal in [People.otto, People.sue] {
            #expect(try await fixture.queries.caseIfVisible(opened.id, to: principal) == nil, "\(principal.id) should not see it")
        }
        for principal in [People.ivan, People.iris, People.sam, People.nora, People.lena, People.ada] {
            let seen = try await fixture.queries.caseIfVisible(opened.id, to: principal)
            #expect(seen?.id == opened.id, "\(principal.id) should see it")
            #expect(seen?.restricted == true)
        }
    }

    @Test func commands_on_a_restricted_case_by_another_team_report_notFound_and_write_nothing() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        _ = try await fixture.commands.restrict(opened.id, RestrictionRequest(restricted: true, reason: "sensitive"), by: People.lena)
        let before = try await fixture.snapshot()
        let error = await expectDomainError(.notFound) {
            _ = try await fixture.commands.transition(opened.id, TransitionRequest(to: "triage", reason: "x"), by: People.otto)
        }
        #expect(error?.message.contains(opened.id) == true)
        await expectDomainError(.notFound) {
            _ = try await fixture.commands.addEvidence(opened.id, Requests.evidence(), by: People.otto)
        }
        await expectDomainError(.notFound) {
            _ = try await fixture.commands.restrict(opened.id, RestrictionRequest(restricted: false, reason: "x"), by: People.sue)
        }
        #expect(try await fixture.snapshot() == before)

        // The same-team investigator still works on it.
        let outcome = try await fixture.commands.transition(opened.id, TransitionRequest(to: "triage", reason: "x"), by: People.iris)
        #expect(outcome.status == .triage)
    }

    @Test func party_identity_is_masked_for_analysts_and_investigators_outside_the_cases_teams() {
        func user(_ role: Role, _ team: String?) -> User { User(id: "u", displayName: "U", role: role, team: team, clearance: 3) }
        let teams: Set<String> = ["financial-crime"]
        #expect(AccessPolicy.seesPartyIdentity(user(.investigator, "financial-crime"), caseTeams: teams))
        #expect(!AccessPolicy.seesPartyIdentity(user(.investigator, "data-protection"), caseTeams: teams))
        #expect(!AccessPolicy.seesPartyIdentity(user(.analyst, "financial-crime"), caseTeams: teams))
        #expect(AccessPolicy.seesPartyIdentity(user(.supervisor, "data-protection"), caseTeams: teams))
        #expect(AccessPolicy.seesPartyIdentity(user(.legal, nil), caseTeams: []))
        #expect(AccessPolicy.seesPartyIdentity(user(.admin, nil), caseTeams: []))
        #expect(!AccessPolicy.seesPartyIdentity(user(.investigator, "financial-crime"), caseTeams: []), "a party on no case of the team")
    }
}
