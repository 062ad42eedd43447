import CasePlatform
import Hummingbird

/// Resolves `Authorization: Bearer TOKEN` to a principal, or answers 401.
///
/// The token's signature is checked first, then the user it names is read from the canonical
/// store, so a removed user's token stops working at once.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = CanonRequestContext
    let services: PlatformServices

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
            userID = try services.tokens.userID(from: String(parts[1]).trimmingCharacters(in: .whitespaces), now: services.now())
        } catch {
            throw DomainError.unauthenticated(error.message)
        }
        // Role, team and clearance come from canonical state on every request.
        guard let user = try await services.queries.user(userID) else {
            throw DomainError.unauthenticated("the bearer token names user \(userID), who no longer exists")
        }
        var context = context
        context.principal = user
        context.logger[metadataKey: "principal.id"] = .string(user.id)
        return try await next(request, context)
    }
}
