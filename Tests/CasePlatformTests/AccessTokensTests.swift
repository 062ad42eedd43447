import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// Bearer tokens signed with a key kept in the canonical store.
@Suite struct AccessTokensTests {
    @Test func a_token_names_its_user_and_a_tampered_or_foreign_token_names_nobody() throws {
        let tokens = AccessTokens(secret: Data(repeating: 7, count: 32))
        let token = tokens.token(for: "ivan")
        #expect(token.hasPrefix("cn1.ivan."))
        #expect(tokens.userID(from: token) == "ivan")

        let parts = token.split(separator: ".").map(String.init)
        #expect(tokens.userID(from: "cn1.sam.\(parts[2])") == nil, "a signature must not transfer to another user")
        let mac = parts[2]
        let flipped = String(mac.first == "A" ? "B" : "A") + mac.dropFirst()
        #expect(tokens.userID(from: "cn1.ivan.\(flipped)") == nil)
        #expect(tokens.userID(from: "cn2.ivan.\(mac)") == nil)
        #expect(tokens.userID(from: "cn1..\(mac)") == nil)
        #expect(tokens.userID(from: "cn1.ivan") == nil)
        #expect(tokens.userID(from: "") == nil)
        #expect(tokens.userID(from: "cn1.ivan.!!!") == nil)

        let other = AccessTokens(secret: Data(repeating: 8, count: 32))
        #expect(other.userID(from: token) == nil)
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
            #expect(again.userID(from: token) == "ivan")
            #expect(try await store.count("auth_keys", filter: [:]) == 1)
            // The key row is not an event: the outbox stays empty.
            #expect(try await store.headPosition() == .start)
        }
        let reopened = try SQLiteCanonicalStore(path: path, migrations: CasePlatformSchema.migrations)
        let loaded = try await AccessTokens.load(from: reopened)
        #expect(loaded.userID(from: token) == "ivan")
        #expect(try await reopened.count("auth_keys", filter: [:]) == 1)

        let elsewhere = try TemporaryDirectory(prefix: "case-platform-tokens")
        let otherStore = try SQLiteCanonicalStore(path: elsewhere.file("canonical.sqlite"), migrations: CasePlatformSchema.migrations)
        #expect(try await AccessTokens.load(from: otherStore).userID(from: token) == nil)
    }

    @Test func concurrent_first_loads_agree_on_one_key() async throws {
        let fixture = try await Fixture(registerUsers: false)
        let store = fixture.store
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<4 { group.addTask { try await AccessTokens.load(from: store).token(for: "ivan") } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(tokens.count == 1)
        #expect(try await store.count("auth_keys", filter: [:]) == 1)
    }
}
