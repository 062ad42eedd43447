import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// A deterministic stand-in for a model: each known word owns one dimension.
struct KeywordEmbedder: TextEmbedder {
    static let words = ["bank", "cash", "email", "delete", "drums", "river", "loan", "licence"]
    let model: EmbeddingModelDescriptor

    init(version: String = "a") {
        model = EmbeddingModelDescriptor(name: "test/keywords", version: version, weightsSHA256: String(repeating: version, count: 64).prefix(64).description, dimensions: 8)
    }

    func embed(_ texts: [String]) -> [[Float]] {
        texts.map { text in
            let lowered = text.lowercased()
            var vector = Self.words.map { lowered.contains($0) ? Float(1) : 0 }
            let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm == 0 { vector[0] = 1e-3 } else { vector = vector.map { $0 / norm } }
            return vector
        }
    }
}

@Suite("SQLite vector store")
struct VectorStoreTests {
    static func evidenceEvent(_ position: Int64, id: String, caseID: String, title: String, description: String, version: Int64 = 1) throws -> EventEnvelope {
        let payload = try JSONSerialization.data(withJSONObject: [
            "id": id, "case_id": caseID, "title": title, "description": description, "media_type": "text/plain", "size_bytes": 1,
            "sha256": String(repeating: "a", count: 64), "version": version, "added_at": Timestamp.iso8601(Date()), "added_by": "ivan",
        ])
        return EventEnvelope(
            position: OutboxPosition(position), streamID: StreamID("case-\(caseID)"), streamVersion: position, type: CaseEvents.caseEvidenceAdded,
            schemaVersion: 1, payload: payload, actor: "ivan", correlationID: nil, causationID: nil, occurredAt: Date(), committedAt: Date(), priority: false)
    }

    static func events() throws -> [EventEnvelope] {
        [
            try evidenceEvent(1, id: "e1", caseID: "c1", title: "Bank statements", description: "cash deposits"),
            try evidenceEvent(2, id: "e2", caseID: "c1", title: "Email", description: "asks staff to delete records"),
            try evidenceEvent(3, id: "e3", caseID: "c2", title: "Photos", description: "drums by the river"),
        ]
    }

    @Test func applyStoresOneVectorPerDocumentWithItsModelAndSourceVersion() async throws {
        let scratch = try TemporaryDirectory()
        let store = try SQLiteVectorStore(path: scratch.file("v.sqlite"), projection: EvidenceSemanticProjection(), embedder: KeywordEmbedder())
        let events = try Self.events()
        try await store.apply(events, from: .start, to: Checkpoint(position: OutboxPosition(3), committedAt: Date()))
        // A duplicate delivery and an older version change nothing.
        try await store.apply([try Self.evidenceEvent(4, id: "e1", caseID: "c1", title: "Bank", description: "old", version: 0)],
                              from: OutboxPosition(3), to: Checkpoint(position: OutboxPosition(4), committedAt: Date()))
        #expect(store.count == 3)
        let hits = try await store.nearest(to: KeywordEmbedder().embed(["cash at the bank"])[0], limit: 2)
        #expect(hits.map(\.key) == ["e1", "e2"] || hits.first?.key == "e1")
        #expect(hits.first?.group == "c1")
        #expect(hits.first?.sourceVersion == 1)
        #expect(hits.first?.model == KeywordEmbedder().model)
        #expect((hits.first?.score ?? 0) > 0.99)
        let river = try await store.nearest(to: KeywordEmbedder().embed(["river drums"])[0], limit: 1)
        #expect(river.map(\.key) == ["e3"])
        // A newer version replaces the vector.
        try await store.apply([try Self.evidenceEvent(5, id: "e3", caseID: "c2", title: "Loan", description: "licence missing", version: 2)],
                              from: OutboxPosition(4), to: Checkpoint(position: OutboxPosition(5), committedAt: Date()))
        let loan = try await store.nearest(to: KeywordEmbedder().embed(["loan licence"])[0], limit: 1)
        #expect(loan.first?.key == "e3" && loan.first?.sourceVersion == 2)
        #expect(try await store.checkpoint().position == OutboxPosition(5))
    }

    @Test func reopeningLoadsTheIndexFromTheFile() async throws {
        let scratch = try TemporaryDirectory()
        do {
            let store = try SQLiteVectorStore(path: scratch.file("v.sqlite"), projection: EvidenceSemanticProjection(), embedder: KeywordEmbedder())
            try await store.apply(try Self.events(), from: .start, to: Checkpoint(position: OutboxPosition(3), committedAt: Date()))
        }
        let reopened = try SQLiteVectorStore(path: scratch.file("v.sqlite"), projection: EvidenceSemanticProjection(), embedder: KeywordEmbedder())
        #expect(reopened.count == 3)
        #expect(try await reopened.nearest(to: KeywordEmbedder().embed(["email delete"])[0], limit: 1).first?.key == "e2")
    }

    /// A repair made by another process (`canon repair` while `canon serve` runs) is served:
    /// the serving process's matrix follows the file. And a purge leaves the matrix at once.
    @Test func aRepairByAnotherProcessIsServedAndAPurgeLeavesTheMatrix() async throws {
        let scratch = try TemporaryDirectory()
        let path = scratch.file("v.sqlite")
        let serving = try SQLiteVectorStore(path: path, projection: EvidenceSemanticProjection(), embedder: KeywordEmbedder())
        let events = try Self.events()
        try await serving.apply(events, from: .start, to: Checkpoint(position: OutboxPosition(3), committedAt: Date()))
        let river = KeywordEmbedder().embed(["river drums"])[0]
        #expect(try await serving.nearest(to: river, limit: 1).first?.key == "e3")

        // Another process's store on the same file repairs e3: its row was lost.
        let repairing = try SQLiteVectorStore(path: path, projection: EvidenceSemanticProjection(), embedder: KeywordEmbedder())
        try await repairing.repair(keys: ["e3"], history: [], at: OutboxPosition(3))
        #expect(repairing.count == 2)
        #expect(try await serving.nearest(to: river, limit: 3).map(\.key).contains("e3") == false, "the serving process follows the file")
        #expect(serving.count == 2)
        try await repairing.repair(keys: ["e3"], history: events, at: OutboxPosition(3))
        #expect(try await serving.nearest(to: river, limit: 1).first?.key == "e3")

        // A purge (the case's last event) removes its vectors from the matrix, whichever row they held.
        var purge = events[0]
        purge.position = OutboxPosition(4)
        purge.type = CaseEvents.casePurged
        purge.payload = try JSONSerialization.data(withJSONObject: ["case_id": "c1", "evidence_ids": ["e1", "e2"], "reason": "r"])
        try await serving.apply([purge], from: OutboxPosition(3), to: Checkpoint(position: OutboxPosition(4), committedAt: Date()))
        #expect(serving.count == 1)
        let left = try await serving.nearest(to: KeywordEmbedder().embed(["cash bank email"])[0], limit: 3)
        #expect(left.map(\.key) == ["e3"])
        #expect(try await serving.nearest(to: river, limit: 1).first?.key == "e3", "the moved row still answers for its key")
    }

    @Test func aStoreRefusesToOpenWithAnotherModel() async throws {
        let scratch = try TemporaryDirectory()
        _ = try SQLiteVectorStore(path: scratch.file("v.sqlite"), projection: EvidenceSemanticProjection(), embedder: KeywordEmbedder(version: "a"))
        do {
            _ = try SQLiteVectorStore(path: scratch.file("v.sqlite"), projection: EvidenceSemanticProjection(), embedder: KeywordEmbedder(version: "b"))
            Issue.record("mixed two models in one store")
        } catch let error as ProjectionError {
            #expect(error.message.contains("canon rebuild evidence-semantic"))
        }
    }

    @Test func aModelChangeIsABlueGreenRebuildThatComparesEqual() async throws {
        let scratch = try TemporaryDirectory()
        let live = try SQLiteVectorStore(path: scratch.file("v1.sqlite"), projection: EvidenceSemanticProjection(version: 1), embedder: KeywordEmbedder(version: "a"))
        let next = try SQLiteVectorStore(path: scratch.file("v2.sqlite"), projection: EvidenceSemanticProjection(version: 2), embedder: KeywordEmbedder(version: "b"))
        let events = try Self.events()
        let checkpoint = Checkpoint(position: OutboxPosition(3), committedAt: Date())
        try await live.apply(events, from: .start, to: checkpoint)
        try await next.apply(events, from: .start, to: checkpoint)
        let liveSummary = try await live.contentSummary()
        let nextSummary = try await next.contentSummary()
        #expect(liveSummary == nextSummary, "same documents, another model: the rebuild may switch")
        #expect(try await next.nearest(to: KeywordEmbedder().embed(["bank"])[0], limit: 1).first?.model.version == "b")
        #expect(try await live.nearest(to: KeywordEmbedder().embed(["bank"])[0], limit: 1).first?.model.version == "a")
    }

    @Test func aQueryWithTheWrongDimensionsIsATypedError() async throws {
        let scratch = try TemporaryDirectory()
        let store = try SQLiteVectorStore(path: scratch.file("v.sqlite"), projection: EvidenceSemanticProjection(), embedder: KeywordEmbedder())
        await #expect(throws: ProjectionError.self) { try await store.nearest(to: [1, 2, 3], limit: 1) }
    }

    /// Embedding a batch takes a model tens or hundreds of milliseconds of CPU. Done on the
    /// concurrency runtime's cooperative threads (one per core), as many agents embedding at
    /// once as there are cores would stop every other task in the process: HTTP handlers, the
    /// other agents, this test.
    @Test func embeddingDoesNotHoldTheCooperativeThreads() async throws {
        let scratch = try TemporaryDirectory()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let (entries, entered) = AsyncStream<Void>.makeStream()
        let gate = GatedEmbedder { entered.yield() }
        // The deadline: if embedding held the cooperative threads, nothing async could run to
        // open the gate, so a dispatch timer opens it and says so.
        DispatchQueue.global().asyncAfter(deadline: .now() + 20) { gate.open(byDeadline: true) }
        let stores = try (0..<cores).map { index in
            try SQLiteVectorStore(path: scratch.file("v\(index).sqlite"), projection: EvidenceSemanticProjection(), embedder: gate)
        }
        let events = try Self.events()
        let applying = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores {
                    group.addTask { try await store.apply(events, from: .start, to: Checkpoint(position: OutboxPosition(3), committedAt: Date())) }
                }
                try await group.waitForAll()
            }
        }
        // Every store is now inside the embedder, one per core, and this task still runs.
        var seen = 0
        for await _ in entries {
            seen += 1
            if seen == cores { break }
        }
        #expect(!gate.openedByDeadline, "\(cores) batches being embedded stopped every other task until the deadline")
        gate.open(byDeadline: false)
        try await applying.value
        for store in stores { #expect(store.count == 3) }
    }
}

/// An embedder that blocks in `embed` until its gate opens, like a model busy with a large batch.
final class GatedEmbedder: TextEmbedder, @unchecked Sendable {
    let model = KeywordEmbedder().model
    private let condition = NSCondition()
    private var isOpen = false
    private var deadline = false
    private let entered: @Sendable () -> Void

    init(entered: @escaping @Sendable () -> Void) { self.entered = entered }

    var openedByDeadline: Bool { condition.withLock { deadline } }

    func open(byDeadline: Bool) {
        condition.withLock {
            guard !isOpen else { return }
            isOpen = true
            deadline = byDeadline
            condition.broadcast()
        }
    }

    func embed(_ texts: [String]) -> [[Float]] {
        entered()
        condition.withLock { while !isOpen { condition.wait() } }
        return KeywordEmbedder().embed(texts)
    }
}
