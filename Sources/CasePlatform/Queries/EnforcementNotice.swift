import Canon
import Foundation

/// An enforcement notice, built only from the case's canonical state at its current version:
/// an operation declared never-stale in the portfolio.
public struct EnforcementNotice: Codable, Sendable {
    public var reference: String
    public var caseID: String
    public var caseVersion: Int64
    public var title: String
    public var sector: String
    public var region: String
    public var issuedAt: Date
    public var issuedBy: String
    public var parties: [PartyReference]
    public var evidence: [EvidenceReference]

    public struct PartyReference: Codable, Sendable {
        public var partyID: String
        public var role: String

        enum CodingKeys: String, CodingKey {
            case role
            case partyID = "party_id"
        }
    }

    /// Evidence is cited by its content hash and source version, so the notice names exactly what it relied on.
    public struct EvidenceReference: Codable, Sendable {
        public var id: String
        public var title: String
        public var sha256: String
        public var version: Int64
    }

    enum CodingKeys: String, CodingKey {
        case reference, title, sector, region, parties, evidence
        case caseID = "case_id", caseVersion = "case_version", issuedAt = "issued_at", issuedBy = "issued_by"
    }
}

extension CaseQueries {
    /// Builds the enforcement notice of a case in enforcement, from canonical state.
    ///
    /// - Throws: `DomainError.notFound` when the principal may not see the case,
    ///   `.forbidden` when its role may not issue notices, `.conflict` when the case is not in
    ///   enforcement or has no evidence to rely on.
    public func enforcementNotice(caseID: String, by principal: User, at now: Date = Date()) async throws -> EnforcementNotice {
        guard let item = try await caseIfVisible(caseID, to: principal) else { throw DomainError.notFound("case", id: caseID) }
        try AccessPolicy.require(principal, may: .generateEnforcementNotice)
        try AccessPolicy.requireTeamScope(principal, team: item.team)
        guard item.status == .enforcement else {
            throw DomainError.conflict("case \(caseID) is \(item.status.rawValue); a notice is issued only in enforcement")
        }
        let cited = try await self.evidence(caseID: caseID)
        guard !cited.isEmpty else {
            throw DomainError.conflict("case \(caseID) has no evidence; a notice must rely on at least one piece of evidence")
        }
        let parties = try await partyLinks(caseID: caseID).map { EnforcementNotice.PartyReference(partyID: $0.partyID, role: $0.role.rawValue) }
        let evidence = cited.map {
            EnforcementNotice.EvidenceReference(id: $0.id, title: $0.title, sha256: $0.sha256, version: $0.version)
        }
        return EnforcementNotice(
            reference: "EN-\(item.id)-v\(item.version)", caseID: item.id, caseVersion: item.version, title: item.title,
            sector: item.sector.rawValue, region: item.region.rawValue, issuedAt: Timestamp.stored(now), issuedBy: principal.id,
            parties: parties, evidence: evidence)
    }
}
