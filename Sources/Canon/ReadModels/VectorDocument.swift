/// The model that made a vector: stored beside every vector, so a model change shows, and is a
/// rebuild of the store (a new projection version), never a silent mix of two models.
public struct EmbeddingModelDescriptor: Hashable, Codable, Sendable, CustomStringConvertible {
    public var name: String
    public var version: String
    public var weightsSHA256: String
    public var dimensions: Int

    public init(name: String, version: String, weightsSHA256: String, dimensions: Int) {
        self.name = name
        self.version = version
        self.weightsSHA256 = weightsSHA256
        self.dimensions = dimensions
    }

    public var description: String { "\(name) (\(version), weights \(weightsSHA256.prefix(12))…)" }

    enum CodingKeys: String, CodingKey {
        case name, version, dimensions
        case weightsSHA256 = "weights_sha256"
    }
}

/// Turns texts into unit vectors. The vector projection embeds through it while it applies events.
public protocol TextEmbedder: Sendable {
    var model: EmbeddingModelDescriptor { get }
    func embed(_ texts: [String]) -> [[Float]]
}

/// One text a vector projection keeps a vector for.
public struct VectorDocument: Hashable, Sendable {
    /// The document's key (an evidence id).
    public var key: String
    /// The key of what it belongs to (a case id), used to filter and to refold a stream.
    public var group: String
    /// The version of the source document the text was taken from.
    public var sourceVersion: Int64
    public var text: String

    public init(key: String, group: String, sourceVersion: Int64, text: String) {
        self.key = key
        self.group = group
        self.sourceVersion = sourceVersion
        self.text = text
    }
}

/// A projection into vectors: which documents each event creates or replaces.
public protocol VectorProjection: Sendable {
    var identity: ProjectionIdentity { get }
    func documents(for event: EventEnvelope) throws -> [VectorDocument]

    /// The keys whose vectors `event` removes (a purge).
    func removedKeys(by event: EventEnvelope) -> [String]

    /// The events the projection handles (no documents and no removed keys for every other
    /// one): the agent reads only these. Every event unless a projection says otherwise.
    var selection: EventSelection { get }
}

extension VectorProjection {
    public var selection: EventSelection { .all }
    public func removedKeys(by event: EventEnvelope) -> [String] { [] }

    /// The documents a history leaves, newest version per key, removals applied in order.
    public func replay(_ history: [EventEnvelope]) throws -> [VectorDocument] {
        var latest: [String: VectorDocument] = [:]
        var order: [String] = []
        for event in history {
            for document in try documents(for: event) {
                if latest[document.key] == nil { order.append(document.key) }
                if (latest[document.key]?.sourceVersion ?? .min) <= document.sourceVersion { latest[document.key] = document }
            }
            for key in removedKeys(by: event) { latest[key] = nil }
        }
        return order.compactMap { latest[$0] }
    }
}

/// One nearest neighbour: its key, group, source version, cosine score and the model that made it.
public struct VectorHit: Hashable, Sendable {
    public var key: String
    public var group: String
    public var sourceVersion: Int64
    public var score: Float
    public var model: EmbeddingModelDescriptor

    public init(key: String, group: String, sourceVersion: Int64, score: Float, model: EmbeddingModelDescriptor) {
        self.key = key
        self.group = group
        self.sourceVersion = sourceVersion
        self.score = score
        self.model = model
    }
}

/// A vector store that can be searched: what the semantic route reads.
public protocol VectorStore: ProjectionStore {
    /// The model every vector in this store was made with.
    var model: EmbeddingModelDescriptor { get }
    var embedder: any TextEmbedder { get }
    /// The `limit` stored vectors most similar to `query` (exact search by cosine), best first.
    func nearest(to query: [Float], limit: Int) async throws -> [VectorHit]
}

extension EmbeddingModelDescriptor {
    /// How this model differs from the one `declaration` (a store's `embedding` in the portfolio)
    /// names, field by field; nil when it is the declared model (a field left undeclared matches).
    public func mismatch(with declaration: StoreDeclaration.Embedding?) -> String? {
        guard let declaration else { return nil }
        var differences: [String] = []
        if let model = declaration.model?.value, model != name { differences.append("model \(name), declared \(model)") }
        if let version = declaration.version?.value, version != self.version { differences.append("version \(self.version), declared \(version)") }
        if let dimensions = declaration.dimensions?.value, dimensions != self.dimensions {
            differences.append("\(self.dimensions) dimensions, declared \(dimensions)")
        }
        return differences.isEmpty ? nil : differences.joined(separator: "; ")
    }
}
