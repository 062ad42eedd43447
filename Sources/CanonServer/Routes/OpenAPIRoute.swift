import Hummingbird

/// Serves the OpenAPI 3.1 document of every route at `/openapi.yaml`.
struct OpenAPIRoute {
    func register(on router: Router<CanonRequestContext>) {
        router.get("openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
    }
}
