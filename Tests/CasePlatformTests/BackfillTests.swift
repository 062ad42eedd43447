import Canon
import CasePlatform
import Foundation
import Synchronization
import Testing

/// `canon backfill cases` on a real SQLite canonical store: legacy cases arrive through the
/// platform's decisions with their events, every bad line is reported with its number and
/// loses nothing else, and importing again never imports twice, nor a case purged since.
@Suite struct BackfillTests {
    static let investigation = #"""
        {"external_id": "LEG-1", "title": "Northwind Capital: hidden fees", "summary": "Fees not disclosed.", "sector": "banking", "region": "north", "priority": "high", "team": "financial-crime", "status": "investigation", "opened_at": "2021-03-04T10:00:00Z", "status_at": "2021-04-01T09:00:00Z", "opened_by": "sam", "assignee": "ivan", "parties": [{"kind": "organisation", "name": "Northwind Capital", "role": "subject"}, {"kind": "person", "name": "Mia Holm", "email": "mia@example.org", "role": "complainant"}]}
        """#
    static let closed = #"""
        {"external_id": "LEG-2", "title": "Harbour Energy: billing errors", "sector": "energy", "region": "south", "priority": "low", "team": "financial-crime", "status": "closed", "opened_at": "2020-01-10T08:00:00Z", "status_at": "2020-06-30T17:00:00Z", "restricted": true}
        """#

    static func line(_ externalID: String, status: String = "triage") -> String {
        #"{"external_id": "\#(externalID)", "title": "Legacy case \#(externalID)", "sector": "retail", "region": "east", "priority": "medium", "team": "financial-crime", "status": "\#(status)", "opened_at": "2022-05-01T12:00:00Z"}"#
    }

    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    func backfill(_ fixture: Fixture, source: String = "legacy-crm", batchSize: Int = 200, dryRun: Bool = false, store: (any CanonicalStore)? = nil) -> CaseBackfill {
        CaseBackfill(store: store ?? fixture.store, options: .init(source: source, batchSize: batchSize, dryRun: dryRun), clock: { Self.now })
    }

    @Test func validLinesArriveThroughTheDecisionsAndEveryBadLineIsRejectedWithItsNumber() async throws {
        let fixture = try await Fixture()
        let lines = [
            Self.investigation,
            #"{"external_id": "LEG-3", "sector": "banking", "region": "north", "priority": "high", "team": "financial-crime", "opened_at": "2021-01-01T00:00:00Z"}"#,
            "{not json",
            "",
            #"{"external_id": "LEG-4", "title": "t", "sector": "banking", "region": "north", "priority": "high", "team": "financial-crime", "opend_at": "2021-01-01T00:00:00Z"}"#,
            Self.line("LEG-5", status: "archived"),
            #"{"external_id": "LEG-6", "title": "t", "sector": "banking", "region": "north", "priority": "high", "team": "financial-crime", "opened_at": "2021-01-01T00:00:00Z", "assignee": "nobody"}"#,
            #"{"external_id": "LEG-7", "title": "t", "sector": "banking", "region": "north", "priority": "high", "team": "financial-crime", "opened_at": "yesterday"}"#,
            #"{"external_id": "LEG-8", "title": "t", "sector": "banking", "region": "north", "priority": "high", "team": "financial-crime", "opened_at": "2021-01-01T00:00:00Z", "parties": [{"kind": "robot", "name": "R2", "role": "subject"}]}"#,
            Self.closed,
            Self.line("LEG-1"),
        ]
        let report = try await backfill(fixture).run(lines: lines)

        #expect(report.linesRead == 11 && report.imported == 2 && report.alreadyImported == 0)
        let rejected = report.rejected.map { "\($0.line) \($0.externalID ?? "-") \($0.code) \($0.field ?? "-")" }
        #expect(rejected == [
            "2 LEG-3 invalid title", "3 - invalid_json -", "5 LEG-4 invalid opend_at", "6 LEG-5 invalid status",
            "7 LEG-6 invalid assignee", "8 LEG-7 invalid opened_at", "9 LEG-8 invalid parties[0].kind", "11 LEG-1 conflict -",
        ])
        #expect(report.rejected.allSatisfy { lines[$0.line - 1] == $0.text }, "each rejection keeps its line as read")

        // The investigation case: opened by sam at its legacy time, assigned, parties linked, moved to its status.
        let first = try #require(try await CaseBackfill.importedCase(source: "legacy-crm", externalID: "LEG-1", in: fixture.store))
        let opened = try await fixture.currentCase(first)
        #expect(opened.status == .investigation && opened.assignee == "ivan" && opened.openedBy == "sam" && opened.team == "financial-crime")
        #expect(opened.openedAt == Timestamp.parseISO8601("2021-03-04T10:00:00Z"))
        let history = try await fixture.queries.history(caseID: first)
        #expect(history.map(\.to) == [.intake, .triage, .investigation])
        #expect(history.last?.at == Timestamp.parseISO8601("2021-04-01T09:00:00Z") && history.last?.reason == "imported from legacy-crm")
        #expect(try await fixture.queries.partyLinks(caseID: first).map(\.role) == [.subject, .complainant])

        // The closed, restricted one, and the events every derived store will receive.
        let second = try #require(try await CaseBackfill.importedCase(source: "legacy-crm", externalID: "LEG-2", in: fixture.store))
        let closedCase = try await fixture.currentCase(second)
        #expect(closedCase.status == .closed && closedCase.restricted && closedCase.openedBy == CaseBackfill.principal.id)
        let events = try await fixture.store.events(after: .start, limit: 1_000).filter { $0.streamID == Case.streamID(second) }.map(\.type)
        #expect(events == [CaseEvents.caseOpened] + Array(repeating: CaseEvents.caseStatusChanged, count: 4) + [CaseEvents.caseRestrictionChanged])
        let head = try await fixture.store.headPosition()
        #expect(report.events == 14 && report.position == head)
        #expect(try await fixture.store.count("cases", filter: [:]) == 2, "no rejected line left anything behind")
    }

    @Test func importingAgainImportsNothingTwiceNorBringsBackAPurgedCase() async throws {
        let fixture = try await Fixture()
        let lines = [Self.investigation, Self.closed, Self.line("LEG-3")]
        let first = try await backfill(fixture, batchSize: 2).run(lines: lines)
        #expect(first.imported == 3 && first.rejected.isEmpty)

        let purged = try #require(try await CaseBackfill.importedCase(source: "legacy-crm", externalID: "LEG-2", in: fixture.store))
        _ = try await fixture.commands.purge(purged, reason: "retention ended", by: People.lena)
        let before = try await fixture.snapshot()
        let again = try await backfill(fixture).run(lines: lines)
        #expect(again.imported == 0 && again.alreadyImported == 3 && again.rejected.isEmpty && again.position == nil)
        #expect(try await fixture.snapshot() == before, "the second run wrote nothing")

        // Another source's ids are its own.
        let other = try await backfill(fixture, source: "old-registry").run(lines: [Self.line("LEG-3")])
        #expect(other.imported == 1)
    }

    @Test func aStopBetweenBatchesKeepsWhatCommittedAndTheNextRunGoesOn() async throws {
        let fixture = try await Fixture()
        let lines = (1...5).map { Self.line("LEG-\($0)") }
        let progressed = Mutex<[Int]>([])
        let stopped = try await backfill(fixture, batchSize: 2).run(
            lines: lines, progress: { progress in progressed.withLock { $0.append(progress.linesRead) } }, stop: { true })
        #expect(stopped.stopped && stopped.imported == 2 && stopped.linesRead == 2)
        #expect(progressed.withLock { $0 } == [2])
        #expect(try await fixture.store.count("cases", filter: [:]) == 2)

        let rest = try await backfill(fixture, batchSize: 2).run(lines: lines)
        #expect(!rest.stopped && rest.imported == 3 && rest.alreadyImported == 2)
        #expect(try await fixture.store.count("cases", filter: [:]) == 5)
    }

    @Test func aDryRunDecidesEveryLineAndCommitsNothing() async throws {
        let fixture = try await Fixture()
        let before = try await fixture.snapshot()
        let report = try await backfill(fixture, dryRun: true).run(lines: [Self.investigation, Self.closed, "{}"])
        #expect(report.imported == 2 && report.events == 14 && report.rejected.map(\.line) == [3])
        #expect(try await fixture.snapshot() == before)
        #expect(try await fixture.store.count(CasePlatformSchema.importedRecords.name, filter: [:]) == 0)
    }

    /// An import of the same source that committed between this run's read of what was imported
    /// and its commit: the batch collides, and its cases are committed one by one, the taken
    /// ones counted as already imported.
    @Test func aBatchThatACompetingImportCollidesWithIsCommittedCaseByCase() async throws {
        let fixture = try await Fixture()
        _ = try await backfill(fixture).run(lines: [Self.line("LEG-2")])
        let blind = BlindToImports(base: fixture.store)
        let report = try await backfill(fixture, store: blind).run(lines: (1...3).map { Self.line("LEG-\($0)") })
        #expect(report.imported == 2 && report.alreadyImported == 1 && report.rejected.isEmpty)
        #expect(try await fixture.store.count("cases", filter: [:]) == 3)
        #expect(try await fixture.store.count(CasePlatformSchema.importedRecords.name, filter: [:]) == 3)
    }

    @Test func anInvalidSourceIsRefusedBeforeAnythingIsRead() async throws {
        let fixture = try await Fixture()
        await expectDomainError(.invalid, field: "source") {
            _ = try await backfill(fixture, source: "Legacy CRM").run(lines: [Self.line("LEG-1")])
        }
    }

    /// Hides what was imported from the run's first read, as a competing import that commits
    /// right after it would.
    struct BlindToImports: CanonicalStoreWrapper {
        let base: any CanonicalStore
        func fetchAll(_ query: RowQuery) async throws -> [Row] {
            query.table == CasePlatformSchema.importedRecords.name ? [] : try await base.fetchAll(query)
        }
    }
}
