import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// A command is one transaction: a failure at any point inside the commit leaves the case row,
/// its history, its evidence and the outbox exactly as they were.
@Suite struct AtomicityTests {
    enum Command: String, CaseIterable, Sendable {
        case transition, addEvidence, linkParty, assign, restrict, openCase
    }

    static let points: [FaultPoint] = [.afterMutations, .beforeCommit]

    /// Runs `command` on the case `caseID`, returning the position it reports.
    static func run(_ command: Command, on caseID: String, partyID: String, fixture: Fixture) async throws -> CaseCommands.Outcome {
        switch command {
        case .transition:
            try await fixture.commands.transition(caseID, TransitionRequest(to: "triage", reason: "screened"), by: People.ivan)
        case .addEvidence:
            try await fixture.commands.addEvidence(caseID, Requests.evidence(3), by: People.ivan)
        case .linkParty:
            try await fixture.commands.linkParty(caseID, LinkPartyRequest(partyID: partyID, role: "subject"), by: People.ivan)
        case .assign:
            try await fixture.commands.assign(caseID, AssignmentRequest(investigator: "ivan"), by: People.sam)
        case .restrict:
            try await fixture.commands.restrict(caseID, RestrictionRequest(restricted: true, reason: "sensitive"), by: People.lena)
        case .openCase:
            try await fixture.openCase(title: "A second case")
        }
    }

    @Test(arguments: Command.allCases, points)
    func injected_fault_inside_the_commit_leaves_rows_history_evidence_and_outbox_untouched(command: Command, point: FaultPoint) async throws {
        let faults = FaultSwitch()
        let fixture = try await Fixture(faults: faults.injector)
        let opened = try await fixture.openCase()
        _ = try await fixture.commands.addEvidence(opened.id, Requests.evidence(1), by: People.ivan)
        let party = try await fixture.commands.registerParty(RegisterPartyRequest(kind: "organisation", name: "Acme Ltd"), by: People.ivan)
        let before = try await fixture.snapshot()
        let caseBefore = try await fixture.currentCase(opened.id)

        faults.arm(point)
        await #expect {
            _ = try await Self.run(command, on: opened.id, partyID: party.id, fixture: fixture)
        } throws: { error in
            (error as? CanonicalStoreError)?.code == .injectedFault
        }

        let after = try await fixture.snapshot()
        #expect(after.cases == before.cases)
        #expect(after.transitions == before.transitions)
        #expect(after.evidence == before.evidence)
        #expect(after.caseParties == before.caseParties)
        #expect(after.parties == before.parties)
        #expect(after.events == before.events)
        #expect(after.head == before.head)
        #expect(after == before)
        #expect(try await fixture.currentCase(opened.id) == caseBefore)
        #expect(try await fixture.store.streamVersion(Case.streamID(opened.id)) == caseBefore.version)

        // The switch fired once: the same command now commits, continuing the outbox without a gap.
        let outcome = try await Self.run(command, on: opened.id, partyID: party.id, fixture: fixture)
        // The command's last event, right after what was there (an assignment writes two).
        #expect(outcome.position.rawValue == before.head.rawValue + (command == .assign ? 2 : 1))
        let positions = try await fixture.store.events(after: .start, limit: 10_000).map(\.position.rawValue)
        #expect(positions == Array(1...Int64(positions.count)))
    }

    @Test func a_failed_batch_commit_of_decisions_writes_none_of_them() async throws {
        let faults = FaultSwitch()
        let fixture = try await Fixture(faults: faults.injector)
        let opened = try await fixture.openCase()
        let current = try await fixture.currentCase(opened.id)
        let now = Date()
        let moved = try CaseDecisions.transition(current, TransitionRequest(to: "triage", reason: "x"), by: People.ivan, at: now, metadata: .init(actor: "ivan"))
        let second = try CaseDecisions.openCase(Requests.openCase(), id: "00000000-0000-4000-8000-0000000000b2", by: People.ivan, at: now,
                                                metadata: .init(actor: "ivan"))
        let before = try await fixture.snapshot()
        faults.arm(.beforeCommit)
        await #expect(throws: CanonicalStoreError.self) {
            _ = try await fixture.store.commit(batch: [moved.work, second.work])
        }
        #expect(try await fixture.snapshot() == before)
    }
}
