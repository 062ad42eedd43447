import Canon
import Foundation

/// Case timeline: what happened to each case, in order, with actor and time.
public struct CaseTimelineProjection: TimelineProjection {
    public let identity: ProjectionIdentity

    public init(version: Int = 1) { identity = ProjectionIdentity(name: "case-timeline", version: version) }

    /// Events of case streams.
    public var selection: EventSelection { EventSelection(streamPrefixes: ["case-"]) }

    /// A purge removes the case's whole timeline.
    public func clearedKey(by event: EventEnvelope) -> String? {
        guard event.type == CaseEvents.casePurged, event.streamID.rawValue.hasPrefix("case-") else { return nil }
        return String(event.streamID.rawValue.dropFirst(5))
    }

    public func entries(for event: EventEnvelope) throws -> [TimelineEntry] {
        guard event.streamID.rawValue.hasPrefix("case-") else { return [] }
        let key = String(event.streamID.rawValue.dropFirst(5))
        func entry(_ kind: String, _ summary: String, _ details: [String: String] = [:]) -> [TimelineEntry] {
            [TimelineEntry(key: key, position: event.position, at: event.occurredAt, kind: kind, actor: event.actor, summary: summary, details: details)]
        }
        switch event.type {
        case CaseEvents.caseOpened:
            let opened: Case = try event.decodePayload()
            return entry("opened", "Case opened: \(opened.title)", [
                "priority": opened.priority.rawValue, "sector": opened.sector.rawValue, "region": opened.region.rawValue, "team": opened.team,
            ])
        case CaseEvents.caseStatusChanged:
            let change: CaseEvents.StatusChanged = try event.decodePayload()
            let verb = change.from == .closed ? "Reopened" : "Moved"
            var details = ["from": change.from.rawValue, "to": change.to.rawValue]
            var summary = "\(verb) from \(change.from.rawValue) to \(change.to.rawValue): \(change.reason)"
            if let unassigned = change.unassigned {
                details["unassigned"] = unassigned
                summary += " (unassigned from \(unassigned), who can no longer take it)"
            }
            return entry("transition", summary, details)
        case CaseEvents.caseAssigned:
            let change: CaseEvents.Assigned = try event.decodePayload()
            return entry("assignment", "Assigned to \(change.investigator)", ["investigator": change.investigator])
        case CaseEvents.caseRestrictionChanged:
            let change: CaseEvents.RestrictionChanged = try event.decodePayload()
            var details = ["restricted": String(change.restricted)]
            var summary = change.restricted ? "Restricted: \(change.reason)" : "Restriction lifted: \(change.reason)"
            if let unassigned = change.unassigned {
                details["unassigned"] = unassigned
                summary += " (unassigned from \(unassigned), who may not see it)"
            }
            return entry("restriction", summary, details)
        case CaseEvents.caseTeamChanged:
            let change: CaseEvents.TeamChanged = try event.decodePayload()
            return entry("team", "Handed from \(change.from) to \(change.to): \(change.reason)", ["from": change.from, "to": change.to])
        case CaseEvents.casePartyLinked:
            let link: CaseEvents.PartyLinked = try event.decodePayload()
            return entry("party", "\(link.partyName) linked as \(link.role.rawValue)", ["party_id": link.partyID, "role": link.role.rawValue])
        case CaseEvents.caseEvidenceAdded:
            let evidence: Evidence = try event.decodePayload()
            return entry("evidence", "Evidence added: \(evidence.title)", ["evidence_id": evidence.id, "media_type": evidence.mediaType])
        case CaseEvents.caseHoldPlaced:
            let hold: CaseEvents.Hold = try event.decodePayload()
            return entry("legal_hold", "Legal hold placed: \(hold.reason)", ["held": "true"])
        case CaseEvents.caseHoldReleased:
            let hold: CaseEvents.Hold = try event.decodePayload()
            return entry("legal_hold", "Legal hold lifted: \(hold.reason)", ["held": "false"])
        default:
            return []
        }
    }
}
