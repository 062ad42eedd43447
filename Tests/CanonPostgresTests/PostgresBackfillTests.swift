import Canon
@testable import CanonPostgres
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// `canon backfill cases` on a real PostgreSQL canonical store: the same import as on SQLite
/// (`BackfillTests`), and the record of what was imported is append-only in the database.
@Suite("PostgreSQL backfill (real server)", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipMessage)))
struct PostgresBackfillTests {
    static func line(_ externalID: String, status: String = "enforcement") -> String {
        #"{"external_id": "\#(externalID)", "title": "Legacy case \#(externalID)", "sector": "retail", "region": "east", "priority": "medium", "team": "financial-crime", "status": "\#(status)", "opened_at": "2022-05-01T12:00:00Z", "parties": [{"kind": "organisation", "name": "Acme \#(externalID)", "role": "subject"}]}"#
    }

    @Test func casesArriveOnceWithTheirEventsAndTheImportRecordIsAppendOnly() async throws {
        let url = try await PostgresTestServer.createDatabase()
        let canonical = try await PostgresCanonicalStore(url: url, migrations: CasePlatformSchema.migrations)
        let admin = CanonPostgres.PostgresDatabase(url: url, maximumConnections: 1)
        defer { admin.close() }
        let backfill = CaseBackfill(store: canonical, options: .init(source: "legacy-crm", batchSize: 2))
        let lines = (1...5).map { Self.line("LEG-\($0)") } + [Self.line("LEG-6", status: "paused")]

        let first = try await backfill.run(lines: lines)
        #expect(first.imported == 5 && first.rejected.map(\.line) == [6] && first.rejected.first?.field == "status")
        #expect(first.events == 5 * 6, "opened, party registered and linked, three transitions")
        #expect(try await canonical.count("cases", filter: ["status": .text("enforcement")]) == 5)
        let id = try #require(try await CaseBackfill.importedCase(source: "legacy-crm", externalID: "LEG-3", in: canonical))
        let types = try await canonical.events(in: Case.streamID(id), through: try await canonical.headPosition()).map(\.type)
        #expect(types == [CaseEvents.caseOpened, CaseEvents.casePartyLinked] + Array(repeating: CaseEvents.caseStatusChanged, count: 3))

        let again = try await backfill.run(lines: lines)
        #expect(again.imported == 0 && again.alreadyImported == 5 && again.position == nil)
        #expect(try await canonical.count("cases", filter: [:]) == 5)

        for statement in ["UPDATE imported_records SET case_id = 'x' WHERE external_id = 'LEG-1'", "DELETE FROM imported_records WHERE external_id = 'LEG-1'"] {
            let refused = await #expect(throws: (any Error).self, "the import record is append-only") { try await admin.execute(statement) }
            #expect((refused as? CanonicalStoreError)?.code == .appendOnlyViolation, "\(String(reflecting: refused as Any))")
        }
        #expect(try await canonical.count(CasePlatformSchema.importedRecords.name, filter: [:]) == 5)
    }
}
