import Canon
import CasePlatform
import CanonTesting
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
            "2 LEG-3 invalid title", "3 - invalidJSON -", "5 LEG-4 invalid opend_at", "6 LEG-5 invalid status",
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
        #expect(report.events == 15 && report.position == head)
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
        // A signal arrives once the first batch has committed: the run stops before line 3.
        let stopped = try await backfill(fixture, batchSize: 2).run(
            lines: lines, progress: { progress in progressed.withLock { $0.append(progress.linesRead) } },
            stop: { progressed.withLock { !$0.isEmpty } })
        #expect(stopped.stopped && stopped.imported == 2 && stopped.linesRead == 2)
        #expect(progressed.withLock { $0 } == [2, 2])
        #expect(try await fixture.store.count("cases", filter: [:]) == 2)

        let rest = try await backfill(fixture, batchSize: 2).run(lines: lines)
        #expect(!rest.stopped && rest.imported == 3 && rest.alreadyImported == 2)
        #expect(try await fixture.store.count("cases", filter: [:]) == 5)

        // A stop after the last line is no stop: nothing was left to do.
        let finished = try await backfill(fixture, batchSize: 1).run(
            lines: [Self.line("LEG-6")], progress: { _ in progressed.withLock { $0.append(0) } }, stop: { progressed.withLock { $0.last == 0 } })
        #expect(!finished.stopped && finished.imported == 1)
    }

    /// External ids are compared as they are recorded, trimmed; a duplicate says where the first
    /// copy is, and a line rejected first does not make its corrected copy a duplicate.
    @Test func externalIDsAreTrimmedAndADuplicateNamesItsFirstLine() async throws {
        let fixture = try await Fixture()
        let first = try await backfill(fixture).run(lines: [
            Self.line(" LEG-1 "), Self.line("LEG-1"), Self.line("LEG-2", status: "paused"), Self.line("LEG-2"),
        ])
        #expect(first.imported == 2 && first.rejected.map(\.line) == [2, 3])
        #expect(first.rejected.first?.message.contains("appears twice in the input (first at line 1)") == true, "\(first.rejected)")
        #expect(try await CaseBackfill.importedCase(source: "legacy-crm", externalID: "LEG-1", in: fixture.store) != nil)
        let again = try await backfill(fixture).run(lines: [Self.line("LEG-1 ")])
        #expect(again.alreadyImported == 1 && again.rejected.isEmpty && again.imported == 0)
    }

    /// The store failing part-way ends the run with what it did: the committed batches stay and
    /// the report says so.
    @Test func aStoreFailureEndsTheRunWithTheReportOfWhatCommitted() async throws {
        let fixture = try await Fixture()
        let failing = FailsSecondCommit(base: fixture.store)
        let lines = (1...4).map { Self.line("LEG-\($0)") } + ["{bad"]
        do {
            _ = try await backfill(fixture, batchSize: 2, store: failing).run(lines: lines)
            Issue.record("the run should have ended with the store's failure")
        } catch let interrupted as CaseBackfill.Interrupted {
            #expect(interrupted.report.imported == 2 && interrupted.report.linesRead == 4)
            #expect((interrupted.underlying as? CanonicalStoreError)?.code == .storage)
        }
        #expect(try await fixture.store.count("cases", filter: [:]) == 2)
        let rest = try await backfill(fixture, batchSize: 2).run(lines: lines)
        #expect(rest.imported == 2 && rest.alreadyImported == 2 && rest.rejected.map(\.line) == [5])
    }

    /// Fails every batch commit after the first, as a store that goes away would.
    struct FailsSecondCommit: CanonicalStoreWrapper {
        final class Count: Sendable { let value = Mutex(0) }
        let base: any CanonicalStore
        let commits = Count()
        func commit(batch: [UnitOfWork]) async throws -> [CommitResult] {
            guard commits.value.withLock({ $0 += 1; return $0 }) == 1 else { throw CanonicalStoreError.storage("the disk went away (test)") }
            return try await base.commit(batch: batch)
        }
    }

    /// A file as `canon backfill` reads it: CRLF and LF endings, a last line without one, a line
    /// across chunk boundaries, and bytes that are not UTF-8, which are rejected, not repaired.
    @Test func textLinesReadEveryLineAndFlagInvalidUTF8() async throws {
        let directory = try TemporaryDirectory(prefix: "text-lines")
        let path = directory.file("cases.jsonl")
        var bytes = Array("first\r\nsecond line is longer than a chunk\n\n".utf8)
        bytes += [0x62, 0x61, 0x64, 0xFF, 0xFE, 0x0A]
        bytes += Array("last".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let lines = try TextLines(path: path, chunkSize: 3)
        #expect(lines.count == 5)
        let read = Array(lines)
        #expect(read.map(\.text).prefix(3) == ["first", "second line is longer than a chunk", ""] && read.last?.text == "last")
        #expect(read.map(\.isValidUTF8) == [true, true, true, false, true])
        #expect(lines.failure.value == nil)

        let fixture = try await Fixture()
        try Data((Self.line("LEG-1") + "\n").utf8 + [0x7B, 0xFF, 0x7D, 0x0A]).write(to: URL(fileURLWithPath: path))
        let report = try await backfill(fixture).run(input: try TextLines(path: path))
        #expect(report.imported == 1 && report.rejected.map(\.code) == ["invalidEncoding"] && report.rejected.first?.line == 2)

        // A line over the limit is not held: it is rejected with its number, and the next one is read.
        var long = Array("{\"title\": \"".utf8) + [UInt8](repeating: 0x61, count: (16 << 20) + 10) + Array("\"}\n".utf8)
        long += Array((Self.line("LEG-9") + "\n").utf8)
        try Data(long).write(to: URL(fileURLWithPath: path))
        let afterLong = try await backfill(fixture).run(input: try TextLines(path: path))
        #expect(afterLong.rejected.map(\.code) == ["lineTooLong"] && afterLong.rejected.first?.line == 1 && afterLong.imported == 1, "\(afterLong.rejected.map { ($0.line, $0.code, $0.message.prefix(80)) }) \(afterLong.imported) \(afterLong.linesRead)")
        // In small chunks the long line is dropped as it is read (not held), both when a newline
        // ends it and when the file does.
        let small = Array(try TextLines(path: path, chunkSize: 4096))
        #expect(small.map(\.isTooLong) == [true, false] && small.last?.text == Self.line("LEG-9"))
        try Data(long.prefix((16 << 20) + 5)).write(to: URL(fileURLWithPath: path))   // inside the long line: no newline ends it
        let unended = Array(try TextLines(path: path, chunkSize: 4096))
        #expect(unended.count == 1 && unended.first?.isTooLong == true, "\(unended.map { ($0.isTooLong, $0.text.count) })")

        let empty = directory.file("empty.jsonl")
        try Data().write(to: URL(fileURLWithPath: empty))
        #expect(try TextLines(path: empty).count == 0 && Array(try TextLines(path: empty)).isEmpty)
        #expect(throws: TextLines.OpenError.self) { try TextLines(path: directory.url.path) }
        #expect(throws: TextLines.OpenError.self) { try TextLines(path: directory.file("missing.jsonl")) }
    }

    @Test func aDryRunDecidesEveryLineAndCommitsNothing() async throws {
        let fixture = try await Fixture()
        let before = try await fixture.snapshot()
        let report = try await backfill(fixture, dryRun: true).run(lines: [Self.investigation, Self.closed, "{}"])
        #expect(report.imported == 2 && report.events == 15 && report.rejected.map(\.line) == [3])
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
