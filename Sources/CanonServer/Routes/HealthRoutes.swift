import Canon
import Hummingbird

/// Liveness and readiness: `/health` answers while the process runs; `/ready` only while the
/// canonical store answers too.
struct HealthRoutes {
    let services: PlatformServices

    func register(on router: Router<CanonRequestContext>) {
        router.get("health", use: health)
        router.get("ready", use: ready)
    }

    struct Health: Encodable {
        var status: String
    }

    struct Readiness: Encodable {
        var status: String
        var headPosition: OutboxPosition

        enum CodingKeys: String, CodingKey {
            case status
            case headPosition = "head_position"
        }
    }

    @Sendable func health(_ request: Request, context: CanonRequestContext) async throws -> Response {
        try JSONBody.response(Health(status: "ok"))
    }

    @Sendable func ready(_ request: Request, context: CanonRequestContext) async throws -> Response {
        do {
            try await services.store.checkHealth()
            return try JSONBody.response(Readiness(status: "ready", headPosition: try await services.store.headPosition()))
        } catch {
            throw ProblemDetails(status: .serviceUnavailable, slug: "not-ready", title: "Not ready", detail: "the canonical store does not answer: \(error)")
        }
    }
}
