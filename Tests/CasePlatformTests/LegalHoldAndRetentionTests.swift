import Canon
import CanonSQLite
import CasePlatform
import Foundation
import Synchronization
import Testing

/// Legal hold and retention on a real SQLite canonical store, with a clock the test moves: a
/// hold blocks every purge, by hand or by the retention job; a closed case is purged only once
/// its retention period since its last closing has run out.
@Suite struct LegalHoldAndRetentionTests {
    /// A clock that stands still until the test moves it.
    final class TestClock: Sendable {
        private let now = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        func read() -> Date { now.withLock { $0 } }
        func advance(days: Double) { now.withLock { $0 = $0.addingTimeInterval(days * 86_400) } }
    }

    static let thirtyDays = RetentionPolicy(period: .seconds(30 * 86_400))

    @Test func aHoldBlocksThePurgeUntilItIsLiftedAndOnlyLegalAndAdminsHandleHolds() async throws {
        let fixture = try await Fixture()
        let id = try await fixture.openCase().id
        try await fixture.advance(id, to: .closed)

        let placed = try await fixture.commands.placeHold(id, reason: "litigation pending", by: People.lena)
        let hold = try #require(try await fixture.queries.legalHold(caseID: id))
        #expect(hold.reason == "litigation pending" && hold.placedBy == "lena")
        #expect(try await fixture.currentCase(id).version == placed.version, "a hold is a change of the case: its version moves")

        let refused = await #expect(throws: DomainError.self) { try await fixture.commands.purge(id, reason: "done", by: People.lena) }
        #expect(refused?.code == .conflict && refused?.message.contains("under legal hold") == true)
        #expect(try await fixture.commands.tombstones(caseID: id).isEmpty, "nothing was purged")
        let twice = await #expect(throws: DomainError.self) { try await fixture.commands.placeHold(id, reason: "again", by: People.ada) }
        #expect(twice?.code == .conflict)
        for outsider in [People.ivan, People.sam, People.nora] {
            let forbidden = await #expect(throws: DomainError.self) { try await fixture.commands.releaseHold(id, reason: "mine", by: outsider) }
            #expect(forbidden?.code == .forbidden, "\(outsider.role) may not lift a hold")
        }

        _ = try await fixture.commands.releaseHold(id, reason: "settled", by: People.ada)
        #expect(try await fixture.queries.legalHold(caseID: id) == nil)
        let notHeld = await #expect(throws: DomainError.self) { try await fixture.commands.releaseHold(id, reason: "again", by: People.ada) }
        #expect(notHeld?.code == .conflict)
        _ = try await fixture.commands.purge(id, reason: "done", by: People.lena)
        #expect(try await fixture.commands.tombstones(caseID: id).count == 1)

        // The case's stream tells the whole story, in order.
        let types = try await fixture.store.events(after: .start, limit: 1_000).filter { $0.streamID == Case.streamID(id) }.map(\.type)
        #expect(Array(types.suffix(3)) == [CaseEvents.caseHoldPlaced, CaseEvents.caseHoldReleased, CaseEvents.casePurged])
    }

    @Test func aClosedCaseIsPurgedOnlyOnceItsRetentionPeriodSinceItsLastClosingHasRunOut() async throws {
        let clock = TestClock()
        let fixture = try await Fixture(clock: { clock.read() }, retention: Self.thirtyDays)
        let id = try await fixture.openCase().id
        try await fixture.advance(id, to: .closed)
        clock.advance(days: 29)
        let early = await #expect(throws: DomainError.self) { try await fixture.commands.purge(id, reason: "done", by: People.lena) }
        #expect(early?.code == .conflict && early?.message.contains("within its retention period until") == true)

        // Reopened and closed again: the period counts from the last closing.
        _ = try await fixture.commands.transition(id, TransitionRequest(to: "investigation", reason: "new facts"), by: People.ivan)
        clock.advance(days: 2)
        try await fixture.advance(id, to: .closed)
        clock.advance(days: 29)
        await #expect(throws: DomainError.self) { try await fixture.commands.purge(id, reason: "done", by: People.lena) }
        clock.advance(days: 1)
        _ = try await fixture.commands.purge(id, reason: "done", by: People.lena)
        #expect(try await fixture.queries.caseIfVisible(id, to: People.ada) == nil)
    }

    @Test func theRetentionJobPurgesExactlyTheDueCasesAndLeavesHeldOnes() async throws {
        let clock = TestClock()
        let fixture = try await Fixture(clock: { clock.read() }, retention: Self.thirtyDays)
        var due: [String] = []
        for _ in 0..<3 {
            let id = try await fixture.openCase().id
            try await fixture.advance(id, to: .closed)
            due.append(id)
        }
        _ = try await fixture.commands.placeHold(due[2], reason: "subpoena", by: People.lena)
        let open = try await fixture.openCase().id
        clock.advance(days: 20)
        let recent = try await fixture.openCase().id
        try await fixture.advance(recent, to: .closed)
        clock.advance(days: 11)

        let dryRun = try await fixture.commands.expire(dryRun: true)
        #expect(dryRun.due == 3 && Set(dryRun.purged) == Set(due.prefix(2)) && dryRun.held == [due[2]])
        #expect(try await fixture.commands.tombstones(caseID: due[0]).isEmpty, "a dry run purges nothing")

        let seen = Mutex<[Int]>([])
        // Pages of one closed case: every page's closings and holds are read with it.
        let report = try await fixture.commands.expire(pageSize: 1, progress: { done, total in seen.withLock { $0.append(done * 10 + total) } })
        #expect(Set(report.purged) == Set(due.prefix(2)) && report.held == [due[2]] && report.skipped.isEmpty)
        #expect(report.examined == 4 && report.due == 3 && !report.stopped)
        #expect(seen.withLock { $0 } == [14, 24, 34, 44], "progress after every closed case, of the four closed")
        for id in due.prefix(2) {
            let tombstones = try await fixture.commands.tombstones(caseID: id)
            #expect(try tombstones.map { try $0.string("purged_by") } == [CaseCommands.retentionJob.id])
        }
        for id in [due[2], open, recent] { #expect(try await fixture.queries.caseIfVisible(id, to: People.ada) != nil, "\(id) stays") }

        // A stop asked before the first case purges nothing; with no period declared, nothing is due.
        let stopped = try await fixture.commands.expire(stop: { true })
        #expect(stopped.purged.isEmpty && stopped.stopped && stopped.examined == 0)
        let rest = try await fixture.commands.expire(pageSize: 2)
        #expect(rest.examined == 2 && rest.due == 1 && rest.held == [due[2]] && rest.purged.isEmpty, "what is left: the held case and the recent one")
        let unlimited = try await Fixture(retention: .init()).commands.expire()
        #expect(unlimited == CaseCommands.ExpiryReport())
    }

    @Test func theShippedPortfolioDeclaresTheRetentionPeriodTheRuntimeEnforces() throws {
        let portfolio = try PlatformPortfolio.load().requireValid()
        #expect(RetentionPolicy(portfolio).period == .seconds(2190 * 86_400))
    }
}
