import Canon
import Foundation

// MARK: - Domain values ↔ canonical rows

extension Case {
    var row: Row {
        [
            "id": .text(id), "title": .text(title), "summary": .text(summary), "sector": .text(sector.rawValue),
            "region": .text(region.rawValue), "priority": .text(priority.rawValue), "status": .text(status.rawValue),
            "team": .text(team), "assignee": .optionalText(assignee), "restricted": .bool(restricted),
            "clearance": .integer(Int64(clearance)), "sla_due_at": .timestamp(slaDueAt), "version": .integer(version), "opened_at": .timestamp(openedAt),
            "opened_by": .text(openedBy), "updated_at": .timestamp(updatedAt),
        ]
    }

    init(row: Row) throws {
        self.init(
            id: try row.string("id"), title: try row.string("title"), summary: try row.string("summary"),
            sector: try row.enumValue("sector"), region: try row.enumValue("region"), priority: try row.enumValue("priority"),
            status: try row.enumValue("status"), team: try row.string("team"), assignee: try row.optionalString("assignee"),
            restricted: try row.bool("restricted"), clearance: Int(try row.int("clearance")), slaDueAt: try row.date("sla_due_at"), version: try row.int("version"),
            openedAt: try row.date("opened_at"), openedBy: try row.string("opened_by"), updatedAt: try row.date("updated_at"))
    }
}

extension LegalHold {
    var row: Row {
        ["case_id": .text(caseID), "reason": .text(reason), "placed_at": .timestamp(placedAt), "placed_by": .text(placedBy)]
    }

    init(row: Row) throws {
        self.init(caseID: try row.string("case_id"), reason: try row.string("reason"), placedAt: try row.date("placed_at"), placedBy: try row.string("placed_by"))
    }
}

extension CaseTransition {
    var row: Row {
        [
            "case_id": .text(caseID), "case_version": .integer(caseVersion), "from_status": .optionalText(from?.rawValue),
            "to_status": .text(to.rawValue), "reason": .text(reason), "actor": .text(actor), "at": .timestamp(at),
        ]
    }

    init(row: Row) throws {
        self.init(
            caseID: try row.string("case_id"), caseVersion: try row.int("case_version"),
            from: try row.optionalString("from_status").flatMap(CaseStatus.init(rawValue:)), to: try row.enumValue("to_status"),
            reason: try row.string("reason"), actor: try row.string("actor"), at: try row.date("at"))
    }
}

extension Party {
    func row(createdBy: String) -> Row {
        [
            "id": .text(id), "kind": .text(kind.rawValue), "name": .text(name), "email": .optionalText(email),
            "national_id": .optionalText(nationalID), "created_at": .timestamp(createdAt), "created_by": .text(createdBy),
        ]
    }

    init(row: Row) throws {
        self.init(
            id: try row.string("id"), kind: try row.enumValue("kind"), name: try row.string("name"),
            email: try row.optionalString("email"), nationalID: try row.optionalString("national_id"),
            createdAt: try row.date("created_at"))
    }
}

extension CasePartyLink {
    var row: Row {
        [
            "case_id": .text(caseID), "party_id": .text(partyID), "role": .text(role.rawValue),
            "linked_at": .timestamp(linkedAt), "linked_by": .text(linkedBy), "case_version": .integer(caseVersion),
        ]
    }

    init(row: Row) throws {
        self.init(
            caseID: try row.string("case_id"), partyID: try row.string("party_id"), role: try row.enumValue("role"),
            linkedAt: try row.date("linked_at"), linkedBy: try row.string("linked_by"), caseVersion: try row.int("case_version"))
    }
}

extension Evidence {
    var row: Row {
        [
            "id": .text(id), "case_id": .text(caseID), "title": .text(title), "description": .text(description),
            "media_type": .text(mediaType), "size_bytes": .integer(sizeBytes), "sha256": .text(sha256),
            "version": .integer(version), "added_at": .timestamp(addedAt), "added_by": .text(addedBy),
        ]
    }

    init(row: Row) throws {
        self.init(
            id: try row.string("id"), caseID: try row.string("case_id"), title: try row.string("title"),
            description: try row.string("description"), mediaType: try row.string("media_type"),
            sizeBytes: try row.int("size_bytes"), sha256: try row.string("sha256"), version: try row.int("version"),
            addedAt: try row.date("added_at"), addedBy: try row.string("added_by"))
    }
}

extension User {
    func row(createdAt: Date) -> Row {
        [
            "id": .text(id), "display_name": .text(displayName), "role": .text(role.rawValue), "team": .optionalText(team),
            "clearance": .integer(Int64(clearance)), "created_at": .timestamp(createdAt),
        ]
    }

    /// What authorizes the user: the columns of their row a command was decided on, which the
    /// commit requires unchanged (`RowMutation.require`).
    var authority: Row {
        ["id": .text(id), "role": .text(role.rawValue), "team": .optionalText(team), "clearance": .integer(Int64(clearance))]
    }

    init(row: Row) throws {
        self.init(
            id: try row.string("id"), displayName: try row.string("display_name"), role: try row.enumValue("role"),
            team: try row.optionalString("team"), clearance: Int(try row.int("clearance")))
    }
}

extension Row {
    func enumValue<T: RawRepresentable>(_ column: String) throws -> T where T.RawValue == String {
        let raw = try string(column)
        guard let value = T(rawValue: raw) else { throw CanonicalStoreError.column(column, expected: "\(T.self)", found: .text(raw)) }
        return value
    }
}
