import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// What a command committed is in the file: a new store on the same path sees all of it, and
/// the outbox continues where it stopped.
@Suite struct DurabilityTests {
    struct Written {
        var caseID: String
        var partyID: String
        var evidenceID: String
        var snapshot: StoreSnapshot
        var caseValue: Case
        var history: [CaseTransition]
        var links: [CasePartyLink]
        var evidence: [Evidence]
    }

    /// Opens a store on `path`, runs several commands and returns what they wrote; the store
    /// is released when this returns.
    static func writeAndClose(path: String) async throws -> Written {
        var store: SQLiteCanonicalStore? = try SQLiteCanonicalStore(path: path, migrations: CasePlatformSchema.migrations)
        var commands: CaseCommands? = CaseCommands(store: store!)
        for user in People.all { _ = try await commands!.registerUser(user) }
        let opened = try await commands!.openCase(Requests.openCase(), by: People.ivan)
        _ = try await commands!.transition(opened.id, TransitionRequest(to: "triage", reason: "screened"), by: People.ivan)
        let party = try await commands!.registerParty(RegisterPartyRequest(kind: "person", name: "Elena Dubois", email: "e@example.org"), by: People.ivan)
        _ = try await commands!.linkParty(opened.id, LinkPartyRequest(partyID: party.id, role: "complainant"), by: People.ivan)
        let evidence = try await commands!.addEvidence(opened.id, Requests.evidence(9), by: People.ivan)
        _ = try await commands!.assign(opened.id, AssignmentRequest(investigator: "ivan"), by: People.sam)
        _ = try await commands!.restrict(opened.id, RestrictionRequest(restricted: true, reason: "sensitive"), by: People.lena)

        let queries = CaseQueries(store: store!)
        let written = Written(
            caseID: opened.id, partyID: party.id, evidenceID: evidence.id, snapshot: try await StoreSnapshot(store!),
            caseValue: try #require(try await queries.caseIfVisible(opened.id, to: People.ada)),
            history: try await queries.history(caseID: opened.id), links: try await queries.partyLinks(caseID: opened.id),
            evidence: try await queries.evidence(caseID: opened.id))
        commands = nil
        store = nil
        #expect(store == nil && commands == nil)
        return written
    }

    @Test func a_reopened_store_holds_every_row_and_event_and_continues_at_head_plus_one() async throws {
        let directory = try TemporaryDirectory(prefix: "case-platform-durability")
        let path = directory.file("canonical.sqlite")
        let written = try await Self.writeAndClose(path: path)
        // Seven events of the case, and user.case_assigned on the investigator's stream.
        #expect(written.snapshot.head.rawValue == Int64(People.all.count) + 8)
        #expect(FileManager.default.fileExists(atPath: path))

        let reopened = try SQLiteCanonicalStore(path: path, migrations: CasePlatformSchema.migrations)
        let queries = CaseQueries(store: reopened)
        let snapshot = try await StoreSnapshot(reopened)
        #expect(snapshot.users == written.snapshot.users)
        #expect(snapshot.cases == written.snapshot.cases)
        #expect(snapshot.transitions == written.snapshot.transitions)
        #expect(snapshot.parties == written.snapshot.parties)
        #expect(snapshot.caseParties == written.snapshot.caseParties)
        #expect(snapshot.evidence == written.snapshot.evidence)
        #expect(snapshot.events == written.snapshot.events)
        #expect(snapshot.head == written.snapshot.head)

        let reread = try #require(try await queries.caseIfVisible(written.caseID, to: People.ada))
        #expect(reread == written.caseValue)
        #expect(reread.status == .triage && reread.assignee == "ivan" && reread.restricted && reread.version == 6)
        #expect(try await queries.history(caseID: written.caseID) == written.history)
        #expect(written.history.map(\.to) == [.intake, .triage])
        #expect(try await queries.partyLinks(caseID: written.caseID) == written.links)
        #expect(written.links.map(\.partyID) == [written.partyID])
        #expect(try await queries.evidence(caseID: written.caseID) == written.evidence)
        #expect(written.evidence.map(\.id) == [written.evidenceID])
        #expect(try await queries.party(written.partyID)?.name == "Elena Dubois")
        #expect(try await queries.users().map(\.id) == People.all.map(\.id).sorted())
        #expect(try await reopened.streamVersion(Case.streamID(written.caseID)) == 6)
        #expect(written.snapshot.events.filter { $0.streamID == Case.streamID(written.caseID) }.map(\.type) == [
            CaseEvents.caseOpened, CaseEvents.caseStatusChanged, CaseEvents.casePartyLinked, CaseEvents.caseEvidenceAdded,
            CaseEvents.caseAssigned, CaseEvents.caseRestrictionChanged,
        ])

        // A new command continues the outbox and the case's stream.
        let commands = CaseCommands(store: reopened)
        let outcome = try await commands.transition(written.caseID, TransitionRequest(to: "investigation", reason: "opened formally"),
                                                    ifMatch: 6, by: People.ivan)
        #expect(outcome.position == written.snapshot.head.next)
        #expect(outcome.version == 7)
        let newEvents = try await reopened.events(after: written.snapshot.head, limit: 10)
        #expect(newEvents.map(\.position) == [written.snapshot.head.next])
        #expect(newEvents.first?.streamVersion == 7)
        #expect(try await reopened.headPosition() == written.snapshot.head.next)
        // Registering an existing user is still a conflict after the reopen.
        await expectDomainError(.conflict) { _ = try await commands.registerUser(People.ivan) }
    }

    @Test func reopening_does_not_reapply_migrations_or_lose_data_across_several_cycles() async throws {
        let directory = try TemporaryDirectory(prefix: "case-platform-durability")
        let path = directory.file("canonical.sqlite")
        var caseIDs: [String] = []
        for cycle in 0..<3 {
            let store = try SQLiteCanonicalStore(path: path, migrations: CasePlatformSchema.migrations)
            let commands = CaseCommands(store: store)
            if cycle == 0 { for user in People.all { _ = try await commands.registerUser(user) } }
            #expect(try await store.count("cases", filter: [:]) == caseIDs.count)
            caseIDs.append(try await commands.openCase(Requests.openCase(title: "Cycle \(cycle)"), by: People.ivan).id)
        }
        let store = try SQLiteCanonicalStore(path: path, migrations: CasePlatformSchema.migrations)
        let rows = try await store.fetchAll("cases", orderBy: [.init("opened_at")])
        #expect(try rows.map { try $0.string("id") } == caseIDs)
        #expect(try await store.headPosition().rawValue == Int64(People.all.count + 3))
    }
}
