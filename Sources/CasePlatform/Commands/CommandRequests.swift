/// The bodies of the platform's commands, as clients send them (JSON, snake_case).
///
/// Enumerated fields arrive as strings and are parsed by the decisions, so that a wrong value
/// gets an error naming the field and the allowed values rather than a decoding failure.
public struct OpenCaseRequest: Codable, Hashable, Sendable {
    public var title: String
    public var summary: String
    public var sector: String
    public var region: String
    public var priority: String
    /// Defaults to the opening principal's team.
    public var team: String?

    public init(title: String, summary: String, sector: String, region: String, priority: String, team: String? = nil) {
        self.title = title
        self.summary = summary
        self.sector = sector
        self.region = region
        self.priority = priority
        self.team = team
    }
}

public struct TransitionRequest: Codable, Hashable, Sendable {
    public var to: String
    public var reason: String

    public init(to: String, reason: String) {
        self.to = to
        self.reason = reason
    }
}

public struct AssignmentRequest: Codable, Hashable, Sendable {
    /// The user id of an investigator in the case's team.
    public var investigator: String

    public init(investigator: String) { self.investigator = investigator }
}

public struct RestrictionRequest: Codable, Hashable, Sendable {
    public var restricted: Bool
    public var reason: String
    /// The clearance (1–3) a team member needs to see the restricted case; unchanged when absent.
    public var clearance: Int?

    public init(restricted: Bool, reason: String, clearance: Int? = nil) {
        self.restricted = restricted
        self.reason = reason
        self.clearance = clearance
    }
}

public struct TeamChangeRequest: Codable, Hashable, Sendable {
    public var team: String
    public var reason: String

    public init(team: String, reason: String) {
        self.team = team
        self.reason = reason
    }
}

public struct RegisterPartyRequest: Codable, Hashable, Sendable {
    public var kind: String
    public var name: String
    public var email: String?
    public var nationalID: String?

    public init(kind: String, name: String, email: String? = nil, nationalID: String? = nil) {
        self.kind = kind
        self.name = name
        self.email = email
        self.nationalID = nationalID
    }

    enum CodingKeys: String, CodingKey {
        case kind, name, email
        case nationalID = "national_id"
    }
}

public struct LinkPartyRequest: Codable, Hashable, Sendable {
    public var partyID: String
    public var role: String

    public init(partyID: String, role: String) {
        self.partyID = partyID
        self.role = role
    }

    enum CodingKeys: String, CodingKey {
        case role
        case partyID = "party_id"
    }
}

public struct AddEvidenceRequest: Codable, Hashable, Sendable {
    public var title: String
    public var description: String
    public var mediaType: String
    public var sizeBytes: Int64
    /// Lower-case hex SHA-256 of the binary.
    public var sha256: String

    public init(title: String, description: String, mediaType: String, sizeBytes: Int64, sha256: String) {
        self.title = title
        self.description = description
        self.mediaType = mediaType
        self.sizeBytes = sizeBytes
        self.sha256 = sha256
    }

    enum CodingKeys: String, CodingKey {
        case title, description, sha256
        case mediaType = "media_type", sizeBytes = "size_bytes"
    }
}
