import Canon
import CasePlatform

/// What the HTTP layer needs from the platform: the canonical store, its commands and reads, the
/// derived stores with the agents that feed them, and the token authority.
public struct PlatformServices: Sendable {
    public let store: any CanonicalStore
    public let commands: CaseCommands
    public let queries: CaseQueries
    public let tokens: AccessTokens
    public let projections: ProjectionCoordinator
    public let search: any SearchStore
    public let timeline: any TimelineStore
    /// How long a derived read with `min_position` waits for its store to catch up.
    public let readWait: Duration

    /// Loads (or creates) the token signing key from `store`.
    public init(
        store: any CanonicalStore, projections: ProjectionCoordinator, search: any SearchStore, timeline: any TimelineStore,
        readWait: Duration = .seconds(2)
    ) async throws {
        self.store = store
        self.commands = CaseCommands(store: store)
        self.queries = CaseQueries(store: store)
        self.tokens = try await AccessTokens.load(from: store)
        self.projections = projections
        self.search = search
        self.timeline = timeline
        self.readWait = readWait
    }
}
