import Canon
import Embeddings
import Foundation
import Synchronization

/// The sentence-embedding model as the vector projection uses it.
public struct MiniLMTextEmbedder: TextEmbedder {
    public let embedder: SentenceEmbedder

    public init(_ embedder: SentenceEmbedder) { self.embedder = embedder }

    public var model: EmbeddingModelDescriptor {
        let identity = embedder.identity
        return EmbeddingModelDescriptor(name: identity.name, version: identity.version, weightsSHA256: identity.weightsSHA256, dimensions: identity.dimensions)
    }

    public func embed(_ texts: [String]) -> [[Float]] { embedder.embed(texts, batchSize: 32) }
}

/// Loads the model once per process and directory; a missing or corrupt model is remembered as
/// the reason semantic retrieval is unavailable, and everything else keeps working.
public enum SemanticModel {
    private static let loaded = Mutex<[String: Result<MiniLMTextEmbedder, EmbeddingError>]>([:])

    public static func load(directory: String = SentenceEmbedder.defaultDirectory) -> Result<MiniLMTextEmbedder, EmbeddingError> {
        if let cached = loaded.withLock({ $0[directory] }) { return cached }
        let result: Result<MiniLMTextEmbedder, EmbeddingError>
        do {
            result = .success(MiniLMTextEmbedder(try SentenceEmbedder(directory: directory)))
        } catch {
            result = .failure(error)
        }
        loaded.withLock { $0[directory] = result }
        return result
    }
}
