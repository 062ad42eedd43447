import CasePlatform
import Hummingbird

/// Parties: people and organisations, registered once and linked to cases.
struct PartyRoutes {
    let services: PlatformServices

    /// `commands`: the routes that only run `CaseCommands` (which verify the principal at commit).
    func register(on group: RouterGroup<CanonRequestContext>, commands: RouterGroup<CanonRequestContext>) {
        commands.post("parties", use: registerParty)
        group.get("parties/{id}", use: readParty)
        group.get("me", use: me)
    }

    @Sendable func registerParty(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        let body = try await JSONBody.decode(RegisterPartyRequest.self, from: request, context: context)
        let outcome = try await services.commands(for: .registerParty).registerParty(body, by: context.requirePrincipal(), correlationID: context.correlationID)
        return try JSONBody.response(
            CaseRoutes.WriteAnswer(id: outcome.id, version: outcome.version, status: nil, position: outcome.position),
            status: .created, headers: [.location: "/v1/parties/\(outcome.id)"])
    }

    @Sendable func readParty(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        let id = try context.parameters.require("id")
        let principal = try context.requirePrincipal()
        let view = try await services.audited(.viewParty, target: "party/\(id)", caseID: nil, by: principal) { () async throws -> PartyView in
            let queries = try services.queries(for: .viewParty)
            guard let party = try await queries.party(id) else { throw DomainError.notFound("party", id: id) }
            let teams = try await queries.caseTeams(linkedTo: party.id, visibleTo: principal)
            return PartyView(party, for: principal, caseTeams: teams)
        }
        return try JSONBody.response(view)
    }

    @Sendable func me(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try QueryParameters.requireNone(request)
        return try JSONBody.response(try context.requirePrincipal())
    }
}
