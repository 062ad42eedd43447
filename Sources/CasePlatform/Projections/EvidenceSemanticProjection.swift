import Canon

/// Semantic evidence retrieval: one vector per evidence item, made from its title and
/// description, keyed by evidence id, grouped by case, carrying the evidence's source version.
public struct EvidenceSemanticProjection: VectorProjection {
    public let identity: ProjectionIdentity

    public init(version: Int = 1) { identity = ProjectionIdentity(name: "evidence-semantic", version: version) }

    /// Evidence added, and purges.
    public var selection: EventSelection { EventSelection(types: [CaseEvents.caseEvidenceAdded, CaseEvents.casePurged]) }

    public func documents(for event: EventEnvelope) throws -> [VectorDocument] {
        guard event.type == CaseEvents.caseEvidenceAdded else { return [] }
        let evidence: Evidence = try event.decodePayload()
        return [VectorDocument(key: evidence.id, group: evidence.caseID, sourceVersion: evidence.version, text: Self.text(of: evidence))]
    }

    /// A purge removes the vectors of the case's evidence.
    public func removedKeys(by event: EventEnvelope) -> [String] {
        guard event.type == CaseEvents.casePurged, let purged: CaseEvents.Purged = try? event.decodePayload() else { return [] }
        return purged.evidenceIDs
    }

    /// What is embedded: the title, then the description.
    public static func text(of evidence: Evidence) -> String {
        evidence.description.isEmpty ? evidence.title : "\(evidence.title). \(evidence.description)"
    }
}
