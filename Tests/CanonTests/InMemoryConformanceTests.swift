import Canon
import CanonTesting
import Testing

@Suite("In-memory canonical store conformance")
struct InMemoryConformanceTests {
    @Test(arguments: CanonicalStoreConformance.Check.allCases)
    func conformance(_ check: CanonicalStoreConformance.Check) async throws {
        try await CanonicalStoreConformance.run(check, on: .inMemory)
    }
}
