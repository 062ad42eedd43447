import Canon
import CasePlatform
import Foundation
import Hummingbird

/// An RFC 9457 problem document: the body of every error answer.
public struct ProblemDetails: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var type: String
    public var title: String
    public var detail: String
    /// Extension members, e.g. the field at fault or the case's current version.
    public var extensions: [String: ExtensionValue]
    public var headers: HTTPFields

    public enum ExtensionValue: Sendable, Encodable, Equatable {
        case string(String), int(Int64), strings([String])

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let value): try container.encode(value)
            case .int(let value): try container.encode(value)
            case .strings(let value): try container.encode(value)
            }
        }
    }

    public init(status: HTTPResponse.Status, slug: String, title: String, detail: String, extensions: [String: ExtensionValue] = [:], headers: HTTPFields = [:]) {
        self.status = status
        self.type = "urn:canon:problem:\(slug)"
        self.title = title
        self.detail = detail
        self.extensions = extensions
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var body: [String: ExtensionValue] = extensions
        body["type"] = .string(type)
        body["title"] = .string(title)
        body["status"] = .int(Int64(status.code))
        body["detail"] = .string(detail)
        body["instance"] = .string(request.uri.path)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(body)
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension ProblemDetails {
    /// The one place that maps the platform's typed errors to HTTP statuses.
    init(_ error: DomainError) {
        switch error.code {
        case .invalid:
            self.init(status: .unprocessableContent, slug: "invalid-field", title: "Invalid field", detail: error.message,
                      extensions: error.field.map { ["field": .string($0)] } ?? [:])
        case .notFound:
            self.init(status: .notFound, slug: "not-found", title: "Not found", detail: error.message)
        case .transitionRefused:
            self.init(status: .conflict, slug: "transition-refused", title: "Transition refused by the case state machine", detail: error.message)
        case .conflict:
            self.init(status: .conflict, slug: "conflict", title: "Conflict with the current state", detail: error.message)
        case .versionMismatch:
            self.init(status: .preconditionFailed, slug: "version-mismatch", title: "The case has changed", detail: error.message)
        case .forbidden:
            self.init(status: .forbidden, slug: "forbidden", title: "Not allowed for this principal", detail: error.message)
        case .unauthenticated:
            self.init(status: .unauthorized, slug: "unauthenticated", title: "Authentication required", detail: error.message,
                      headers: [.wwwAuthenticate: "Bearer"])
        }
    }

    init(_ error: CanonicalStoreError) {
        switch error.code {
        case .streamVersionConflict, .uniqueViolation, .requirementFailed:
            self.init(status: .conflict, slug: "conflict", title: "Conflict with the current state", detail: error.message)
        case .storage:
            self.init(status: .serviceUnavailable, slug: "store-unavailable", title: "Canonical store unavailable", detail: error.message)
        case .invalidValue:
            self.init(status: .unprocessableContent, slug: "invalid-value", title: "A value cannot be stored", detail: error.message)
        default:
            self.init(status: .internalServerError, slug: "internal", title: "Internal error", detail: "the canonical store failed: \(error.message)")
        }
    }

    static func badRequest(_ detail: String) -> Self {
        ProblemDetails(status: .badRequest, slug: "malformed-request", title: "Malformed request", detail: detail)
    }

    static func invalidBody(_ detail: String, field: String?) -> Self {
        ProblemDetails(status: .unprocessableContent, slug: "invalid-field", title: "Invalid field", detail: detail,
                       extensions: field.map { ["field": .string($0)] } ?? [:])
    }
}
