import Embeddings
import Foundation
import Testing

/// The model installed by scripts/setup-model (scripts/test runs it). Tests that need it skip
/// with a message when it is absent, except in CI, where its absence fails.
enum Model {
    static let directory = SentenceEmbedder.defaultDirectory
    static var installed: Bool { FileManager.default.fileExists(atPath: directory + "/model.safetensors") }
    static let embedder: SentenceEmbedder? = try? SentenceEmbedder(directory: directory)

    struct Reference: Decodable {
        struct Item: Decodable {
            var text: String
            var input_ids: [Int32]
            var embedding: [Float]
        }
        var items: [Item]
        var similarity: [[Float]]
        var model_safetensors_sha256: String
    }

    /// `../shared/reference/minilm-reference.json`, copied beside this file.
    static let reference: Reference = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("minilm-reference.json")
        return try! JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }()
}

@Suite("Sentence embeddings (MiniLM)")
struct SentenceEmbedderTests {
    @Test func theModelIsInstalledInCI() {
        if ProcessInfo.processInfo.environment["CI"] != nil {
            #expect(Model.installed, "CI must run the embedding tests: scripts/test runs scripts/setup-model")
        }
        #expect(Model.reference.model_safetensors_sha256 == EmbeddingModelIdentity.miniLM.weightsSHA256)
    }

    @Test(.enabled(if: Model.installed, "run scripts/setup-model to install the model"))
    func tokenIDsMatchTheReference() throws {
        let embedder = try #require(Model.embedder)
        for item in Model.reference.items {
            #expect(embedder.tokenizer.encode(item.text) == item.input_ids, "\(item.text)")
        }
    }

    @Test(.enabled(if: Model.installed, "run scripts/setup-model to install the model"))
    func embeddingsMatchTheReference() throws {
        let embedder = try #require(Model.embedder)
        let vectors = embedder.embed(Model.reference.items.map(\.text))
        for (vector, item) in zip(vectors, Model.reference.items) {
            #expect(vector.count == 384)
            let cosine = SentenceEmbedder.cosine(vector, item.embedding)
            #expect(cosine >= 0.9999, "\(item.text): cosine \(cosine)")
            let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 1e-4)
        }
        for i in 0..<3 {
            for j in 0..<3 {
                let similarity = SentenceEmbedder.cosine(vectors[i], vectors[j])
                #expect(abs(similarity - Model.reference.similarity[i][j]) < 1e-3, "[\(i)][\(j)] \(similarity)")
            }
        }
    }

    @Test(.enabled(if: Model.installed, "run scripts/setup-model to install the model"))
    func paddingInABatchDoesNotChangeAnEmbedding() throws {
        let embedder = try #require(Model.embedder)
        let texts = ["short", "a considerably longer sentence about unlicensed lending to small businesses in the north", "mid length text here"]
        let batched = embedder.embed(texts, batchSize: 32)
        for (text, vector) in zip(texts, batched) {
            let alone = embedder.embed([text], batchSize: 1)[0]
            #expect(SentenceEmbedder.cosine(alone, vector) > 0.99999, "\(text)")
        }
    }

    @Test func aMissingModelIsAClearError() {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("canon-no-model-\(UUID().uuidString)").path
        do {
            _ = try SentenceEmbedder(directory: directory)
            Issue.record("loaded a model from an empty directory")
        } catch {
            #expect(error.code == .modelMissing)
            #expect(error.message.contains("scripts/setup-model"))
        }
    }

    @Test(.enabled(if: Model.installed, "run scripts/setup-model to install the model"))
    func aCorruptModelIsAClearErrorNotACrash() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("canon-corrupt-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(atPath: Model.directory + "/vocab.txt", toPath: directory.appendingPathComponent("vocab.txt").path)
        let weights = directory.appendingPathComponent("model.safetensors")
        let real = try Data(contentsOf: URL(fileURLWithPath: Model.directory + "/model.safetensors"), options: .alwaysMapped)
        let cases: [(String, Data, EmbeddingError.Code)] = [
            ("garbage", Data(repeating: 0x5A, count: 4096), .corruptModel),
            ("short", Data([1, 2, 3]), .corruptModel),
            ("truncated", real.prefix(1_000_000), .corruptModel),
            ("bad header", Data([16, 0, 0, 0, 0, 0, 0, 0]) + Data("{not json at all}".utf8), .corruptModel),
        ]
        for (name, bytes, code) in cases {
            try bytes.write(to: weights)
            do {
                _ = try SentenceEmbedder(directory: directory.path)
                Issue.record("\(name): loaded a corrupt model")
            } catch {
                #expect(error.code == .checksumMismatch, "\(name): checked by SHA-256 first")
            }
            do {
                _ = try SentenceEmbedder(directory: directory.path, verifyChecksum: false)
                Issue.record("\(name): loaded a corrupt model without the checksum")
            } catch {
                #expect(error.code == code || error.code == .missingTensor, "\(name): \(error)")
            }
        }
    }
}

@Suite("WordPiece tokenizer")
struct WordPieceTokenizerTests {
    /// Expected ids from the model's own tokenizer.json run by Hugging Face `tokenizers`.
    @Test(.enabled(if: Model.installed, "run scripts/setup-model to install the model"), arguments: [
        ("Café déjà vu, naïve résumé!", [101, 7668, 2139, 3900, 24728, 1010, 15743, 13746, 999, 102]),
        ("北京欢迎你", [101, 1781, 1755, 100, 100, 100, 102]),
        ("I love pizza 🍕 and 🎉!", [101, 1045, 2293, 10733, 100, 1998, 100, 999, 102]),
        ("Hello,world...(test)--done?!", [101, 7592, 1010, 2088, 1012, 1012, 1012, 1006, 3231, 1007, 1011, 1011, 2589, 1029, 999, 102]),
        ("don't stop: $5.00 @home #1", [101, 2123, 1005, 1056, 2644, 1024, 1002, 1019, 1012, 4002, 1030, 2188, 1001, 1015, 102]),
        ("Ünïcödé ÅNGSTRÖM", [101, 27260, 17076, 15687, 102]),
        ("tab\there\nnewline\u{00a0}nbsp\u{200b}zero-width", [101, 21628, 2182, 2047, 4179, 1050, 5910, 2361, 6290, 2080, 1011, 9381, 102]),
        ("Ｆｕｌｌｗｉｄｔｈ ＡＢＣ", [101, 100, 100, 102]),
        ("naïve" + String(repeating: "x", count: 120), [101, 100, 102]),
        ("", [101, 102]),
    ] as [(String, [Int32])])
    func edgeCasesMatchTheReferenceTokenizer(_ input: (String, [Int32])) throws {
        let tokenizer = try #require(Model.embedder).tokenizer
        #expect(tokenizer.encode(input.0) == input.1)
    }

    @Test(.enabled(if: Model.installed, "run scripts/setup-model to install the model"))
    func longInputIsTruncatedAt256Tokens() throws {
        let tokenizer = try #require(Model.embedder).tokenizer
        let ids = tokenizer.encode(String(repeating: "evidence of unlicensed lending ", count: 200))
        #expect(ids.count == 256)
        #expect(ids.first == 101 && ids.last == 102)
    }

    @Test func worksOnASmallVocabularyWithoutTheModel() throws {
        let vocabulary: [String: Int32] = ["[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "un": 4, "##aff": 5, "##able": 6, ",": 7, "cafe": 8]
        let tokenizer = try WordPieceTokenizer(vocabulary: vocabulary, maxLength: 6)
        #expect(tokenizer.encode("Unaffable, CAFÉ") == [2, 4, 5, 6, 7, 3], "truncated to 6 with [SEP] kept")
        #expect(tokenizer.encode("unknown") == [2, 1, 3], "a word it cannot cover is one [UNK]")
        #expect(throws: EmbeddingError.self) { try WordPieceTokenizer(vocabulary: ["a": 0]) }
    }
}
