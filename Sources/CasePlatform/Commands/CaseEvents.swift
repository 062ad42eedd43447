import Foundation

/// The event types the case platform appends to the outbox, and their payloads (schema version 1).
///
/// Payload keys are snake_case JSON. Restriction changes are priority events: they reach derived
/// stores ahead of ordinary ones.
public enum CaseEvents {
    public static let caseOpened = "case.opened"
    public static let caseStatusChanged = "case.status_changed"
    public static let caseAssigned = "case.assigned"
    public static let caseRestrictionChanged = "case.restriction_changed"
    public static let caseTeamChanged = "case.team_changed"
    public static let casePartyLinked = "case.party_linked"
    public static let caseEvidenceAdded = "case.evidence_added"
    /// The case's rows (the case, its party links, its evidence) were removed: every derived
    /// store removes what it holds of them. The transition history stays (it is append-only).
    public static let casePurged = "case.purged"
    /// A legal hold was placed on the case: nothing of it may be purged while it stands.
    public static let caseHoldPlaced = "case.hold_placed"
    /// The case's legal hold was lifted.
    public static let caseHoldReleased = "case.hold_released"
    public static let partyRegistered = "party.registered"
    public static let userRegistered = "user.registered"
    /// A user's name, role, team or clearance changed (`UserUpdated`).
    public static let userUpdated = "user.updated"
    /// A user was removed; the payload is the user as they were.
    public static let userRemoved = "user.removed"
    /// A case was assigned to the user (`CaseAssigned`), on the user's stream: a change to the user
    /// decided before it cannot commit after it.
    public static let userCaseAssigned = "user.case_assigned"

    public static let allTypes = [
        caseOpened, caseStatusChanged, caseAssigned, caseRestrictionChanged, caseTeamChanged, casePartyLinked, caseEvidenceAdded,
        casePurged, caseHoldPlaced, caseHoldReleased, partyRegistered, userRegistered, userUpdated, userRemoved, userCaseAssigned,
    ]

    /// A case assigned to the user whose stream it is on.
    public struct CaseAssigned: Codable, Hashable, Sendable {
        public var caseID: String

        enum CodingKeys: String, CodingKey {
            case caseID = "case_id"
        }
    }

    /// A user as they were and as they are now.
    public struct UserUpdated: Codable, Hashable, Sendable {
        public var previous: User
        public var user: User
    }

    /// A legal hold placed on a case or lifted, with why.
    public struct Hold: Codable, Hashable, Sendable {
        public var caseID: String
        public var reason: String

        enum CodingKeys: String, CodingKey {
            case reason
            case caseID = "case_id"
        }
    }

    public struct StatusChanged: Codable, Hashable, Sendable {
        public var caseID: String
        public var from: CaseStatus
        public var to: CaseStatus
        public var reason: String
        /// A reopened case's assignee who can no longer take it (removed, moved to another team,
        /// without the clearance it needs), unassigned by the same commit.
        public var unassigned: String? = nil

        enum CodingKeys: String, CodingKey {
            case from, to, reason, unassigned
            case caseID = "case_id"
        }
    }

    public struct Assigned: Codable, Hashable, Sendable {
        public var caseID: String
        public var investigator: String
        public var previous: String?

        enum CodingKeys: String, CodingKey {
            case investigator, previous
            case caseID = "case_id"
        }
    }

    public struct RestrictionChanged: Codable, Hashable, Sendable {
        public var caseID: String
        public var restricted: Bool
        public var reason: String
        /// The clearance needed to see the case while restricted (absent in events before clearance existed).
        public var clearance: Int?
        /// The investigator the case was assigned to, when the change put it out of their sight
        /// and so cleared the assignment (absent otherwise).
        public var unassigned: String?

        public init(caseID: String, restricted: Bool, reason: String, clearance: Int?, unassigned: String? = nil) {
            self.caseID = caseID
            self.restricted = restricted
            self.reason = reason
            self.clearance = clearance
            self.unassigned = unassigned
        }

        enum CodingKeys: String, CodingKey {
            case restricted, reason, clearance, unassigned
            case caseID = "case_id"
        }
    }

    /// A case handed to another team: who may see it changes, so it travels the priority path.
    public struct TeamChanged: Codable, Hashable, Sendable {
        public var caseID: String
        public var from: String
        public var to: String
        public var reason: String

        enum CodingKeys: String, CodingKey {
            case from, to, reason
            case caseID = "case_id"
        }
    }

    public struct PartyLinked: Codable, Hashable, Sendable {
        public var caseID: String
        public var partyID: String
        public var role: PartyRole
        public var partyKind: PartyKind
        public var partyName: String

        enum CodingKeys: String, CodingKey {
            case role
            case caseID = "case_id", partyID = "party_id", partyKind = "party_kind", partyName = "party_name"
        }
    }

    public struct Purged: Codable, Hashable, Sendable {
        public var caseID: String
        /// The evidence items removed with the case.
        public var evidenceIDs: [String]
        public var reason: String

        enum CodingKeys: String, CodingKey {
            case reason
            case caseID = "case_id", evidenceIDs = "evidence_ids"
        }
    }
}
