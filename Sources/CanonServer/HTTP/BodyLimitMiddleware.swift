import Hummingbird

/// Refuses bodies above the limit with 413, by `Content-Length` before reading and by counting
/// while collecting, so an oversize body never reaches a decoder.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            throw tooLarge
        }
        guard request.method == .post || request.method == .put || request.method == .patch else {
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
