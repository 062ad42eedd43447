import Canon
import Foundation

/// The tombstone audit: canonical records that were purged but are still present in a derived
/// store. A store that has not applied the purge yet (its checkpoint is behind the purge event)
/// is reported as `pending`, not as a violation.
public struct LifecycleAudit: Sendable {
    public struct Finding: Hashable, Codable, Sendable {
        public var store: String
        public var key: String
        /// What was purged: a case or an evidence item.
        public var kind: String
        public var caseID: String
        public var purgedAt: Date
        /// The store has not applied the purge event yet (lag, not a violation).
        public var pending: Bool

        enum CodingKeys: String, CodingKey {
            case store, key, kind, pending
            case caseID = "case_id", purgedAt = "purged_at"
        }
    }

    public struct Report: Hashable, Codable, Sendable {
        public var tombstones: Int
        public var storesChecked: [String]
        /// Stores that hold purged kinds of record but whose engine cannot be checked (PostgreSQL
        /// projections are not drift-checkable yet): nothing is known about them, which is not "clean".
        public var storesNotChecked: [String]
        public var findings: [Finding]

        /// Purged records still present in a store that has applied their purge.
        public var violations: [Finding] { findings.filter { !$0.pending } }

        enum CodingKeys: String, CodingKey {
            case tombstones, findings
            case storesChecked = "stores_checked", storesNotChecked = "stores_not_checked"
        }
    }

    public let source: any CanonicalStore

    public init(source: any CanonicalStore) { self.source = source }

    /// Which tombstones each of the platform's stores keys by.
    static func kind(for store: String) -> String? {
        switch store {
        case PlatformPortfolio.Store.caseSearch, PlatformPortfolio.Store.caseTimeline: "case"
        case PlatformPortfolio.Store.evidenceSemantic: "evidence"
        default: nil
        }
    }

    public func run(stores: [any ProjectionStore]) async throws -> Report {
        let tombstones = try await source.fetchAll("tombstones", orderBy: [.init("kind"), .init("id")])
        let head = try await source.headPosition()
        var purgePositions: [String: OutboxPosition] = [:]
        var findings: [Finding] = []
        var checked: [String] = [], unchecked: [String] = []
        for store in stores {
            guard let kind = Self.kind(for: store.identity.name) else { continue }
            guard let checkable = store as? any DriftCheckable else {
                unchecked.append(store.identity.name)
                continue
            }
            checked.append(store.identity.name)
            let rows = try tombstones.filter { try $0.string("kind") == kind }
            guard !rows.isEmpty else { continue }
            let snapshot = try await checkable.driftSnapshot()
            defer { snapshot.close() }
            let present = try await snapshot.contentDigests(try rows.map { try $0.string("id") })
            for row in rows {
                let id = try row.string("id")
                guard present[id] != nil else { continue }
                let caseID = try row.string("case_id")
                if purgePositions[caseID] == nil {
                    let events = try await source.events(in: StreamID("case-\(caseID)"), through: head)
                    purgePositions[caseID] = events.last { $0.type == CaseEvents.casePurged }?.position ?? head
                }
                findings.append(Finding(
                    store: store.identity.name, key: id, kind: kind, caseID: caseID, purgedAt: try row.date("purged_at"),
                    pending: snapshot.checkpoint < purgePositions[caseID]!))
            }
        }
        return Report(tombstones: tombstones.count, storesChecked: checked, storesNotChecked: unchecked, findings: findings)
    }
}
