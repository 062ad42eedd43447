import CasePlatform

/// A party as a principal may see it: `AccessPolicy.seesPartyIdentity` decides whether email and
/// national id are masked (analysts, and investigators outside the teams of the cases the party
/// is read through; see `docs/security.md`).
struct PartyView: Encodable {
    var id: String
    var kind: PartyKind
    var name: String
    var email: String?
    var nationalID: String?
    var masked: Bool

    /// - Parameter caseTeams: the teams of the cases through which the party is seen.
    init(_ party: Party, for principal: User, caseTeams: Set<String>) {
        let masked = !AccessPolicy.seesPartyIdentity(principal, caseTeams: caseTeams)
        id = party.id
        kind = party.kind
        name = party.name
        email = masked ? party.email.map(Self.mask) : party.email
        nationalID = masked ? party.nationalID.map(Self.mask) : party.nationalID
        self.masked = masked
    }

    static func mask(_ value: String) -> String {
        value.count <= 2 ? "••" : String(value.prefix(1)) + String(repeating: "•", count: min(8, value.count - 2)) + String(value.suffix(1))
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, name, email, masked
        case nationalID = "national_id"
    }
}
