import Canon
import Foundation
import Hummingbird

/// Decoding request bodies and encoding answers, with errors a client can act on.
enum JSONBody {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = Timestamp.encodingStrategy
        return encoder
    }()

    /// Decodes the body as `T`.
    ///
    /// - Throws: `ProblemDetails` 415 for a non-JSON content type, 400 for an empty or malformed
    ///   body, 422 naming the field for a missing, null or wrongly typed field.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        if let contentType = request.headers[.contentType], !mentionsJSON(contentType) {
            throw ProblemDetails(status: .unsupportedMediaType, slug: "unsupported-media-type", title: "Unsupported media type",
                                 detail: "send the body as application/json; got \(contentType)")
        }
        var request = request
        let buffer = try await request.collectBody(upTo: context.maxUploadSize)
        guard buffer.readableBytes > 0 else { throw ProblemDetails.badRequest("a JSON body is required") }
        let body = Data(buffer: buffer)
        // The hot bodies are read by the flat reader; anything it refuses, by the decoder.
        if let flat = T.self as? any FlatDecodable.Type, let object = FlatObject(body, strict: true), let value = flat.init(flat: object) as? T {
            return value
        }
        let value: T
        do {
            value = try JSONDecoder().decode(T.self, from: body)
        } catch let error as DecodingError {
            throw problem(error, body: body)
        }
        if let field = unknownField(in: body, decoded: value) {
            throw ProblemDetails.invalidBody("\(field) is not a field of this request (misspelt?); it would be ignored", field: field)
        }
        return value
    }

    /// A field of the body that the decoded value does not have: the value encoded again lacks
    /// it. (A field whose value is null is left alone: an optional field that is absent encodes
    /// to nothing.) Nil when every field was taken, or the type cannot be encoded to tell.
    static func unknownField(in body: Data, decoded value: some Decodable) -> String? {
        guard let encodable = value as? any Encodable,
              let sent = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              let taken = try? JSONSerialization.jsonObject(with: encoder.encode(encodable)) as? [String: Any]
        else { return nil }
        return sent.keys.sorted().first { taken[$0] == nil && !(sent[$0] is NSNull) }
    }

    private static let json = Array("json".utf8)

    /// Whether a content type names JSON (`application/json`, `application/problem+json`, any
    /// case), read as bytes: `String.contains` from Foundation bridges to `NSString` on every
    /// request (about 2% of a write's CPU in the server).
    static func mentionsJSON(_ contentType: String) -> Bool {
        var bytes = contentType.utf8[...]
        while bytes.count >= json.count {
            if zip(bytes.prefix(json.count), json).allSatisfy({ $0 | 0x20 == $1 }) { return true }
            bytes = bytes.dropFirst()
        }
        return false
    }

    static func problem(_ error: DecodingError, body: Data) -> ProblemDetails {
        func path(_ context: DecodingError.Context, _ key: (any CodingKey)? = nil) -> String {
            let keys = context.codingPath + (key.map { [$0] } ?? [])
            return keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return .invalidBody("\(path(context, key)) is required", field: path(context, key))
        case .valueNotFound(let type, let context):
            return .invalidBody("\(path(context)) must not be null (expected \(describe(type)))", field: path(context))
        case .typeMismatch(let type, let context):
            if context.codingPath.isEmpty { return .badRequest("the body must be a JSON object") }
            return .invalidBody("\(path(context)) must be \(describe(type))", field: path(context))
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                // Foundation reports a fraction where an integer belongs as corrupt data with no
                // path; find the field ourselves so the client learns which one.
                if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] {
                    let fractional = object.keys.sorted().first { key in
                        guard let number = object[key] as? NSNumber, !(object[key] is Bool) else { return false }
                        return number.doubleValue.rounded() != number.doubleValue || abs(number.doubleValue) > 9e18
                    }
                    if let fractional { return .invalidBody("\(fractional) must be an integer", field: fractional) }
                }
                return .badRequest("the body is not valid JSON")
            }
            return .invalidBody("\(path(context)) is malformed: \(context.debugDescription)", field: path(context))
        @unknown default:
            return .badRequest("the body could not be decoded")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        default: "\(type)"
        }
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        let data: Data
        if let flat = value as? any FlatEncodable {
            // Byte for byte what `encoder` writes (`FlatEncodable`).
            var writer = FlatJSONWriter(capacity: 128, escapingSlashes: false)
            flat.encode(into: &writer)
            data = writer.finish()
        } else {
            data = try encoder.encode(value)
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
