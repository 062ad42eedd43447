import Canon
import CanonSQLite
import CasePlatform
import Embeddings
import Foundation

/// Benchmarks of semantic evidence retrieval: embedding throughput, and exact k-NN latency over a
/// large vector store, each beside its limit measured in the same run.
public struct SemanticBench: Sendable {
    public var scratch: DataDirectory

    public init(scratch: DataDirectory) { self.scratch = scratch }

    /// Evidence-like descriptions of 10–25 words, deterministic.
    public static func texts(_ count: Int, seed: UInt64 = 7) -> [String] {
        var generator = SeededGenerator(seed: seed)
        let subjects = ["Bank statements", "Email from the director", "Warehouse photographs", "Loan agreements", "Call recording",
                        "Server access logs", "Invoice bundle", "Witness statement", "Shipping manifest", "Board minutes"]
        let verbs = ["showing", "suggesting", "confirming", "describing", "recording", "listing"]
        let objects = ["repeated cash deposits just under the reporting threshold", "instructions to delete customer records before the inspection",
                       "unlabelled chemical drums stored next to a river", "high-interest loans issued without a consumer credit licence",
                       "pressure on an elderly customer to switch energy tariff", "personal data exported to an unknown foreign server",
                       "payments routed through three shell companies", "overtime hours never paid to seasonal workers",
                       "safety inspections signed without a site visit", "price coordination between two competing suppliers"]
        let tails = ["in the last quarter", "over two years", "during the audit period", "after the complaint was filed", "", "across several regions"]
        return (0..<count).map { _ in
            "\(subjects.randomElement(using: &generator)!) \(verbs.randomElement(using: &generator)!) \(objects.randomElement(using: &generator)!) \(tails.randomElement(using: &generator)!)"
                .trimmingCharacters(in: .whitespaces)
        }
    }

    public struct EmbedResult: Sendable {
        public var sentences: Int
        public var batchSize: Int
        public var meanTokens: Double
        public var seconds: Double
        public var sentencesPerSecond: Double { Double(sentences) / seconds }
        /// Floating-point operations per second achieved by the encoder (2·params·tokens, attention included roughly).
        public var gflops: Double
        /// The same GEMM shapes run back to back through cblas_sgemm alone: the limit for this machine.
        public var sgemmGflops: Double
    }

    public func embedThroughput(_ embedder: SentenceEmbedder, sentences: Int, batchSize: Int = 32) -> EmbedResult {
        let texts = Self.texts(sentences)
        _ = embedder.embed(Array(texts.prefix(batchSize)), batchSize: batchSize)   // warm-up
        let tokens = texts.reduce(0) { $0 + embedder.tokenizer.encode($1).count }
        let start = ContinuousClock.now
        _ = embedder.embed(texts, batchSize: batchSize)
        let seconds = (ContinuousClock.now - start).seconds
        // Per token per layer: 4·384² (Q, K, V, output) + 2·384·1536 (feed-forward) multiply-adds.
        let perToken = 6.0 * 2.0 * (4.0 * 384 * 384 + 2.0 * 384 * 1536)
        let flops = perToken * Double(tokens)
        return EmbedResult(
            sentences: sentences, batchSize: batchSize, meanTokens: Double(tokens) / Double(sentences), seconds: seconds,
            gflops: flops / seconds / 1e9, sgemmGflops: BLASKernels.sgemmGflops(rows: batchSize * max(1, tokens / sentences), inner: 384, outer: 1536))
    }

    public struct KNNResult: Sendable {
        public var vectors: Int
        public var queries: Int
        public var loadSeconds: Double
        public var p50: Double
        public var p95: Double
        public var p99: Double
        /// The same exact scan as one cblas_sgemv over the whole matrix: the limit.
        public var sgemvP50: Double
        public var sgemvP95: Double
    }

    /// Fills a vector store with `vectors` unit vectors through its normal apply path (random
    /// vectors: scan cost does not depend on content), then times exact k-NN queries made of real
    /// sentence embeddings.
    public func knnLatency(
        _ embedder: SentenceEmbedder, vectors: Int, queries: Int, k: Int = 10, progress: @Sendable (String) -> Void
    ) async throws -> KNNResult {
        let path = scratch.databaseFile(for: "bench-vectors").path
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let random = RandomUnitEmbedder(model: MiniLMTextEmbedder(embedder).model)
        let store = try SQLiteVectorStore(path: path, projection: EvidenceSemanticProjection(version: 1), embedder: random)
        let start = ContinuousClock.now
        var position: Int64 = 0
        let chunk = 5_000
        while position < Int64(vectors) {
            let now = Date()
            let events = try (0..<min(chunk, vectors - Int(position))).map { offset -> EventEnvelope in
                let index = position + Int64(offset) + 1
                let payload = try JSONSerialization.data(withJSONObject: [
                    "id": "ev-\(index)", "case_id": "case-\(index % 20_000)", "title": "t", "description": "d", "media_type": "application/pdf",
                    "size_bytes": 1, "sha256": String(repeating: "0", count: 64), "version": 1, "added_at": Timestamp.iso8601(now), "added_by": "bench",
                ])
                return EventEnvelope(
                    position: OutboxPosition(index), streamID: StreamID("case-\(index % 20_000)"), streamVersion: index, type: CaseEvents.caseEvidenceAdded,
                    schemaVersion: 1, payload: payload, actor: "bench", correlationID: nil, causationID: nil, occurredAt: now, committedAt: now,
                    priority: false)
            }
            let last = position + Int64(events.count)
            try await store.apply(events, from: OutboxPosition(position), to: Checkpoint(position: OutboxPosition(last), committedAt: Date()))
            position = last
            progress("stored \(position)/\(vectors) vectors")
        }
        let loadSeconds = (ContinuousClock.now - start).seconds
        let queryVectors = embedder.embed(Self.texts(min(queries, 500), seed: 11))
        let histogram = LockedHistogram()
        let limit = LockedHistogram()
        let matrix = store.matrixSnapshot()
        for index in 0..<queries {
            let query = queryVectors[index % queryVectors.count]
            let began = ContinuousClock.now
            _ = try await store.nearest(to: query, limit: k)
            histogram.record(ContinuousClock.now - began)
            let scanned = ContinuousClock.now
            BLASKernels.scan(matrix: matrix, rows: vectors, query: query)
            limit.record(ContinuousClock.now - scanned)
        }
        let searched = histogram.result(writes: queries, targetRate: 0, achievedRate: 0)
        let scan = limit.result(writes: queries, targetRate: 0, achievedRate: 0)
        return KNNResult(
            vectors: vectors, queries: queries, loadSeconds: loadSeconds, p50: searched.p50, p95: searched.p95, p99: searched.p99,
            sgemvP50: scan.p50, sgemvP95: scan.p95)
    }
}

/// Random unit vectors, standing in for the model where only the scan is measured.
struct RandomUnitEmbedder: TextEmbedder {
    let model: EmbeddingModelDescriptor

    func embed(_ texts: [String]) -> [[Float]] {
        var generator = SystemRandomNumberGenerator()
        return texts.map { _ in
            let raw = (0..<model.dimensions).map { _ in Float.random(in: -1...1, using: &generator) }
            let norm = raw.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return raw.map { $0 / norm }
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
