import Canon
import CasePlatform
import Hummingbird
import Logging

/// Turns every error into an `application/problem+json` answer with the right status.
///
/// Only this middleware maps errors to statuses. An error it does not know becomes a 500 and is
/// logged: tests treat any 500 as a bug.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: RouteTable

    /// Also times every request, answered or refused (`canon_http_request_duration_seconds` by
    /// route template, method and status): this middleware sees every answer.
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response = try await answer(request, context: context, next: next)
        HTTPMetrics.record(route: context.endpointPath, method: request.method, status: response.status, elapsed: ContinuousClock.now - started)
        return response
    }

    private func answer(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && error.body == nil {
            let allowed = routes.methods(for: request.uri.path)
            guard !allowed.isEmpty else { return try problem(for: error, context: context).response(from: request, context: context) }
            return try ProblemDetails(
                status: .methodNotAllowed, slug: "method-not-allowed", title: "Method not allowed",
                detail: "\(request.uri.path) accepts \(allowed.joined(separator: ", ")), not \(request.method.rawValue)",
                headers: [.allow: allowed.joined(separator: ", ")]
            ).response(from: request, context: context)
        } catch {
            return try problem(for: error, context: context).response(from: request, context: context)
        }
    }

    private func problem(for error: any Error, context: Context) -> ProblemDetails {
        switch error {
        case let problem as ProblemDetails:
            return problem
        case let error as DomainError:
            return ProblemDetails(error)
        case let error as ReadPolicyViolation:
            // Wiring that breaks the portfolio: refused, never answered from a store it may not read.
            context.logger.error("read policy violation", metadata: ["error": "\(error)", "operation": "\(error.operation)"])
            return ProblemDetails(status: .internalServerError, slug: "read-policy-violation", title: "The operation may not read this store", detail: error.message)
        case let error as CanonicalStoreError:
            if error.code != .storage { context.logger.error("canonical store error", metadata: ["error": "\(error)"]) }
            return ProblemDetails(error)
        case let error as ProjectionError:
            let status: HTTPResponse.Status = switch error.code {
            case .unknownProjection, .unknownDeadLetter: .notFound
            case .invalidRewind: .unprocessableContent
            case .checkpointConflict, .stillFailing: .conflict
            case .timedOut, .storage: .serviceUnavailable
            }
            return ProblemDetails(status: status, slug: error.code.rawValue, title: "Projection operation refused", detail: error.message)
        case let error as ProjectionFoldError:
            return ProblemDetails(status: .conflict, slug: "projection-still-failing", title: "The projection still cannot apply the event", detail: error.message)
        case let error as HTTPError:
            let detail = error.body ?? (error.status == .notFound ? "no route matches this method and path; see /openapi.yaml" : error.status.reasonPhrase)
            return ProblemDetails(status: error.status, slug: slug(error.status), title: error.status.reasonPhrase, detail: detail)
        case let error as any HTTPResponseError:
            let detail = error.status == .contentTooLarge ? "the request body is larger than the server accepts" : error.status.reasonPhrase
            return ProblemDetails(status: error.status, slug: slug(error.status), title: error.status.reasonPhrase, detail: detail)
        default:
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return ProblemDetails(status: .internalServerError, slug: "internal", title: "Internal error", detail: "an unexpected error occurred; it has been logged")
        }
    }

    private func slug(_ status: HTTPResponse.Status) -> String {
        status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "-")
    }
}
