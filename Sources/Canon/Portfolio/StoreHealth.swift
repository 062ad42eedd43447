import Foundation

/// A declared store's health, driven by its freshness contract.
public enum StoreHealth: String, Codable, Sendable, CaseIterable {
    /// Lag within the normal p95.
    case ok
    /// Lag above the normal p95 but below the alert threshold.
    case lagging
    /// Lag past the alert threshold, or the agent is stalled or paused.
    case degraded
    /// Declared but not built yet.
    case planned

    /// The value of the `canon_store_health` gauge: 0 ok, 1 lagging, 2 degraded, -1 planned.
    public var gaugeValue: Int {
        switch self {
        case .ok: 0
        case .lagging: 1
        case .degraded: 2
        case .planned: -1
        }
    }

    /// Judges a derived store's lag against its contract. A stalled or paused agent is degraded
    /// whatever its lag; a retrying one is at least lagging.
    public static func judge(lagMilliseconds: Int64, agentState: String?, contract: StoreDeclaration.FreshnessContract?) -> StoreHealth {
        if let agentState, ["stalled", "paused"].contains(agentState) { return .degraded }
        if let alert = contract?.alertAfter?.value, lagMilliseconds > alert.milliseconds { return .degraded }
        if let p95 = contract?.p95?.value, lagMilliseconds > p95.milliseconds { return .lagging }
        return agentState == AgentState.retrying.rawValue ? .lagging : .ok
    }
}

/// One declared store with its live state, as `/v1/ops/portfolio` and `canon status` show it.
public struct PortfolioStoreStatus: Codable, Sendable, Hashable {
    public var name: String
    public var role: String
    public var status: String
    public var engine: String?
    public var owner: String?
    public var health: StoreHealth
    public var version: Int?
    public var position: OutboxPosition?
    public var freshness: Freshness?
    public var agentState: String?
    public var normalP95Milliseconds: Int64?
    public var alertAfterMilliseconds: Int64?
    /// The newest drift check of the store; differences in it make the store degraded.
    public var drift: DriftSummary?
    /// Why the store's kept drift checks could not be read (the store is then degraded).
    public var driftError: String?

    enum CodingKeys: String, CodingKey {
        case name, role, status, engine, owner, health, version, position, freshness, drift
        case driftError = "drift_error"
        case agentState = "agent_state", normalP95Milliseconds = "p95_ms", alertAfterMilliseconds = "alert_after_ms"
    }

    /// Every declared store when their live state cannot be read (the canonical store does not
    /// answer): each live store degraded, saying why; planned ones planned.
    public static func unjudged(in portfolio: Portfolio, reason: String) -> [PortfolioStoreStatus] {
        all(in: portfolio, projections: [], canonicalHead: .start).map { status in
            guard status.health != .planned else { return status }
            var status = status
            status.health = .degraded
            status.agentState = "unjudged: \(reason)"
            status.version = nil
            status.position = nil
            status.freshness = nil
            return status
        }
    }

    /// The status of every declared store: live projections from their `ProjectionStatus`, the
    /// canonical store from the outbox head, planned stores as planned; a live store that is not
    /// running is degraded, with the reason from `unavailable` when there is one.
    /// - Parameter scaledOut: the platform runs on its scale-out engines: each store shows its
    ///   `scale_out_engine` (PostgreSQL), not the embedded one.
    public static func all(
        in portfolio: Portfolio, projections: [ProjectionStatus], canonicalHead: OutboxPosition, schemaVersion: Int? = nil,
        unavailable: [String: String] = [:], drift: NewestDriftChecks = .init(), scaledOut: Bool = false
    ) -> [PortfolioStoreStatus] {
        portfolio.stores.map { store in
            var status = PortfolioStoreStatus(
                name: store.name.value, role: store.role?.value.rawValue ?? "undeclared", status: store.status?.value.rawValue ?? "undeclared",
                engine: (scaledOut ? store.scaleOutEngine ?? store.engine : store.engine)?.value, owner: store.owner?.value, health: .planned,
                normalP95Milliseconds: store.freshness?.p95?.value.milliseconds, alertAfterMilliseconds: store.freshness?.alertAfter?.value.milliseconds)
            guard store.isLive else { return status }
            if store.isDerived {
                guard let live = projections.first(where: { $0.name == store.name.value }) else {
                    status.health = .degraded
                    status.agentState = unavailable[store.name.value].map { "unavailable: \($0)" } ?? "not running"
                    return status
                }
                status.version = live.version
                status.position = live.position
                status.agentState = live.state
                status.freshness = Freshness(asOfPosition: live.position, asOf: nil, lagMilliseconds: live.lagMilliseconds, lagEvents: live.lagEvents)
                status.health = StoreHealth.judge(lagMilliseconds: live.lagMilliseconds, agentState: live.state, contract: store.freshness)
                // A store that differs from canonical state is not healthy, however fresh.
                if let found = drift.summaries[store.name.value] {
                    status.drift = found
                    if found.differences > 0 { status.health = .degraded }
                }
                if let unreadable = drift.unreadable[store.name.value] {
                    status.driftError = unreadable
                    status.health = .degraded
                }
            } else {
                status.version = schemaVersion ?? store.schemaEvolution?.version?.value
                status.position = store.role?.value == .canonical ? canonicalHead : nil
                status.health = .ok
            }
            return status
        }
    }
}
