import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Synchronization
import Testing

/// The demo generator: deterministic for a seed, complete (every row has its events) and varied.
@Suite struct DemoPlatformTests {
    final class ProgressLog: Sendable {
        private let entries = Mutex<[DemoPlatform.Progress]>([])
        func record(_ progress: DemoPlatform.Progress) { entries.withLock { $0.append(progress) } }
        var all: [DemoPlatform.Progress] { entries.withLock { $0 } }
    }

    struct Seeded {
        let directory: TemporaryDirectory
        let store: SQLiteCanonicalStore
        let summary: DemoPlatform.Summary
        let progress: [DemoPlatform.Progress]
    }

    static func seed(cases: Int, seed: UInt64, chunkSize: Int = 25) async throws -> Seeded {
        let directory = try TemporaryDirectory(prefix: "case-platform-demo")
        let store = try SQLiteCanonicalStore(path: directory.file("canonical.sqlite"), migrations: CasePlatformSchema.migrations)
        let log = ProgressLog()
        let summary = try await DemoPlatform(configuration: .init(cases: cases, seed: seed, chunkSize: chunkSize))
            .seed(into: store, progress: { log.record($0) })
        return Seeded(directory: directory, store: store, summary: summary, progress: log.all)
    }

    static func allEvents(_ store: SQLiteCanonicalStore) async throws -> [EventEnvelope] {
        try await store.events(after: .start, limit: 1_000_000)
    }

    @Test func same_seed_on_two_fresh_files_gives_identical_rows_and_event_streams() async throws {
        let first = try await Self.seed(cases: 60, seed: 7)
        let second = try await Self.seed(cases: 60, seed: 7)
        #expect(first.directory.path != second.directory.path)

        let firstCases = try await first.store.fetchAll("cases", orderBy: [.init("id")])
        let secondCases = try await second.store.fetchAll("cases", orderBy: [.init("id")])
        #expect(firstCases.count == 60)
        #expect(firstCases == secondCases)
        for table in ["users", "parties", "case_parties", "evidence"] {
            let key = table == "case_parties" ? [RowQuery.Ordering("case_id"), .init("party_id"), .init("role")] : [.init("id")]
            #expect(try await first.store.fetchAll(table, orderBy: key) == second.store.fetchAll(table, orderBy: key), "\(table)")
        }
        #expect(try await first.store.fetchAll("case_transitions", orderBy: [.init("case_id"), .init("case_version")])
                == second.store.fetchAll("case_transitions", orderBy: [.init("case_id"), .init("case_version")]))

        let firstEvents = try await Self.allEvents(first.store)
        let secondEvents = try await Self.allEvents(second.store)
        #expect(firstEvents.count == secondEvents.count)
        #expect(firstEvents.map(\.type) == secondEvents.map(\.type))
        #expect(firstEvents.map(\.streamID) == secondEvents.map(\.streamID))
        #expect(firstEvents.map(\.streamVersion) == secondEvents.map(\.streamVersion))
        #expect(firstEvents.map(\.payload) == secondEvents.map(\.payload))
        #expect(first.summary.events == second.summary.events)
        #expect(first.summary.users == second.summary.users)
    }

    @Test func a_different_seed_gives_different_case_ids() async throws {
        let first = try await Self.seed(cases: 60, seed: 7)
        let other = try await Self.seed(cases: 60, seed: 8)
        let firstIDs = Set(try await first.store.fetchAll("cases").map { try $0.string("id") })
        let otherIDs = Set(try await other.store.fetchAll("cases").map { try $0.string("id") })
        #expect(firstIDs.count == 60 && otherIDs.count == 60)
        #expect(firstIDs.isDisjoint(with: otherIDs))
    }

    @Test func progress_is_reported_per_chunk_with_increasing_counts_ending_at_the_total() async throws {
        let seeded = try await Self.seed(cases: 60, seed: 7)
        #expect(seeded.progress.map(\.casesDone) == [25, 50, 60])
        #expect(seeded.progress.allSatisfy { $0.casesTotal == 60 })
        let written = seeded.progress.map(\.eventsWritten)
        #expect(zip(written, written.dropFirst()).allSatisfy { $0 < $1 })
        #expect(written.last == seeded.summary.events)
    }

    @Test func summary_matches_the_store_and_every_case_has_its_opening_event() async throws {
        let seeded = try await Self.seed(cases: 60, seed: 7)
        let store = seeded.store
        let head = try await store.headPosition()
        #expect(seeded.summary.events == Int(head.rawValue))
        #expect(seeded.summary.headPosition == head)
        #expect(seeded.summary.cases == 60)
        #expect(try await store.count("cases", filter: [:]) == seeded.summary.cases)
        #expect(try await store.count("parties", filter: [:]) == seeded.summary.parties)
        #expect(try await store.count("evidence", filter: [:]) == seeded.summary.evidence)
        #expect(try await store.count("users", filter: [:]) == seeded.summary.users.count)

        let events = try await Self.allEvents(store)
        #expect(events.count == seeded.summary.events)
        #expect(events.map(\.position.rawValue) == Array(1...head.rawValue))
        let cases = try await store.fetchAll("cases")
        let openedStreams = Set(events.filter { $0.type == CaseEvents.caseOpened }.map(\.streamID))
        #expect(openedStreams == Set(try cases.map { Case.streamID(try $0.string("id")) }))
        #expect(events.filter { $0.type == CaseEvents.caseOpened }.count == cases.count)
        #expect(events.filter { $0.type == CaseEvents.userRegistered }.count == seeded.summary.users.count)
        #expect(events.filter { $0.type == CaseEvents.partyRegistered }.count == seeded.summary.parties)
        #expect(events.filter { $0.type == CaseEvents.caseEvidenceAdded }.count == seeded.summary.evidence)
        #expect(Set(events.map(\.type)).isSubset(of: Set(CaseEvents.allTypes)))
    }

    @Test func two_hundred_cases_are_consistent_and_varied() async throws {
        let seeded = try await Self.seed(cases: 200, seed: 42, chunkSize: 100)
        let store = seeded.store
        let cases = try await store.fetchAll("cases", orderBy: [.init("id")])
        #expect(cases.count == 200)
        let events = try await Self.allEvents(store)
        var lastVersion: [StreamID: Int64] = [:]
        for event in events { lastVersion[event.streamID] = event.streamVersion }
        let transitions = try await store.fetchAll("case_transitions", orderBy: [.init("case_id"), .init("case_version")])
        let lastStatus = Dictionary(try transitions.map { (try $0.string("case_id"), try $0.string("to_status")) }, uniquingKeysWith: { _, last in last })

        var statuses: [String: Int] = [:]
        var restricted = 0
        var assigned = 0
        for row in cases {
            let id = try row.string("id")
            let status = try row.string("status")
            statuses[status, default: 0] += 1
            if try row.bool("restricted") { restricted += 1 }
            if try row.optionalString("assignee") != nil { assigned += 1 }
            // The row's version is its stream's version, and its status is its history's last entry.
            #expect(try row.int("version") == lastVersion[Case.streamID(id)], "case \(id)")
            #expect(lastStatus[id] == status, "case \(id)")
            #expect(CaseStatus(rawValue: status) != nil)
        }
        #expect(statuses.count >= 3, "statuses: \(statuses)")
        #expect(restricted >= 1)
        #expect(assigned >= 1)
        #expect(events.filter { $0.type == CaseEvents.caseRestrictionChanged }.count == restricted)
        #expect(events.filter { $0.type == CaseEvents.caseRestrictionChanged }.allSatisfy { $0.priority })

        // Every assignee is an investigator of the case's team.
        let users = Dictionary(uniqueKeysWithValues: try await store.fetchAll("users").map { (try $0.string("id"), $0) })
        for row in cases {
            guard let assignee = try row.optionalString("assignee") else { continue }
            let user = try #require(users[assignee])
            #expect(try user.string("role") == "investigator")
            #expect(try user.optionalString("team") == row.string("team"))
        }
    }

    @Test func demo_users_are_registered_with_valid_roles_and_teams() async throws {
        let users = DemoPlatform(configuration: .init(cases: 1, seed: 7)).users()
        #expect(Set(users.map(\.id)).count == users.count)
        #expect(Set(users.map(\.role)) == Set(Role.allCases))
        for user in users where [Role.investigator, .supervisor, .analyst].contains(user.role) {
            #expect(user.team != nil, "\(user.id)")
        }
        #expect(DemoPlatform(configuration: .init(cases: 1, seed: 7)).users() == users)
    }

    /// What each projection declares it handles (`selection`: the agent reads only those events)
    /// leaves out only events it would have ignored anyway, over a seeded outbox of every kind of
    /// event, a purge included.
    @Test func each_projection_selects_every_event_it_handles() async throws {
        let seeded = try await Self.seed(cases: 60, seed: 11)
        let commands = CaseCommands(store: seeded.store)
        let users = DemoPlatform(configuration: .init(cases: 1, seed: 11)).users()
        let lena = try #require(users.first { $0.role == .legal }), admin = try #require(users.first { $0.role == .admin })
        let closed = try #require(try await seeded.store.fetchOne("cases", where: ["status": .text("closed")]))
        _ = try await commands.purge(try closed.string("id"), reason: "retention ended", by: lena)
        let cases = try await seeded.store.fetchAll("cases", orderBy: [.init("id")])
        let open = try #require(try cases.first { try $0.string("status") != "closed" })
        let otherTeam = try #require(try cases.map { try $0.string("team") }.first { $0 != (try open.string("team")) })
        _ = try await commands.changeTeam(try open.string("id"), TeamChangeRequest(team: otherTeam, reason: "handover"), by: admin)
        _ = try await commands.placeHold(try open.string("id"), reason: "litigation", by: lena)
        _ = try await commands.releaseHold(try open.string("id"), reason: "settled", by: lena)
        let analysts = users.filter { $0.role == .analyst }
        _ = try await commands.updateUser(analysts[0].id) { user in
            var raised = user
            raised.clearance = 3
            return raised
        }
        _ = try await commands.removeUser(analysts[1].id)
        let events = try await Self.allEvents(seeded.store)
        #expect(Set(events.map(\.type)) == Set(CaseEvents.allTypes), "the outbox holds every type")

        let search = CaseSearchProjection(), timeline = CaseTimelineProjection(), semantic = EvidenceSemanticProjection()
        for event in events where !search.selection.includes(event) {
            #expect(search.documentKey(for: event) == nil, "\(event.type) left out of case search")
        }
        for event in events where !timeline.selection.includes(event) {
            #expect(try timeline.entries(for: event).isEmpty && timeline.clearedKey(by: event) == nil, "\(event.type) left out of the timeline")
        }
        for event in events where !semantic.selection.includes(event) {
            #expect(try semantic.documents(for: event).isEmpty && semantic.removedKeys(by: event).isEmpty, "\(event.type) left out of evidence")
        }
        // Each leaves something out, and keeps what it is for.
        for (name, selection, kept) in [
            ("search", search.selection, CaseEvents.caseOpened), ("timeline", timeline.selection, CaseEvents.casePartyLinked),
            ("semantic", semantic.selection, CaseEvents.caseEvidenceAdded),
        ] {
            #expect(events.contains { !selection.includes($0) }, "\(name) selects every event")
            #expect(events.filter { $0.type == kept }.allSatisfy(selection.includes), "\(name) keeps \(kept)")
        }
        #expect(events.filter { $0.type == CaseEvents.casePurged }.allSatisfy(semantic.selection.includes))
    }
}
