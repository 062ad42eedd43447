import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// The search store's priority path: permission changes applied ahead of the checkpoint, never
/// undone by the ordinary path folding older events, and kept for documents that do not exist yet.
@Suite("Priority path in the search store")
struct PriorityPathTests {
    static let investigator = User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2)

    @Test func aPermissionChangeAppliedAheadSurvivesTheOrdinaryPathAndWaitsForItsDocument() async throws {
        let scratch = try TemporaryDirectory()
        let canonical = try SQLiteCanonicalStore(path: scratch.file("canonical.sqlite"), migrations: CasePlatformSchema.migrations)
        let commands = CaseCommands(store: canonical)
        _ = try await commands.registerUser(Self.investigator)
        let lena = User(id: "lena", displayName: "Lena", role: .legal, team: nil, clearance: 3)
        _ = try await commands.registerUser(lena)
        let sam = User(id: "sam", displayName: "Sam", role: .supervisor, team: "financial-crime", clearance: 3)
        _ = try await commands.registerUser(sam)
        let store = try SQLiteSearchStore(path: scratch.file("search.sqlite"), projection: CaseSearchProjection())
        let request = OpenCaseRequest(title: "Ferry tariffs", summary: "s", sector: "energy", region: "north", priority: "low")
        let first = try await commands.openCase(request, by: Self.investigator)
        _ = try await commands.assign(first.id, AssignmentRequest(investigator: "ivan"), by: sam)
        _ = try await commands.restrict(first.id, RestrictionRequest(restricted: true, reason: "r", clearance: 3), by: lena)
        let second = try await commands.openCase(request, by: Self.investigator)
        _ = try await commands.restrict(second.id, RestrictionRequest(restricted: true, reason: "r"), by: lena)
        let events = try await canonical.events(after: .start, limit: 100)
        let outsider = SearchVisibility.scoped(teams: ["data-protection"], clearance: 3, supervised: [])

        // Only the first case's opening has been applied when the permission changes arrive.
        let opening = try #require(events.firstIndex { $0.position == first.position })
        try await store.apply(Array(events[...opening]), from: .start, to: Checkpoint(position: first.position, committedAt: nil))
        #expect(try await store.search(SearchQuery(text: "ferry", visibility: outsider)).hits.count == 1)
        try await store.applyPriority(events.filter(\.priority))
        #expect(try await store.search(SearchQuery(text: "ferry", visibility: outsider)).hits.isEmpty, "ahead of the checkpoint")
        #expect(try await store.checkpoint().position == first.position)

        // The ordinary path folds the older assignment: the restriction stays.
        let assignment = opening + 1
        try await store.apply([events[assignment]], from: first.position, to: Checkpoint(position: events[assignment].position, committedAt: nil))
        #expect(try await store.search(SearchQuery(text: "ferry", visibility: outsider)).hits.isEmpty, "not undone by an older event")
        #expect(try await store.document(first.id)?.clearance == 3)
        // A drift repair of the document at the checkpoint writes it in place: the restriction stays too.
        try await store.repair(keys: [first.id], history: Array(events[...assignment]), at: events[assignment].position)
        #expect(try await store.search(SearchQuery(text: "ferry", visibility: outsider)).hits.isEmpty, "not undone by a repair")
        #expect(try await store.document(first.id)?.clearance == 3)

        // The second case's opening arrives after its restriction was seen: it is created restricted.
        let rest = Array(events[(assignment + 1)...])
        let secondOpening = try #require(rest.firstIndex { $0.position == second.position })
        try await store.apply(Array(rest[...secondOpening]), from: events[assignment].position, to: Checkpoint(position: second.position, committedAt: nil))
        #expect(try await store.document(second.id)?.restricted == true, "the pending change is applied when the document is created")
        // And the whole stream applied in order ends in the same state as without the priority path.
        try await store.apply(Array(rest[(secondOpening + 1)...]), from: second.position, to: Checkpoint(position: events.last!.position, committedAt: nil))
        let fresh = try SQLiteSearchStore(path: scratch.file("fresh.sqlite"), projection: CaseSearchProjection())
        try await fresh.apply(events, from: .start, to: Checkpoint(position: events.last!.position, committedAt: nil))
        for id in [first.id, second.id] {
            let a = try await store.document(id), b = try await fresh.document(id)
            #expect(a?.restricted == b?.restricted && a?.clearance == b?.clearance && a?.facets == b?.facets)
        }
    }
}
