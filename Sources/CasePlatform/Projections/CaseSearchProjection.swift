import Canon
import Foundation

/// Case search: one document per case, built from the case and its linked parties.
///
/// Text: title (weight 10), party names (6), summary (3). Facets: status, sector, region,
/// priority, plus team and assignee for filtering. The document carries the team and the
/// restricted flag so searches are filtered for their reader inside the engine.
public struct CaseSearchProjection: DocumentProjection {
    public let identity: ProjectionIdentity

    public init(version: Int = 1) { identity = ProjectionIdentity(name: "case-search", version: version) }

    public let schema = SearchSchema(
        textFields: [.init("title", weight: 10), .init("parties", weight: 6), .init("summary", weight: 3)],
        facetFields: ["status", "sector", "region", "priority", "team", "assignee"])

    /// What a search result shows.
    public struct Display: Codable, Hashable, Sendable {
        public var id: String
        public var title: String
        public var status: CaseStatus
        public var sector: Sector
        public var region: Region
        public var priority: Priority
        public var team: String
        public var assignee: String?
        public var restricted: Bool
        /// The clearance a team member needs while restricted (absent in displays stored before clearance).
        public var clearance: Int?
        public var parties: [String]
        public var openedAt: Date
        public var slaDueAt: Date
        public var version: Int64

        enum CodingKeys: String, CodingKey {
            case id, title, status, sector, region, priority, team, assignee, restricted, clearance, parties, version
            case openedAt = "opened_at", slaDueAt = "sla_due_at"
        }
    }

    /// A restriction change, applied ahead of the case's other pending events on the priority path.
    public func securityChange(for event: EventEnvelope) throws -> SecurityChange? {
        guard let key = documentKey(for: event) else { return nil }
        switch event.type {
        case CaseEvents.caseRestrictionChanged:
            let change: CaseEvents.RestrictionChanged = try event.decodePayload()
            return SecurityChange(key: key, restricted: change.restricted, clearance: change.clearance)
        case CaseEvents.caseTeamChanged:
            let change: CaseEvents.TeamChanged = try event.decodePayload()
            return SecurityChange(key: key, team: change.to)
        default:
            return nil
        }
    }

    /// One document per case stream.
    public var keysFollowStreams: Bool { true }
    /// Every event of a case's stream (each moves the display's version); no other.
    public var selection: EventSelection { EventSelection(streamPrefixes: ["case-"]) }

    public func documentKey(for event: EventEnvelope) -> String? {
        guard event.streamID.rawValue.hasPrefix("case-") else { return nil }
        return String(event.streamID.rawValue.dropFirst(5))
    }

    public func fold(_ event: EventEnvelope, into current: SearchDocument?) throws -> SearchDocument? {
        try fold([event], into: current)
    }

    /// Folds several events of one case at once: the display is decoded and encoded once.
    public func fold(_ events: [EventEnvelope], into current: SearchDocument?) throws -> SearchDocument? {
        var state = try current.map { State(display: try Display.decode($0.display), summary: $0.text["summary"] ?? "") }
        for event in events { state = try apply(event, to: state) }
        return try state.map { try document($0.display, summary: $0.summary) }
    }

    /// The document of `item`'s current canonical state, with the names of its linked parties in
    /// link order: what folding the case's whole history gives (a drift check compares the two).
    public func document(for item: Case, partyNames: [String]) throws -> SearchDocument {
        var parties: [String] = []
        for name in partyNames where !parties.contains(name) { parties.append(name) }
        let display = Display(
            id: item.id, title: item.title, status: item.status, sector: item.sector, region: item.region, priority: item.priority,
            team: item.team, assignee: item.assignee, restricted: item.restricted, clearance: item.clearance, parties: parties,
            openedAt: item.openedAt, slaDueAt: item.slaDueAt, version: item.version)
        return try document(display, summary: item.summary)
    }

    private struct State {
        var display: Display
        var summary: String
    }

    private func apply(_ event: EventEnvelope, to current: State?) throws -> State? {
        if event.type == CaseEvents.caseOpened {
            let opened: Case = try event.decodePayload()
            let display = Display(
                id: opened.id, title: opened.title, status: opened.status, sector: opened.sector, region: opened.region,
                priority: opened.priority, team: opened.team, assignee: opened.assignee, restricted: opened.restricted,
                clearance: opened.clearance, parties: [],
                openedAt: opened.openedAt, slaDueAt: opened.slaDueAt, version: event.streamVersion)
            return State(display: display, summary: opened.summary)
        }
        // A purge removes the document (there is nothing to remove when it is already gone).
        if event.type == CaseEvents.casePurged { return nil }
        guard var state = current else { throw ProjectionFoldError.missingDocument(key: documentKey(for: event) ?? "", type: event.type) }
        state.display.version = event.streamVersion
        switch event.type {
        case CaseEvents.caseStatusChanged:
            let change: CaseEvents.StatusChanged = try event.decodePayload()
            state.display.status = change.to
            if change.unassigned != nil { state.display.assignee = nil }
        case CaseEvents.caseAssigned:
            let change: CaseEvents.Assigned = try event.decodePayload()
            state.display.assignee = change.investigator
        case CaseEvents.caseRestrictionChanged:
            let change: CaseEvents.RestrictionChanged = try event.decodePayload()
            state.display.restricted = change.restricted
            state.display.clearance = change.clearance ?? state.display.clearance
            if change.unassigned != nil { state.display.assignee = nil }
        case CaseEvents.caseTeamChanged:
            let change: CaseEvents.TeamChanged = try event.decodePayload()
            state.display.team = change.to
            state.display.assignee = nil
        case CaseEvents.casePartyLinked:
            let link: CaseEvents.PartyLinked = try event.decodePayload()
            if !state.display.parties.contains(link.partyName) { state.display.parties.append(link.partyName) }
        default:
            break
        }
        return state
    }

    private func document(_ display: Display, summary: String) throws -> SearchDocument {
        var facets = [
            "status": display.status.rawValue, "sector": display.sector.rawValue, "region": display.region.rawValue,
            "priority": display.priority.rawValue, "team": display.team,
        ]
        facets["assignee"] = display.assignee
        return SearchDocument(
            key: display.id, text: ["title": display.title, "summary": summary, "parties": display.parties.joined(separator: " · ")],
            facets: facets, team: display.team, restricted: display.restricted, clearance: display.clearance ?? 1, sortTime: display.openedAt,
            display: display.encoded())
    }

    static let encoder: JSONEncoder = {  // the reference the fast writer matches (tests compare them)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.dateEncodingStrategy = Timestamp.encodingStrategy
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = Timestamp.decodingStrategy
        return decoder
    }()
}

extension CaseSearchProjection.Display {
    /// The display as JSON, byte for byte what `JSONEncoder` with sorted keys writes, without
    /// its cost (it runs on every document write).
    public func encoded() -> Data {
        var writer = FlatJSONWriter()
        writer.string("assignee", assignee)
        writer.integer("clearance", clearance)
        writer.string("id", id)
        writer.string("opened_at", Timestamp.iso8601(openedAt))
        writer.strings("parties", parties)
        writer.string("priority", priority.rawValue)
        writer.string("region", region.rawValue)
        writer.bool("restricted", restricted)
        writer.string("sector", sector.rawValue)
        writer.string("sla_due_at", Timestamp.iso8601(slaDueAt))
        writer.string("status", status.rawValue)
        writer.string("team", team)
        writer.string("title", title)
        writer.integer("version", version)
        return writer.finish()
    }

    /// Reads a stored display; anything the flat reader does not expect goes through `JSONDecoder`.
    public static func decode(_ data: Data) throws -> Self {
        if let values = FlatJSON.parse(data), let display = Self(values) { return display }
        return try CaseSearchProjection.decoder.decode(Self.self, from: data)
    }

    init?(_ values: [String: FlatJSON.Value]) {
        func text(_ key: String) -> String? { if case .string(let value)? = values[key] { value } else { nil } }
        func integer(_ key: String) -> Int64? { if case .integer(let value)? = values[key] { value } else { nil } }
        guard let id = text("id"), let title = text("title"), let status = text("status").flatMap(CaseStatus.init(rawValue:)),
              let sector = text("sector").flatMap(Sector.init(rawValue:)), let region = text("region").flatMap(Region.init(rawValue:)),
              let priority = text("priority").flatMap(Priority.init(rawValue:)), let team = text("team"),
              case .bool(let restricted)? = values["restricted"], case .strings(let parties)? = values["parties"],
              let openedAt = text("opened_at").flatMap(Timestamp.parseISO8601), let slaDueAt = text("sla_due_at").flatMap(Timestamp.parseISO8601),
              let version = integer("version")
        else { return nil }
        var assignee: String?
        switch values["assignee"] {
        case nil, .null?: assignee = nil
        case .string(let value)?: assignee = value
        default: return nil
        }
        var clearance: Int?
        switch values["clearance"] {
        case nil, .null?: clearance = nil
        case .integer(let value)?: clearance = Int(value)
        default: return nil
        }
        self.init(
            id: id, title: title, status: status, sector: sector, region: region, priority: priority, team: team, assignee: assignee,
            restricted: restricted, clearance: clearance, parties: parties, openedAt: openedAt, slaDueAt: slaDueAt, version: version)
    }
}

/// An event a projection cannot fold: it goes through the failure policy (retry, dead letter).
public struct ProjectionFoldError: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String

    public static func missingDocument(key: String, type: String) -> Self {
        Self(message: "\(type) for \(key) arrived but the document does not exist (was case.opened applied?)")
    }

    public var description: String { message }
}
