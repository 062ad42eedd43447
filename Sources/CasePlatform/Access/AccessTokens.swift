import Canon
import Crypto
import Foundation

/// Bearer tokens that name a principal: `cn1.<user id>.<HMAC-SHA256 of "cn1.<user id>">`.
///
/// The signing key lives in the canonical store (`auth_keys`), so every process on the same
/// store verifies the same tokens, and nothing secret sits in the data directory in plain files.
public struct AccessTokens: Sendable {
    private let key: SymmetricKey

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

    public func token(for userID: String) -> String {
        let message = "cn1.\(userID)"
        let mac = HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: key)
        return "\(message).\(Self.base64url(Data(mac)))"
    }

    /// The user id the token names, or nil when it is malformed or not signed by this key.
    public func userID(from token: String) -> String? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "cn1", !parts[1].isEmpty, let mac = Self.data(base64url: String(parts[2])) else { return nil }
        let message = Data("cn1.\(parts[1])".utf8)
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: message, using: key) else { return nil }
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
