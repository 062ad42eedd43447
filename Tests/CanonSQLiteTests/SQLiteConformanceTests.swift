import Canon
import CanonTesting
import Testing

@Suite("SQLite canonical store conformance (real file, WAL)")
struct SQLiteConformanceTests {
    @Test(arguments: CanonicalStoreConformance.Check.allCases)
    func conformance(_ check: CanonicalStoreConformance.Check) async throws {
        try await CanonicalStoreConformance.run(check, on: .sqlite)
    }
}
