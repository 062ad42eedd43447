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
    /// How long a derived read with `min_position` waits for its store to catch up.
    public let readWait: Duration

    /// Loads (or creates) the token signing key from `store`.
    public init(
        store: any CanonicalStore, projections: ProjectionCoordinator, readWait: Duration = .seconds(2)
    ) async throws {
        self.store = store
        self.commands = CaseCommands(store: store)
        self.queries = CaseQueries(store: store)
        self.tokens = try await AccessTokens.load(from: store)
        self.projections = projections
        self.readWait = readWait
    }

    /// The live case search store (it changes when a blue-green rebuild switches versions).
    public var search: any SearchStore {
        get throws {
            guard let store = try projections.store(named: "case-search") as? any SearchStore else {
                throw ProjectionError.unknownProjection("case-search", known: [])
            }
            return store
        }
    }

    /// The live case timeline store.
    public var timeline: any TimelineStore {
        get throws {
            guard let store = try projections.store(named: "case-timeline") as? any TimelineStore else {
                throw ProjectionError.unknownProjection("case-timeline", known: [])
            }
            return store
        }
    }
}
