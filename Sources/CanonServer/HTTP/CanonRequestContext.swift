import CasePlatform
import Hummingbird

/// The per-request context: Hummingbird's core storage plus the authenticated principal.
public struct CanonRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `BearerAuthMiddleware` on every `/v1` route.
    public var principal: User?
    /// Whether `principal` was read from canonical state for this request; false when a route
    /// whose commands verify it at commit took it from `PlatformServices.principals`.
    public var principalRead = true

    public init(source: Source) {
        coreContext = .init(source: source)
        principal = nil
    }

    /// The principal, which `BearerAuthMiddleware` guarantees on `/v1` routes.
    public func requirePrincipal() throws -> User {
        guard let principal else { throw ProblemDetails(status: .unauthorized, slug: "unauthenticated", title: "Authentication required", detail: "send Authorization: Bearer TOKEN; `canon token --data DIR --user NAME` prints one") }
        return principal
    }

    /// The id that ties this request's events together (`X-Request-ID`, or one Hummingbird made).
    public var correlationID: String { logger[metadataKey: "hb.request.id"].map { "\($0)" } ?? "unknown" }
}
