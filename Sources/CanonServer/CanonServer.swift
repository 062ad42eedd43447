import Canon
import CasePlatform
import Hummingbird
import Logging

/// CanonServer: the platform's HTTP API on Hummingbird 2.
///
/// - JSON in and out, errors as `application/problem+json` (RFC 9457), mapped from typed errors
///   here and nowhere else (`ProblemMiddleware`).
/// - A bearer token names the principal (`BearerAuthMiddleware`); every `/v1` route needs one.
/// - Every route is described in `/openapi.yaml`; a test fails when one is missing.
///
/// ```swift
/// let services = try await PlatformServices(store: store)
/// let app = CanonServer.application(services: services, configuration: .init(port: 8080), logger: logger)
/// try await app.runService()   // stops cleanly on SIGTERM and SIGINT
/// ```
public enum CanonServer {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Request bodies above this size get 413 before any parsing.
        public var maxBodyBytes: Int

        public init(host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = 64 * 1024) {
            self.host = host
            self.port = port
            self.maxBodyBytes = maxBodyBytes
        }
    }

    /// The router with every route and middleware, for tests without a network.
    public static func router(services: PlatformServices, configuration: Configuration = Configuration()) -> Router<CanonRequestContext> {
        let router = Router(context: CanonRequestContext.self)
        let table = RouteTable()
        router.add(middleware: ProblemMiddleware(routes: table))
        router.add(middleware: BodyLimitMiddleware(maxBodyBytes: configuration.maxBodyBytes))
        HealthRoutes(services: services).register(on: router)
        OpenAPIRoute().register(on: router)
        HomeRoute(services: services).register(on: router)
        OperationsRoutes.registerMetrics(on: router, services: services)
        let v1 = router.group("v1").add(middleware: BearerAuthMiddleware(services: services))
        // The command routes: their commands require the principal's row unchanged at commit.
        let commands = router.group("v1").add(middleware: BearerAuthMiddleware(services: services, verifiedAtCommit: true))
        CaseRoutes(services: services).register(on: v1, commands: commands)
        PartyRoutes(services: services).register(on: v1, commands: commands)
        DerivedReadRoutes(services: services).register(on: v1)
        OperationsRoutes(services: services).register(on: v1)
        table.record(router.routes.map { (path: $0.path.description, method: $0.method.rawValue) })
        return router
    }

    /// The whole server: `runService()` runs it until SIGTERM or SIGINT, then drains and stops.
    public static func application(
        services: PlatformServices, configuration: Configuration, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(services: services, configuration: configuration),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "canon"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }
}
