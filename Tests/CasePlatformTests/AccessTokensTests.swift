import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// Bearer tokens signed with a key kept in the canonical store.
@Suite struct AccessTokensTests {
    static let now = Date(timeIntervalSince1970: 1_795_600_000)

    @Test func a_token_names_its_user_and_a_tampered_or_foreign_token_names_nobody() throws {
        let tokens = AccessTokens(secret: Data(repeating: 7, count: 32))
        let token = tokens.token(for: "ivan", now: Self.now)
        #expect(token.hasPrefix("cn2.ivan."))
        #expect(try tokens.userID(from: token, now: Self.now) == "ivan")

        let parts = token.split(separator: ".").map(String.init)
        func refusal(_ candidate: String) -> AccessTokens.Refusal? {
            do {
                _ = try tokens.userID(from: candidate, now: Self.now)
                return nil
            } catch {
                return error
            }
        }
        #expect(refusal("cn2.sam.\(parts[2]).\(parts[3])") == .badSignature, "a signature must not transfer to another user")
        #expect(refusal("cn2.ivan.\(Int(parts[2])! + 86_400).\(parts[3])") == .badSignature, "the expiry is signed too")
        let mac = parts[3]
        let flipped = String(mac.first == "A" ? "B" : "A") + mac.dropFirst()
        #expect(refusal("cn2.ivan.\(parts[2]).\(flipped)") == .badSignature)
        #expect(refusal("cn1.ivan.\(mac)") == .malformed)
        #expect(refusal("cn2..\(parts[2]).\(mac)") == .malformed)
        #expect(refusal("cn2.ivan") == .malformed)
        #expect(refusal("") == .malformed)
        #expect(refusal("cn2.ivan.soon.\(mac)") == .malformed)
        #expect(refusal("cn2.ivan.\(parts[2]).!!!") == .malformed)

        let other = AccessTokens(secret: Data(repeating: 8, count: 32))
        #expect(throws: AccessTokens.Refusal.badSignature) { try other.userID(from: token, now: Self.now) }
    }

    @Test func a_token_expires_after_its_lifetime() throws {
        let tokens = AccessTokens(secret: Data(repeating: 7, count: 32))
        let token = tokens.token(for: "ivan", validFor: .seconds(3600), now: Self.now)
        #expect(try tokens.userID(from: token, now: Self.now.addingTimeInterval(3599)) == "ivan")
        #expect(throws: AccessTokens.Refusal.expired(at: Self.now.addingTimeInterval(3600))) {
            try tokens.userID(from: token, now: Self.now.addingTimeInterval(3600))
        }
        #expect(AccessTokens.Refusal.expired(at: Self.now).message.contains("canon token"))
    }

    @Test func the_signing_key_is_created_once_and_survives_a_reopen() async throws {
        let directory = try TemporaryDirectory(prefix: "case-platform-tokens")
        let path = directory.file("canonical.sqlite")
        let token: String
        do {
            let store = try SQLiteCanonicalStore(path: path, migrations: CasePlatformSchema.migrations)
            let first = try await AccessTokens.load(from: store)
            let again = try await AccessTokens.load(from: store)
            token = first.token(for: "ivan")
            #expect(try again.userID(from: token) == "ivan")
            #expect(try await store.count("auth_keys", filter: [:]) == 1)
            // The key row is not an event: the outbox stays empty.
            #expect(try await store.headPosition() == .start)
        }
        let reopened = try SQLiteCanonicalStore(path: path, migrations: CasePlatformSchema.migrations)
        let loaded = try await AccessTokens.load(from: reopened)
        #expect(try loaded.userID(from: token) == "ivan")
        #expect(try await reopened.count("auth_keys", filter: [:]) == 1)

        let elsewhere = try TemporaryDirectory(prefix: "case-platform-tokens")
        let otherStore = try SQLiteCanonicalStore(path: elsewhere.file("canonical.sqlite"), migrations: CasePlatformSchema.migrations)
        let foreign = try await AccessTokens.load(from: otherStore)
        #expect(throws: AccessTokens.Refusal.badSignature) { try foreign.userID(from: token) }
    }

    @Test func concurrent_first_loads_agree_on_one_key() async throws {
        let fixture = try await Fixture(registerUsers: false)
        let store = fixture.store
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<4 { group.addTask { try await AccessTokens.load(from: store).token(for: "ivan", now: Self.now) } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(tokens.count == 1)
        #expect(try await store.count("auth_keys", filter: [:]) == 1)
    }
}
