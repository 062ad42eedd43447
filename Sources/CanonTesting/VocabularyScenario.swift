import Canon
import CasePlatform
import Foundation
import Testing

/// The purge scenario of the search vocabulary tests, shared by the engines' suites (each then
/// reads its own engine's vocabulary rows): two cases share "complaint"; the first alone has
/// "zlatkovic" and is purged.
public enum VocabularyScenario {
    public static func run(canonical: any CanonicalStore, search: any SearchStore) async throws {
        let commands = CaseCommands(store: canonical)
        let sam = User(id: "sam", displayName: "Sam", role: .supervisor, team: "financial-crime", clearance: 3)
        let lena = User(id: "lena", displayName: "Lena", role: .legal, team: nil, clearance: 3)
        for user in [sam, lena] { _ = try await commands.registerUser(user) }
        let purged = try await commands.openCase(
            OpenCaseRequest(title: "Zlatkovic tariff complaint", summary: "s", sector: "energy", region: "north", priority: "low"), by: sam).id
        _ = try await commands.openCase(
            OpenCaseRequest(title: "Routine billing complaint", summary: "s", sector: "energy", region: "north", priority: "low"), by: sam)
        try await apply(search, from: canonical)
        for step in ["triage", "investigation", "enforcement", "closed"] {
            _ = try await commands.transition(purged, TransitionRequest(to: step, reason: "r"), by: sam)
        }
        _ = try await commands.purge(purged, reason: "retention period over", by: lena)
        try await apply(search, from: canonical)
        #expect(try await search.document(purged) == nil)
    }

    public static func apply(_ store: any ProjectionStore, from source: any CanonicalStore) async throws {
        while true {
            let checkpoint = try await store.checkpoint()
            let events = try await source.events(after: checkpoint.position, limit: 1000)
            guard let last = events.last else { return }
            try await store.apply(events, from: checkpoint.position, to: Checkpoint(position: last.position, committedAt: last.committedAt))
        }
    }
}
