import Canon
import Foundation

// The payloads projections decode on every event they apply, read by the flat JSON reader (see
// `FlatDecodable`). Each accepts exactly what its `Decodable` conformance accepts for a flat
// object and answers nil otherwise; `FlatPayloadTests` compares the two.

extension Case: FlatDecodable {
    public init?(flat object: FlatObject) {
        guard let id = object.string("id"), let title = object.string("title"), let summary = object.string("summary"),
              let sector = object.value("sector", as: Sector.self), let region = object.value("region", as: Region.self),
              let priority = object.value("priority", as: Priority.self), let status = object.value("status", as: CaseStatus.self),
              let team = object.string("team"), let assignee = object.optional("assignee", object.string),
              let restricted = object.bool("restricted"), let clearance = object.optional("clearance", object.int),
              let slaDueAt = object.date("sla_due_at"), let version = object.integer("version"), let openedAt = object.date("opened_at"),
              let openedBy = object.string("opened_by"), let updatedAt = object.date("updated_at")
        else { return nil }
        self.init(
            id: id, title: title, summary: summary, sector: sector, region: region, priority: priority, status: status, team: team,
            assignee: assignee, restricted: restricted, clearance: clearance ?? 1, slaDueAt: slaDueAt, version: version,
            openedAt: openedAt, openedBy: openedBy, updatedAt: updatedAt)
    }
}

extension CaseEvents.StatusChanged: FlatDecodable {
    public init?(flat object: FlatObject) {
        guard let caseID = object.string("case_id"), let from = object.value("from", as: CaseStatus.self),
              let to = object.value("to", as: CaseStatus.self), let reason = object.string("reason"),
              let unassigned = object.optional("unassigned", object.string)
        else { return nil }
        self.init(caseID: caseID, from: from, to: to, reason: reason, unassigned: unassigned)
    }
}

extension CaseEvents.Assigned: FlatDecodable {
    public init?(flat object: FlatObject) {
        guard let caseID = object.string("case_id"), let investigator = object.string("investigator"),
              let previous = object.optional("previous", object.string)
        else { return nil }
        self.init(caseID: caseID, investigator: investigator, previous: previous)
    }
}

extension CaseEvents.RestrictionChanged: FlatDecodable {
    public init?(flat object: FlatObject) {
        guard let caseID = object.string("case_id"), let restricted = object.bool("restricted"), let reason = object.string("reason"),
              let clearance = object.optional("clearance", object.int), let unassigned = object.optional("unassigned", object.string)
        else { return nil }
        self.init(caseID: caseID, restricted: restricted, reason: reason, clearance: clearance, unassigned: unassigned)
    }
}

extension CaseEvents.TeamChanged: FlatDecodable {
    public init?(flat object: FlatObject) {
        guard let caseID = object.string("case_id"), let from = object.string("from"), let to = object.string("to"),
              let reason = object.string("reason")
        else { return nil }
        self.init(caseID: caseID, from: from, to: to, reason: reason)
    }
}

extension CaseEvents.PartyLinked: FlatDecodable {
    public init?(flat object: FlatObject) {
        guard let caseID = object.string("case_id"), let partyID = object.string("party_id"),
              let role = object.value("role", as: PartyRole.self), let partyKind = object.value("party_kind", as: PartyKind.self),
              let partyName = object.string("party_name")
        else { return nil }
        self.init(caseID: caseID, partyID: partyID, role: role, partyKind: partyKind, partyName: partyName)
    }
}

// The payloads commands write on every request, written by the flat writer (see
// `FlatEncodable`): each writes its keys in sorted order, exactly as its `Encodable` conformance
// through `PendingEvent`'s encoder; `FlatPayloadTests` compares the two byte for byte.

extension Case: FlatEncodable {
    public func encode(into writer: inout FlatJSONWriter) {
        writer.string("assignee", assignee)
        writer.integer("clearance", Int64(clearance))
        writer.string("id", id)
        writer.string("opened_at", Timestamp.iso8601(openedAt))
        writer.string("opened_by", openedBy)
        writer.string("priority", priority.rawValue)
        writer.string("region", region.rawValue)
        writer.bool("restricted", restricted)
        writer.string("sector", sector.rawValue)
        writer.string("sla_due_at", Timestamp.iso8601(slaDueAt))
        writer.string("status", status.rawValue)
        writer.string("summary", summary)
        writer.string("team", team)
        writer.string("title", title)
        writer.string("updated_at", Timestamp.iso8601(updatedAt))
        writer.integer("version", version)
    }
}

extension CaseEvents.StatusChanged: FlatEncodable {
    public func encode(into writer: inout FlatJSONWriter) {
        writer.string("case_id", caseID)
        writer.string("from", from.rawValue)
        writer.string("reason", reason)
        writer.string("to", to.rawValue)
        if let unassigned { writer.string("unassigned", unassigned) }
    }
}

// The bodies of the two commands a client sends most (opening a case, moving it on), read by the
// flat reader before `JSONDecoder` (`JSONBody.decode` in the server). Nil for anything else,
// repeated keys and unknown ones included, so the decoder gives its value or its error.

extension OpenCaseRequest: FlatDecodable {
    public init?(flat object: FlatObject) {
        guard object.keysAreUnique, let title = object.string("title"), let summary = object.string("summary"),
              let sector = object.string("sector"), let region = object.string("region"), let priority = object.string("priority"),
              let team = object.optional("team", object.string), object.count == (object["team"] == nil ? 5 : 6)
        else { return nil }
        self.init(title: title, summary: summary, sector: sector, region: region, priority: priority, team: team)
    }
}

extension TransitionRequest: FlatDecodable {
    public init?(flat object: FlatObject) {
        guard object.keysAreUnique, object.count == 2, let to = object.string("to"), let reason = object.string("reason") else { return nil }
        self.init(to: to, reason: reason)
    }
}
