import Canon
import Crypto
import Foundation

/// Bearer tokens that name a principal and expire:
/// `cn2.<user id>.<expiry, Unix seconds>.<HMAC-SHA256 of "cn2.<user id>.<expiry>">`.
///
/// The signing key lives in the canonical store (`auth_keys`), so every process on the same
/// store verifies the same tokens, and nothing secret sits in the data directory in plain files.
/// A token only names the user: the role, team and clearance are read from canonical state on
/// every request, so a role change takes effect at once.
public struct AccessTokens: Sendable {
    private let key: SymmetricKey
    /// Tokens whose signature was checked, with the user and expiry they carry: a token is
    /// immutable and the key never changes, so only its expiry needs checking again. (Checking
    /// a signature, with the base64 and string work around it, cost more per request than
    /// anything else in authentication once the principal was kept: BENCHMARKS.md, scale-out.)
    private let verified = KeptValues<String, (userID: String, expires: Date)>()

    public init(secret: Data) { key = SymmetricKey(data: secret) }

    /// Loads the signing key from `store`, creating it on first use.
    ///
    /// - Throws: `CanonicalStoreError` when the store cannot be read or written.
    public static func load(from store: any CanonicalStore) async throws -> AccessTokens {
        if let row = try await store.fetchOne("auth_keys", where: ["id": .text("primary")]) {
            return AccessTokens(secret: try row.data("secret"))
        }
        var secret = Data(count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in secret.indices { secret[index] = generator.next() }
        let work = UnitOfWork(metadata: .system, mutations: [
            .insert(table: "auth_keys", row: ["id": .text("primary"), "secret": .blob(secret), "created_at": .timestamp(Date())])
        ])
        do {
            _ = try await store.commit(work)
            return AccessTokens(secret: secret)
        } catch let error as CanonicalStoreError where error.code == .uniqueViolation {
            // Another process created it first: use theirs.
            return try await load(from: store)
        }
    }

    /// How long a token is valid unless asked otherwise.
    public static let defaultLifetime: Duration = .seconds(24 * 3600)

    /// A token for `userID` that expires `lifetime` after `now`.
    public func token(for userID: String, validFor lifetime: Duration = defaultLifetime, now: Date = Date()) -> String {
        let expiry = Int64(now.timeIntervalSince1970) + lifetime.components.seconds
        let message = "cn2.\(userID).\(expiry)"
        let mac = HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: key)
        return "\(message).\(Self.base64url(Data(mac)))"
    }

    /// Why a token was refused.
    public enum Refusal: Error, Equatable, Sendable {
        case malformed, badSignature
        case expired(at: Date)

        public var message: String {
            switch self {
            case .malformed: "the bearer token is not a Canon token (cn2.USER.EXPIRY.SIGNATURE)"
            case .badSignature: "the bearer token is not signed by this installation (tampered, or from another data directory)"
            case .expired(let at): "the bearer token expired at \(Timestamp.iso8601(at)); print a new one with `canon token --data DIR --user NAME`"
            }
        }
    }

    /// The user id a valid, unexpired token names.
    ///
    /// - Throws: `Refusal` saying whether the token is malformed, tampered with or expired.
    public func userID(from token: String, now: Date = Date()) throws(Refusal) -> String {
        if let known = verified[token] {
            guard now < known.expires else { throw .expired(at: known.expires) }
            return known.userID
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "cn2", !parts[1].isEmpty, let expiry = Int64(parts[2]),
              let mac = Self.data(base64url: String(parts[3])) else { throw .malformed }
        let message = Data("cn2.\(parts[1]).\(parts[2])".utf8)
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: message, using: key) else { throw .badSignature }
        let expires = Date(timeIntervalSince1970: TimeInterval(expiry))
        guard now < expires else { throw .expired(at: expires) }
        verified.keep((String(parts[1]), expires), for: token)
        return String(parts[1])
    }

    static func base64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func data(base64url: String) -> Data? {
        var base64 = base64url.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}
