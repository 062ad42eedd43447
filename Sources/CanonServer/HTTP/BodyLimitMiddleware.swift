import Hummingbird

/// Refuses bodies above the limit with 413, by `Content-Length` before reading and by counting
/// while collecting, so an oversize body never reaches a decoder.
///
/// A body whose `Content-Length` is within the limit is left to the route to read: HTTP/1.1
/// framing holds it to that length, so collecting it here first would only read it twice. On
/// the scaled-out server that second read was about 6% of a write's CPU (BENCHMARKS.md,
/// "Fourteenth session"). Only a body of unstated length (chunked) is collected here, against
/// the limit.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let length = request.headers[.contentLength].flatMap(Int.init)
        if let length, length > maxBodyBytes {
            throw tooLarge
        }
        guard length == nil, request.method == .post || request.method == .put || request.method == .patch else {
            return try await next(request, context)
        }
        var request = request
        do {
            _ = try await request.collectBody(upTo: maxBodyBytes)
        } catch {
            throw tooLarge
        }
        return try await next(request, context)
    }

    private var tooLarge: ProblemDetails {
        ProblemDetails(status: .contentTooLarge, slug: "body-too-large", title: "Request body too large",
                       detail: "request bodies are limited to \(maxBodyBytes) bytes")
    }
}
