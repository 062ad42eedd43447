import Canon
import Foundation

/// The access audit: every read of restricted data and every sensitive action, allowed or
/// denied, appended to the canonical store (`access_audit`, append-only in the engine).
public struct AccessAudit: Sendable {
    public enum Decision: String, Codable, Sendable {
        case allowed, denied
    }

    public struct Entry: Codable, Hashable, Sendable {
        public var id: String
        public var at: Date
        public var principal: String
        public var role: String
        public var action: String
        public var target: String
        public var decision: Decision
        public var reason: String
    }

    let store: any CanonicalStore

    public init(store: any CanonicalStore) { self.store = store }

    /// The longest target kept; a longer one (only a junk id can be) is cut.
    public static let targetLength = 200

    /// Appends one entry. The row commits on its own, with no outbox event: the audit is canonical
    /// evidence, not a domain change for projections.
    public func record(
        _ principal: User, action: String, target: String, decision: Decision, reason: String, at: Date = Date()
    ) async throws {
        let row: Row = [
            "id": .text(TimeOrderedID.next()), "at": .timestamp(Timestamp.stored(at)), "principal": .text(principal.id),
            // Cut, as the reason is: a probe with an 80 KB id (a 404, audited as denied) must not
            // leave an 80 KB row in a table nothing may delete from.
            "role": .text(principal.role.rawValue), "action": .text(action), "target": .text(String(target.prefix(Self.targetLength))),
            "decision": .text(decision.rawValue),
            "reason": .text(String(reason.prefix(500))),
        ]
        _ = try await store.commit(UnitOfWork(metadata: .system, mutations: [.insert(table: CasePlatformSchema.accessAudit.name, row: row)]))
    }

    /// Appends one `allowed` entry per target, in one commit: the restricted cases a search or a
    /// similarity query returned data of.
    public func recordReads(_ principal: User, action: String, targets: [String], reason: String, at: Date = Date()) async throws {
        guard !targets.isEmpty else { return }
        let rows: [Row] = targets.map { target in
            [
                "id": .text(TimeOrderedID.next()), "at": .timestamp(Timestamp.stored(at)), "principal": .text(principal.id),
                "role": .text(principal.role.rawValue), "action": .text(action), "target": .text(String(target.prefix(Self.targetLength))),
                "decision": .text(Decision.allowed.rawValue), "reason": .text(String(reason.prefix(500))),
            ]
        }
        _ = try await store.commit(UnitOfWork(metadata: .system, mutations: rows.map { .insert(table: CasePlatformSchema.accessAudit.name, row: $0) }))
    }

    /// Entries, newest first, optionally only one principal's, one action's or one decision's.
    public func entries(principal: String? = nil, action: String? = nil, decision: Decision? = nil, limit: Int = 100) async throws -> [Entry] {
        var filter: Row = [:]
        if let principal { filter["principal"] = .text(principal) }
        if let action { filter["action"] = .text(action) }
        if let decision { filter["decision"] = .text(decision.rawValue) }
        let rows = try await store.fetchAll(
            CasePlatformSchema.accessAudit.name, where: filter, orderBy: [.init("at", ascending: false), .init("id", ascending: false)], limit: limit)
        return try rows.map { row in
            Entry(
                id: try row.string("id"), at: try row.date("at"), principal: try row.string("principal"), role: try row.string("role"),
                action: try row.string("action"), target: try row.string("target"),
                decision: Decision(rawValue: try row.string("decision")) ?? .denied, reason: try row.string("reason"))
        }
    }
}
