import Canon
import Foundation
import Synchronization

/// The access audit: every read of restricted data and every sensitive action, allowed or
/// denied, appended to the canonical store (`access_audit`, append-only in the engine).
public final class AccessAudit: Sendable {
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
    /// Moves by one for every entry this instance has written (what a caller that must know an
    /// access was recorded waits on).
    public let recorded = PositionWaiters()
    private let written = Mutex(Int64(0))

    public init(store: any CanonicalStore) { self.store = store }

    /// The longest target kept; a longer one (only a junk id can be) is cut.
    public static let targetLength = 200

    /// Appends one entry. The row commits on its own, with no outbox event: the audit is canonical
    /// evidence, not a domain change for projections.
    public func record(
        _ principal: User, action: String, target: String, decision: Decision, reason: String, at: Date = Date()
    ) async throws {
        try await append([Self.row(principal, action: action, target: target, decision: decision, reason: reason, at: at)])
    }

    /// Appends one `allowed` entry per target, in one commit: the restricted cases a search or a
    /// similarity query returned data of.
    public func recordReads(_ principal: User, action: String, targets: [String], reason: String, at: Date = Date()) async throws {
        try await append(targets.map { Self.row(principal, action: action, target: $0, decision: .allowed, reason: reason, at: at) })
    }

    private func append(_ rows: [Row]) async throws {
        guard !rows.isEmpty else { return }
        _ = try await store.commit(UnitOfWork(metadata: .system, mutations: rows.map { .insert(table: CasePlatformSchema.accessAudit.name, row: $0) }))
        let count = written.withLock { $0 += Int64(rows.count); return $0 }
        recorded.advance(to: OutboxPosition(count))
    }

    /// One entry's row. The target is cut, as the reason is: a probe with an 80 KB id (a 404,
    /// audited as denied) must not leave an 80 KB row in a table nothing may delete from.
    private static func row(_ principal: User, action: String, target: String, decision: Decision, reason: String, at: Date) -> Row {
        [
            "id": .text(TimeOrderedID.next()), "at": .timestamp(Timestamp.stored(at)), "principal": .text(principal.id),
            "role": .text(principal.role.rawValue), "action": .text(action), "target": .text(String(target.prefix(targetLength))),
            "decision": .text(decision.rawValue), "reason": .text(String(reason.prefix(500))),
        ]
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
