import Canon
import CasePlatform
import Foundation
import Synchronization
import Testing

/// Changing and removing users on a real SQLite canonical store: a change takes effect on the
/// user's next command, never strands an assignment, and cannot cross an assignment decided on
/// the old row; a removed user can do nothing more.
@Suite struct UserManagementTests {
    @Test func aChangeIsRefusedWhileItWouldStrandAnAssignmentThenTakesEffectAtOnce() async throws {
        let fixture = try await Fixture()
        let id = try await fixture.openCase().id
        try await fixture.advance(id, to: .investigation)
        _ = try await fixture.commands.assign(id, AssignmentRequest(investigator: "ivan"), by: People.sam)

        let stranded = await expectDomainError(.conflict) {
            _ = try await fixture.commands.updateUser("ivan") { user in
                var moved = user
                moved.team = "consumer-protection"
                return moved
            }
        }
        #expect(stranded?.message.contains(id) == true && stranded?.message.contains("reassign them first") == true, "\(stranded?.message ?? "")")
        #expect(try await fixture.queries.user("ivan") == People.ivan, "nothing changed")
        // A name is no obstacle.
        _ = try await fixture.commands.updateUser("ivan") { user in
            var renamed = user
            renamed.displayName = "Ivan P. Petrov"
            return renamed
        }

        _ = try await fixture.commands.assign(id, AssignmentRequest(investigator: "iris"), by: People.sam)
        _ = try await fixture.commands.updateUser("ivan") { user in
            var moved = user
            moved.team = "consumer-protection"
            return moved
        }
        let now = try #require(try await fixture.queries.user("ivan"))
        #expect(now.team == "consumer-protection" && now.displayName == "Ivan P. Petrov")
        // His next command, given the principal as an earlier request knew him, decides on what he is now.
        let refused = await expectDomainError(.forbidden) {
            _ = try await fixture.commands.transition(id, TransitionRequest(to: "enforcement", reason: "done"), by: People.ivan)
        }
        #expect(refused?.message.contains("works for team consumer-protection") == true)
        let events = try await fixture.store.events(after: .start, limit: 1_000).filter { $0.streamID == User.streamID("ivan") }
        #expect(events.map(\.type) == [CaseEvents.userRegistered, CaseEvents.userCaseAssigned, CaseEvents.userUpdated, CaseEvents.userUpdated])
        let change: CaseEvents.UserUpdated = try events[3].decodePayload()
        #expect(change.previous.team == "financial-crime" && change.user.team == "consumer-protection")
    }

    /// An assignment decided on the investigator's old row cannot commit once the change has.
    @Test func anAssignmentDecidedBeforeAChangeCannotCommitAfterIt() async throws {
        let fixture = try await Fixture()
        let id = try await fixture.openCase().id
        let current = try await fixture.currentCase(id)
        let decided = try CaseDecisions.assign(current, investigator: People.ivan, by: People.sam, at: Date(), metadata: .init(actor: "sam"))
        _ = try await fixture.commands.updateUser("ivan") { user in
            var lowered = user
            lowered.clearance = 1
            return lowered
        }
        let refused = await #expect(throws: CanonicalStoreError.self) { _ = try await fixture.store.commit(decided.work) }
        #expect(refused?.code == .requirementFailed)
        #expect(try await fixture.currentCase(id).assignee == nil)
    }

    /// An assignment that commits after a change read the user's assigned cases, and before the
    /// change commits: the change cannot commit on what it read, decides again, and is refused.
    @Test func aChangeDecidedBeforeAnAssignmentCannotCommitAfterIt() async throws {
        let fixture = try await Fixture()
        let id = try await fixture.openCase().id
        try await fixture.advance(id, to: .investigation)
        let interleaved = AssignsAfterTheRead(base: fixture.store) {
            _ = try await CaseCommands(store: fixture.store).assign(id, AssignmentRequest(investigator: "ivan"), by: People.sam)
        }
        let refused = await expectDomainError(.conflict) {
            _ = try await CaseCommands(store: interleaved).updateUser("ivan") { user in
                var moved = user
                moved.team = "consumer-protection"
                return moved
            }
        }
        #expect(refused?.message.contains(id) == true, "\(refused?.message ?? "")")
        #expect(interleaved.ran.withLock { $0 }, "the assignment ran between the read and the commit")
        #expect(try await fixture.queries.user("ivan") == People.ivan)
        #expect(try await fixture.currentCase(id).assignee == "ivan")
    }

    /// A reopening that keeps the assignee, committed after a change read the user's cases (the
    /// case was closed then, so it did not count): the change cannot commit and decides again.
    @Test func aChangeDecidedBeforeAReopeningThatKeepsTheAssigneeCannotCommitAfterIt() async throws {
        let fixture = try await Fixture()
        let id = try await fixture.openCase().id
        try await fixture.advance(id, to: .investigation)
        _ = try await fixture.commands.assign(id, AssignmentRequest(investigator: "ivan"), by: People.sam)
        try await fixture.advance(id, to: .closed)
        let interleaved = AssignsAfterTheRead(base: fixture.store) {
            _ = try await CaseCommands(store: fixture.store).transition(id, TransitionRequest(to: "investigation", reason: "new facts"), by: People.sam)
        }
        let refused = await expectDomainError(.conflict) {
            _ = try await CaseCommands(store: interleaved).removeUser("ivan")
        }
        #expect(refused?.message.contains(id) == true, "\(refused?.message ?? "")")
        #expect(interleaved.ran.withLock { $0 })
        let assignee = try await fixture.currentCase(id).assignee
        #expect(try await fixture.queries.user("ivan") != nil && assignee == "ivan", "the reopened case keeps a user who still exists")
    }

    /// Runs `between` once, right after the first read of a user's assigned cases.
    struct AssignsAfterTheRead: CanonicalStoreWrapper {
        let base: any CanonicalStore
        let between: @Sendable () async throws -> Void
        let ran = Flag()

        final class Flag: Sendable {
            private let value = Mutex(false)
            func withLock<T>(_ body: (inout Bool) -> T) -> T { value.withLock { body(&$0) } }
        }

        init(base: any CanonicalStore, between: @escaping @Sendable () async throws -> Void) {
            self.base = base
            self.between = between
        }

        func fetchAll(_ query: RowQuery) async throws -> [Row] {
            let rows = try await base.fetchAll(query)
            if query.table == "cases", query.filter["assignee"] != nil, ran.withLock({ ran in defer { ran = true }; return !ran }) {
                try await between()
            }
            return rows
        }
    }

    /// A closed case keeps its assignee as history; reopened, it leaves an assignee who was
    /// removed or can no longer take it, in the same commit, and every derived store follows.
    @Test func reopeningACaseUnassignsAnAssigneeWhoCanNoLongerTakeIt() async throws {
        let fixture = try await Fixture()
        // Assigned to ivan, to iris, and (in another team) to otto; all closed.
        var ids: [String] = []
        for (investigator, supervisor) in [(People.ivan, People.sam), (People.iris, People.sam), (People.otto, People.sue)] {
            let id = try await fixture.openCase(by: investigator).id
            try await fixture.advance(id, to: .investigation, by: investigator)
            _ = try await fixture.commands.assign(id, AssignmentRequest(investigator: investigator.id), by: supervisor)
            try await fixture.advance(id, to: .closed, by: investigator)
            ids.append(id)
        }
        // A closed case's assignee is history: neither a removal nor a move is refused for it.
        _ = try await fixture.commands.removeUser("ivan")
        _ = try await fixture.commands.updateUser("iris") { user in
            var moved = user
            moved.team = "consumer-protection"
            return moved
        }
        for (id, supervisor) in zip(ids, [People.sam, People.sam, People.sue]) {
            _ = try await fixture.commands.transition(id, TransitionRequest(to: "investigation", reason: "new facts"), by: supervisor)
        }
        let assignees = try await [fixture.currentCase(ids[0]).assignee, fixture.currentCase(ids[1]).assignee, fixture.currentCase(ids[2]).assignee]
        #expect(assignees == [nil, nil, "otto"], "ivan is gone, iris moved team; otto can still take his")

        let search = CaseSearchProjection(), timeline = CaseTimelineProjection()
        for (index, id) in ids.enumerated() {
            let events = try await fixture.store.events(after: .start, limit: 10_000).filter { $0.streamID == Case.streamID(id) }
            let reopened: CaseEvents.StatusChanged = try events.last!.decodePayload()
            #expect(reopened.unassigned == (["ivan", "iris", nil] as [String?])[index])
            // The search document folded from the events is the one canonical state gives (what a drift check compares).
            let folded = try search.fold(events, into: nil)
            let canonical = try search.document(for: try await fixture.currentCase(id), partyNames: [])
            #expect(folded == canonical, "the search document follows")
            if index == 0 {
                let entry = try #require(try timeline.entries(for: events.last!).first)
                #expect(entry.summary.contains("unassigned from ivan, who can no longer take it") && entry.details["unassigned"] == "ivan")
            }
        }
    }

    @Test func aRemovedUserCanDoNothingMoreAndTheirIDIsNotReused() async throws {
        let fixture = try await Fixture()
        let id = try await fixture.openCase().id
        try await fixture.advance(id, to: .investigation)
        _ = try await fixture.commands.assign(id, AssignmentRequest(investigator: "ivan"), by: People.sam)
        await expectDomainError(.conflict) { _ = try await fixture.commands.removeUser("ivan") }
        _ = try await fixture.commands.assign(id, AssignmentRequest(investigator: "iris"), by: People.sam)

        _ = try await fixture.commands.removeUser("ivan")
        #expect(try await fixture.queries.user("ivan") == nil)
        await expectDomainError(.unauthenticated) {
            _ = try await fixture.commands.openCase(Requests.openCase(), by: People.ivan)
        }
        await expectDomainError(.notFound) { _ = try await fixture.commands.removeUser("ivan") }
        await expectDomainError(.conflict) { _ = try await fixture.commands.registerUser(People.ivan) }
        #expect(try await fixture.queries.history(caseID: id).contains { $0.actor == "ivan" }, "what he did stays under his id")
    }
}
