import Foundation
import Canon
import CasePlatform
import Hummingbird

/// The canonical case routes: every read here is from the canonical store.
struct CaseRoutes {
    let services: PlatformServices

    /// `commands`: the routes that only run `CaseCommands` (which verify the principal at commit).
    func register(on group: RouterGroup<CanonRequestContext>, commands: RouterGroup<CanonRequestContext>) {
        commands.post("cases", use: openCase)
        group.get("cases/{id}", use: readCase)
        commands.post("cases/{id}/transitions", use: transition)
        commands.post("cases/{id}/assignment", use: assign)
        commands.post("cases/{id}/restriction", use: restrict)
        commands.post("cases/{id}/purge", use: purge)
        commands.post("cases/{id}/hold", use: placeHold)
        commands.post("cases/{id}/hold/release", use: releaseHold)
        group.get("cases/{id}/hold", use: hold)
        commands.post("cases/{id}/team", use: changeTeam)
        group.get("cases/{id}/history", use: history)
        commands.post("cases/{id}/parties", use: linkParty)
        group.get("cases/{id}/parties", use: parties)
        commands.post("cases/{id}/evidence", use: addEvidence)
        group.get("cases/{id}/evidence", use: evidence)
        group.get("cases/{id}/evidence/{evidence}", use: oneEvidence)
        group.post("cases/{id}/enforcement-notice", use: enforcementNotice)
    }

    /// What a write answers (written by the flat writer, `FlatEncodable`: every command's answer).
    struct WriteAnswer: FlatEncodable {
        var id: String
        var version: Int64
        var status: CaseStatus?
        var position: OutboxPosition

        func encode(into writer: inout FlatJSONWriter) {
            writer.string("id", id)
            writer.integer("position", position.rawValue)
            writer.string("status", status?.rawValue)
            writer.integer("version", version)
        }
    }

    @Sendable func openCase(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        let body = try await JSONBody.decode(OpenCaseRequest.self, from: request, context: context)
        let outcome = try await services.commands(for: .openCase).openCase(body, by: context.requirePrincipal(), correlationID: context.correlationID)
        return try JSONBody.response(
            WriteAnswer(id: outcome.id, version: outcome.version, status: outcome.status, position: outcome.position),
            status: .created, headers: [.location: "/v1/cases/\(outcome.id)", .eTag: etag(outcome.version)])
    }

    @Sendable func readCase(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        let item = try await audited(.viewCase, context) { try await visibleCase(context, for: .viewCase) }
        return try JSONBody.response(item, headers: [.eTag: etag(item.version)])
    }

    @Sendable func transition(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        return try await change(.transitionCase, request, context, as: TransitionRequest.self) { id, body, ifMatch, principal, correlation in
            try await services.commands(for: .transitionCase).transition(id, body, ifMatch: ifMatch, by: principal, correlationID: correlation)
        }
    }

    @Sendable func assign(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        return try await change(.assignInvestigator, request, context, as: AssignmentRequest.self) { id, body, ifMatch, principal, correlation in
            try await services.commands(for: .assignInvestigator).assign(id, body, ifMatch: ifMatch, by: principal, correlationID: correlation)
        }
    }

    @Sendable func restrict(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        return try await change(.restrictCase, request, context, as: RestrictionRequest.self) { id, body, ifMatch, principal, correlation in
            try await services.commands(for: .restrictCase).restrict(id, body, ifMatch: ifMatch, by: principal, correlationID: correlation)
        }
    }

    struct PurgeRequest: Codable { var reason: String }

    /// Purges a closed case (legal and admins): `{"reason": "…"}`.
    @Sendable func purge(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        return try await change(.purgeCase, request, context, as: PurgeRequest.self) { id, body, ifMatch, principal, correlation in
            try await services.commands(for: .purgeCase).purge(id, reason: body.reason, ifMatch: ifMatch, by: principal, correlationID: correlation)
        }
    }

    struct HoldRequest: Codable { var reason: String }

    /// Places a legal hold on a case (legal and admins): `{"reason": "…"}`.
    @Sendable func placeHold(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        return try await change(.placeLegalHold, request, context, as: HoldRequest.self) { id, body, ifMatch, principal, correlation in
            try await services.commands(for: .placeLegalHold).placeHold(id, reason: body.reason, ifMatch: ifMatch, by: principal, correlationID: correlation)
        }
    }

    /// Lifts a case's legal hold (legal and admins): `{"reason": "…"}`.
    @Sendable func releaseHold(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        return try await change(.releaseLegalHold, request, context, as: HoldRequest.self) { id, body, ifMatch, principal, correlation in
            try await services.commands(for: .releaseLegalHold).releaseHold(id, reason: body.reason, ifMatch: ifMatch, by: principal, correlationID: correlation)
        }
    }

    struct HoldAnswer: Encodable {
        var caseID: String
        var held: Bool
        var hold: LegalHold?

        enum CodingKeys: String, CodingKey {
            case held, hold
            case caseID = "case_id"
        }
    }

    /// Whether the case is under legal hold (anyone who may see the case).
    @Sendable func hold(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        let item = try await audited(.viewLegalHold, context) { try await visibleCase(context, for: .viewLegalHold) }
        let hold = try await services.queries(for: .viewLegalHold).legalHold(caseID: item.id)
        return try JSONBody.response(HoldAnswer(caseID: item.id, held: hold != nil, hold: hold))
    }

    @Sendable func changeTeam(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        return try await change(.changeTeam, request, context, as: TeamChangeRequest.self) { id, body, ifMatch, principal, correlation in
            try await services.commands(for: .changeTeam).changeTeam(id, body, ifMatch: ifMatch, by: principal, correlationID: correlation)
        }
    }

    /// A change to an existing case: `If-Match`, then the body, then the command, audited.
    private func change<Body: Decodable>(
        _ operation: PlatformOperation, _ request: Request, _ context: CanonRequestContext, as type: Body.Type,
        command: (String, Body, Int64?, User, String) async throws -> CaseCommands.Outcome
    ) async throws -> Response {
        let ifMatch = try parseIfMatch(request)
        let body = try await JSONBody.decode(Body.self, from: request, context: context)
        let outcome = try await audited(operation, context) {
            try await command(try caseID(context), body, ifMatch, try context.requirePrincipal(), context.correlationID)
        }
        return try answer(outcome)
    }

    /// Runs `body` under the access audit for the case in the path.
    private func audited<T: Sendable>(_ operation: PlatformOperation, _ context: CanonRequestContext, _ body: () async throws -> T) async throws -> T {
        try await services.audited(operation, caseID: try caseID(context), by: try context.requirePrincipal(), current: context.principalRead, body)
    }

    struct HistoryAnswer: Encodable {
        var caseID: String
        var entries: [CaseTransition]

        enum CodingKeys: String, CodingKey {
            case entries
            case caseID = "case_id"
        }
    }

    @Sendable func history(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        let item = try await audited(.viewCaseHistory, context) { try await visibleCase(context, for: .viewCaseHistory) }
        return try JSONBody.response(HistoryAnswer(caseID: item.id, entries: try await services.queries(for: .viewCaseHistory).history(caseID: item.id)))
    }

    struct LinkAnswer: Encodable {
        var caseID: String
        var partyID: String
        var role: String
        var version: Int64
        var position: OutboxPosition

        enum CodingKeys: String, CodingKey {
            case role, version, position
            case caseID = "case_id", partyID = "party_id"
        }
    }

    @Sendable func linkParty(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        let ifMatch = try parseIfMatch(request)
        let body = try await JSONBody.decode(LinkPartyRequest.self, from: request, context: context)
        let outcome = try await services.commands(for: .linkParty).linkParty(
            try caseID(context), body, ifMatch: ifMatch, by: context.requirePrincipal(), correlationID: context.correlationID)
        return try JSONBody.response(
            LinkAnswer(caseID: outcome.id, partyID: body.partyID, role: body.role, version: outcome.version, position: outcome.position),
            status: .created, headers: [.eTag: etag(outcome.version)])
    }

    struct PartiesAnswer: Encodable {
        var caseID: String
        var parties: [LinkedParty]

        enum CodingKeys: String, CodingKey {
            case parties
            case caseID = "case_id"
        }
    }

    struct LinkedParty: Encodable {
        var link: CasePartyLink
        var party: PartyView

        func encode(to encoder: any Encoder) throws {
            try link.encode(to: encoder)
            try party.encode(to: encoder)
        }
    }

    @Sendable func parties(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        let item = try await audited(.viewCaseParties, context) { try await visibleCase(context, for: .viewCaseParties) }
        let principal = try context.requirePrincipal()
        let queries = try services.queries(for: .viewCaseParties)
        var linked: [LinkedParty] = []
        for link in try await queries.partyLinks(caseID: item.id) {
            guard let party = try await queries.party(link.partyID) else { continue }
            linked.append(LinkedParty(link: link, party: PartyView(party, for: principal, caseTeams: [item.team])))
        }
        return try JSONBody.response(PartiesAnswer(caseID: item.id, parties: linked))
    }

    struct EvidenceAnswer: Encodable {
        var id: String
        var caseID: String
        var caseVersion: Int64
        var position: OutboxPosition

        enum CodingKeys: String, CodingKey {
            case id, position
            case caseID = "case_id", caseVersion = "case_version"
        }
    }

    @Sendable func addEvidence(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        let ifMatch = try parseIfMatch(request)
        let body = try await JSONBody.decode(AddEvidenceRequest.self, from: request, context: context)
        let id = try caseID(context)
        let outcome = try await services.commands(for: .addEvidence).addEvidence(
            id, body, ifMatch: ifMatch, by: context.requirePrincipal(), correlationID: context.correlationID)
        return try JSONBody.response(
            EvidenceAnswer(id: outcome.id, caseID: id, caseVersion: outcome.version, position: outcome.position),
            status: .created, headers: [.location: "/v1/cases/\(id)/evidence"])
    }

    struct EvidenceListAnswer: Encodable {
        var caseID: String
        var evidence: [Evidence]

        enum CodingKeys: String, CodingKey {
            case evidence
            case caseID = "case_id"
        }
    }

    @Sendable func evidence(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        let item = try await audited(.viewRestrictedEvidence, context) { try await visibleCase(context, for: .viewRestrictedEvidence) }
        return try JSONBody.response(EvidenceListAnswer(caseID: item.id, evidence: try await services.queries(for: .viewRestrictedEvidence).evidence(caseID: item.id)))
    }

    /// Never-stale: built from canonical state at the case's current version, never from a projection.
    @Sendable func enforcementNotice(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        let notice = try await audited(.generateEnforcementNotice, context) {
            try await services.queries(for: .generateEnforcementNotice)
                .enforcementNotice(caseID: try caseID(context), by: context.requirePrincipal(), at: services.now())
        }
        return try JSONBody.response(notice, headers: [.eTag: etag(notice.caseVersion)])
    }

    /// One piece of evidence, read from canonical state and audited (view restricted evidence).
    @Sendable func oneEvidence(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        let evidenceID = try context.parameters.require("evidence")
        let item = try await audited(.viewRestrictedEvidence, context) { () async throws -> Evidence in
            let visible = try await visibleCase(context, for: .viewRestrictedEvidence)
            guard let found = try await services.queries(for: .viewRestrictedEvidence).evidence(caseID: visible.id).first(where: { $0.id == evidenceID }) else {
                throw DomainError.notFound("evidence", id: evidenceID)
            }
            return found
        }
        return try JSONBody.response(item)
    }

    // MARK: - Helpers

    private func caseID(_ context: CanonRequestContext) throws -> String {
        try context.parameters.require("id")
    }

    /// The case, read from canonical state for `operation`, when the principal may see it.
    private func visibleCase(_ context: CanonRequestContext, for operation: PlatformOperation) async throws -> Case {
        let id = try caseID(context)
        guard let item = try await services.queries(for: operation).caseIfVisible(id, to: context.requirePrincipal()) else {
            throw DomainError.notFound("case", id: id)
        }
        return item
    }

    private func answer(_ outcome: CaseCommands.Outcome) throws -> Response {
        try JSONBody.response(
            WriteAnswer(id: outcome.id, version: outcome.version, status: outcome.status, position: outcome.position),
            headers: [.eTag: etag(outcome.version)])
    }

    private func etag(_ version: Int64) -> String { "\"\(version)\"" }

    /// The version an `If-Match` header names: `"3"`, `W/"3"` or `3`; nil when absent or `*`.
    private func parseIfMatch(_ request: Request) throws -> Int64? {
        guard let header = request.headers[.ifMatch]?.trimmingCharacters(in: .whitespaces), header != "*" else { return nil }
        var value = Substring(header)
        if value.hasPrefix("W/") { value = value.dropFirst(2) }
        value = Substring(value.trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
        guard let version = Int64(value), version >= 1 else {
            throw ProblemDetails.badRequest("If-Match must name a case version as an ETag, e.g. If-Match: \"3\"; got \(header)")
        }
        return version
    }
}
