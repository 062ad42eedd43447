import ArgumentParser
import Embeddings
import Foundation

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed texts with the sentence-embedding model (all-MiniLM-L6-v2, in Swift on OpenBLAS).",
        discussion: "Prints one JSON object per text with the model identity. With --similarity A B, prints their cosine similarity. Install the model with scripts/setup-model.")

    @Argument(help: "The texts to embed.")
    var texts: [String] = []

    @Option(name: .long, parsing: .upToNextOption, help: "Two texts: print their cosine similarity.")
    var similarity: [String] = []

    @Option(name: .long, help: "The model directory (default: $CANON_MODEL_DIR or ~/.cache/canon/models/all-MiniLM-L6-v2).")
    var model: String?

    func validate() throws {
        if !similarity.isEmpty && similarity.count != 2 { throw ValidationError("--similarity takes exactly two texts; got \(similarity.count)") }
        if similarity.isEmpty && texts.isEmpty { throw ValidationError("give at least one text to embed, or --similarity A B") }
    }

    struct Output: Encodable {
        var model: EmbeddingModelIdentity
        var text: String
        var tokens: Int
        var embedding: [Float]
    }

    func run() throws {
        let embedder: SentenceEmbedder
        do {
            embedder = try SentenceEmbedder(directory: model ?? SentenceEmbedder.defaultDirectory)
        } catch {
            throw ValidationError(error.message)
        }
        if similarity.count == 2 {
            let vectors = embedder.embed(similarity)
            say(String(format: "%.6f", SentenceEmbedder.cosine(vectors[0], vectors[1])))
            return
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for (text, vector) in zip(texts, embedder.embed(texts)) {
            let line = Output(model: embedder.identity, text: text, tokens: embedder.tokenizer.encode(text).count, embedding: vector)
            say(String(decoding: try encoder.encode(line), as: UTF8.self))
        }
    }
}
