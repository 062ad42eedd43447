import CasePlatform
import Hummingbird

/// Resolves `Authorization: Bearer TOKEN` to a principal, or answers 401.
///
/// The token's signature is checked first, then the user it names is read from the canonical
/// store, so a removed user's token stops working at once. Behind the command routes
/// (`verifiedAtCommit`) the principal an earlier request read serves instead: their commands
/// require the principal's row unchanged at commit and decide again on a change
/// (`CaseCommands`), so a change still takes effect on the next write.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = CanonRequestContext
    let services: PlatformServices
    /// The routes behind it run commands that require the principal's row unchanged at commit
    /// (`CaseCommands`): a principal read by an earlier request may serve, the commit checks it.
    var verifiedAtCommit = false

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw DomainError.unauthenticated("this route needs Authorization: Bearer TOKEN; `canon token --data DIR --user NAME` prints one")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw DomainError.unauthenticated("the Authorization header must be \"Bearer TOKEN\"")
        }
        let userID: String
        do {
            userID = try services.tokens.userID(from: String(parts[1]).trimmingWhiteSpace(), now: services.now())
        } catch {
            throw DomainError.unauthenticated(error.message)
        }
        var context = context
        if verifiedAtCommit, let known = services.principals.serve(userID) {
            context.principal = known
            context.principalRead = false
            context.logger[metadataKey: "principal.id"] = .string(known.id)
            let decided = PrincipalCache.Decided()
            do {
                return try await PrincipalCache.$decided.withValue(decided) { try await next(request, context) }
            } catch {
                // Whatever failed was decided on the kept principal (or on the one the command
                // read again), before any commit could check it (a refusal, a version or state
                // the command reports): it may tell only a principal who still holds those rights.
                services.principals.forget(userID)
                guard let current = try await services.queries.user(userID) else {
                    throw DomainError.principalGone(userID)
                }
                services.principals.keep(current)
                guard current == (decided.value ?? known) else {
                    throw DomainError.principalChanged(userID)
                }
                throw error
            }
        }
        // Role, team and clearance come from canonical state on every other request.
        guard let user = try await services.queries.user(userID) else {
            services.principals.forget(userID)
            throw DomainError.principalGone(userID)
        }
        services.principals.keep(user)
        context.principal = user
        context.logger[metadataKey: "principal.id"] = .string(user.id)
        return try await next(request, context)
    }
}
