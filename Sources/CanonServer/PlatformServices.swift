import Canon
import CasePlatform

/// What the HTTP layer needs from the platform: the canonical store, its commands and reads,
/// and the token authority.
public struct PlatformServices: Sendable {
    public let store: any CanonicalStore
    public let commands: CaseCommands
    public let queries: CaseQueries
    public let tokens: AccessTokens

    /// Loads (or creates) the token signing key from `store`.
    public init(store: any CanonicalStore) async throws {
        self.store = store
        self.commands = CaseCommands(store: store)
        self.queries = CaseQueries(store: store)
        self.tokens = try await AccessTokens.load(from: store)
    }
}
