/// Why the platform refused a command or a read, in words a user can act on.
///
/// The HTTP layer maps `code` to a status (invalid → 422, notFound → 404, transitionRefused and
/// conflict → 409, versionMismatch → 412, forbidden → 403, unauthenticated → 401); nothing
/// else in the platform knows about HTTP.
public struct DomainError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        case invalid, notFound, transitionRefused, conflict, versionMismatch, forbidden, unauthenticated
    }

    public let code: Code
    public let message: String
    /// For `invalid`: the field at fault.
    public let field: String?

    private init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public static func invalid(field: String, _ reason: String) -> Self { Self(.invalid, "\(field) \(reason)", field: field) }

    /// The same error about a field inside `container`: `name must not be empty` becomes
    /// `parties[0].name must not be empty`.
    func nested(in container: String) -> Self { Self(code, "\(container).\(message)", field: field.map { "\(container).\($0)" }) }

    public static func notFound(_ kind: String, id: String) -> Self { Self(.notFound, "no \(kind) with id \"\(id)\"") }

    public static func transitionRefused(from: CaseStatus, to: CaseStatus) -> Self {
        let allowed = from.allowedNextStatuses.map(\.rawValue).joined(separator: ", ")
        return Self(.transitionRefused, "a case in \(from.rawValue) cannot move to \(to.rawValue); allowed from \(from.rawValue): \(allowed)")
    }

    public static func conflict(_ message: String) -> Self { Self(.conflict, message) }

    public static func versionMismatch(expected: Int64, actual: Int64) -> Self {
        Self(.versionMismatch, "the case is at version \(actual), not \(expected) as If-Match says; read it again and retry")
    }

    public static func forbidden(_ message: String) -> Self { Self(.forbidden, message) }

    public static func unauthenticated(_ message: String) -> Self { Self(.unauthenticated, message) }

    /// A valid token names a user who has since been removed.
    public static func principalGone(_ userID: String) -> Self {
        unauthenticated("the bearer token names user \(userID), who no longer exists")
    }

    /// The principal's role, team or clearance changed while a request decided on them.
    public static func principalChanged(_ userID: String) -> Self {
        conflict("the role, team or clearance of \(userID) changed while the request ran; retry it")
    }

    public var description: String { message }
}
