import Canon
import Foundation

/// A regulatory case: the aggregate whose stream is `case-<id>`.
public struct Case: Hashable, Codable, Sendable {
    public var id: String
    public var title: String
    public var summary: String
    public var sector: Sector
    public var region: Region
    public var priority: Priority
    public var status: CaseStatus
    public var team: String
    public var assignee: String?
    public var restricted: Bool
    /// The clearance (1–3) a team member needs to see the case while it is restricted.
    public var clearance: Int
    public var slaDueAt: Date
    /// The version of the case's stream: 1 after opening, +1 for every change.
    public var version: Int64
    public var openedAt: Date
    public var openedBy: String
    public var updatedAt: Date

    public var streamID: StreamID { Self.streamID(id) }

    public static func streamID(_ id: String) -> StreamID { StreamID(category: "case", id: id) }

    enum CodingKeys: String, CodingKey {
        case id, title, summary, sector, region, priority, status, team, assignee, restricted, clearance, version
        case slaDueAt = "sla_due_at", openedAt = "opened_at", openedBy = "opened_by", updatedAt = "updated_at"
    }

    public init(
        id: String, title: String, summary: String, sector: Sector, region: Region, priority: Priority, status: CaseStatus, team: String,
        assignee: String?, restricted: Bool, clearance: Int = 1, slaDueAt: Date, version: Int64, openedAt: Date, openedBy: String, updatedAt: Date
    ) {
        self.id = id
        self.title = title
        self.summary = summary
        self.sector = sector
        self.region = region
        self.priority = priority
        self.status = status
        self.team = team
        self.assignee = assignee
        self.restricted = restricted
        self.clearance = clearance
        self.slaDueAt = slaDueAt
        self.version = version
        self.openedAt = openedAt
        self.openedBy = openedBy
        self.updatedAt = updatedAt
    }

    /// Events written before clearance existed decode with clearance 1.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(String.self, forKey: .id), title: try container.decode(String.self, forKey: .title),
            summary: try container.decode(String.self, forKey: .summary), sector: try container.decode(Sector.self, forKey: .sector),
            region: try container.decode(Region.self, forKey: .region), priority: try container.decode(Priority.self, forKey: .priority),
            status: try container.decode(CaseStatus.self, forKey: .status), team: try container.decode(String.self, forKey: .team),
            assignee: try container.decodeIfPresent(String.self, forKey: .assignee), restricted: try container.decode(Bool.self, forKey: .restricted),
            clearance: try container.decodeIfPresent(Int.self, forKey: .clearance) ?? 1,
            slaDueAt: try container.decode(Date.self, forKey: .slaDueAt), version: try container.decode(Int64.self, forKey: .version),
            openedAt: try container.decode(Date.self, forKey: .openedAt), openedBy: try container.decode(String.self, forKey: .openedBy),
            updatedAt: try container.decode(Date.self, forKey: .updatedAt))
    }
}

/// A legal hold on a case: while it stands, nothing of the case may be purged.
public struct LegalHold: Hashable, Codable, Sendable {
    public var caseID: String
    public var reason: String
    public var placedAt: Date
    public var placedBy: String

    public init(caseID: String, reason: String, placedAt: Date, placedBy: String) {
        self.caseID = caseID
        self.reason = reason
        self.placedAt = placedAt
        self.placedBy = placedBy
    }

    enum CodingKeys: String, CodingKey {
        case reason
        case caseID = "case_id", placedAt = "placed_at", placedBy = "placed_by"
    }
}

/// How long a closed case is kept before it may be purged: the canonical store's declared
/// `lifecycle.retention_period`. Within it a purge is refused; past it the retention job
/// (`canon lifecycle expire`) purges the case, unless a legal hold stands.
public struct RetentionPolicy: Hashable, Sendable {
    /// Nil: no period is declared, and a closed case may be purged at once.
    public var period: Duration?

    public init(period: Duration? = nil) { self.period = period }

    /// When a case closed at `closedAt` may first be purged.
    public func ends(closedAt: Date) -> Date {
        guard let period else { return closedAt }
        return closedAt.addingTimeInterval(period / .seconds(1))
    }
}

/// One status change in a case's append-only history.
public struct CaseTransition: Hashable, Codable, Sendable {
    public var caseID: String
    /// The case version this transition produced.
    public var caseVersion: Int64
    /// Nil for the opening entry.
    public var from: CaseStatus?
    public var to: CaseStatus
    public var reason: String
    public var actor: String
    public var at: Date

    enum CodingKeys: String, CodingKey {
        case from, to, reason, actor, at
        case caseID = "case_id", caseVersion = "case_version"
    }
}

/// A person or an organisation. Name, email and national id are personal data.
public struct Party: Hashable, Codable, Sendable {
    public var id: String
    public var kind: PartyKind
    public var name: String
    public var email: String?
    public var nationalID: String?
    public var createdAt: Date

    public static func streamID(_ id: String) -> StreamID { StreamID(category: "party", id: id) }

    enum CodingKeys: String, CodingKey {
        case id, kind, name, email
        case nationalID = "national_id", createdAt = "created_at"
    }
}

/// A party's link to a case, with its role.
public struct CasePartyLink: Hashable, Codable, Sendable {
    public var caseID: String
    public var partyID: String
    public var role: PartyRole
    public var linkedAt: Date
    public var linkedBy: String
    /// The case's version the link made: orders a case's links (0 for links made before it was kept).
    public var caseVersion: Int64

    public init(caseID: String, partyID: String, role: PartyRole, linkedAt: Date, linkedBy: String, caseVersion: Int64) {
        self.caseID = caseID
        self.partyID = partyID
        self.role = role
        self.linkedAt = linkedAt
        self.linkedBy = linkedBy
        self.caseVersion = caseVersion
    }

    enum CodingKeys: String, CodingKey {
        case role
        case caseID = "case_id", partyID = "party_id", linkedAt = "linked_at", linkedBy = "linked_by", caseVersion = "case_version"
    }
}

/// Evidence metadata. The binary lives in the object store, addressed by its SHA-256.
public struct Evidence: Hashable, Codable, Sendable {
    public var id: String
    public var caseID: String
    public var title: String
    public var description: String
    public var mediaType: String
    public var sizeBytes: Int64
    public var sha256: String
    /// The source document version (semantic retrieval names it on every vector).
    public var version: Int64
    public var addedAt: Date
    public var addedBy: String

    enum CodingKeys: String, CodingKey {
        case id, title, description, sha256, version
        case caseID = "case_id", mediaType = "media_type", sizeBytes = "size_bytes", addedAt = "added_at", addedBy = "added_by"
    }
}

/// A principal of the platform.
public struct User: Hashable, Codable, Sendable {
    public var id: String
    public var displayName: String
    public var role: Role
    /// Investigators, supervisors and analysts belong to a team; legal and admin may not.
    public var team: String?
    /// 1 (standard) to 3 (highest): how sensitive a restricted case the user may see.
    public var clearance: Int

    public init(id: String, displayName: String, role: Role, team: String?, clearance: Int) {
        self.id = id
        self.displayName = displayName
        self.role = role
        self.team = team
        self.clearance = clearance
    }

    public static func streamID(_ id: String) -> StreamID { StreamID(category: "user", id: id) }

    enum CodingKeys: String, CodingKey {
        case id, role, team, clearance
        case displayName = "display_name"
    }
}
