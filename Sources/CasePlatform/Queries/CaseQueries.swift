import Canon
import Foundation

/// Reads of canonical state: what operations that must not use stale data read.
public struct CaseQueries: Sendable {
    public let store: any CanonicalStore

    public init(store: any CanonicalStore) { self.store = store }

    /// The case, if it exists and `principal` may see it.
    ///
    /// A restricted case the principal may not see is reported as missing, so its existence does
    /// not leak.
    public func caseIfVisible(_ id: String, to principal: User) async throws -> Case? {
        guard Validation.isIdentifier(id), let row = try await store.fetchOne("cases", where: ["id": .text(id)]) else { return nil }
        let item = try Case(row: row)
        return AccessPolicy.canView(item, as: principal) ? item : nil
    }

    /// The current canonical state of many cases in one read, by id (missing ids are absent).
    public func cases(ids: [String]) async throws -> [String: Case] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await store.fetchAll(RowQuery(table: "cases", anyOf: .init("id", ids.map { .text($0) })))
        return Dictionary(try rows.map { let item = try Case(row: $0); return (item.id, item) }, uniquingKeysWith: { first, _ in first })
    }

    public func history(caseID: String) async throws -> [CaseTransition] {
        try await store.fetchAll("case_transitions", where: ["case_id": .text(caseID)], orderBy: [.init("case_version")]).map(CaseTransition.init(row:))
    }

    /// The legal hold standing on the case, if any.
    public func legalHold(caseID: String) async throws -> LegalHold? {
        try await store.fetchOne("legal_holds", where: ["case_id": .text(caseID)]).map(LegalHold.init(row:))
    }

    /// When the case last closed: its newest transition into `closed` (nil if it never closed).
    public func closedAt(caseID: String) async throws -> Date? {
        let newest = try await store.fetchAll(
            "case_transitions", where: ["case_id": .text(caseID), "to_status": .text(CaseStatus.closed.rawValue)],
            orderBy: [.init("case_version", ascending: false)], limit: 1)
        return try newest.first.map { try $0.date("at") }
    }

    public func partyLinks(caseID: String) async throws -> [CasePartyLink] {
        try await store.fetchAll("case_parties", where: ["case_id": .text(caseID)], orderBy: [.init("case_version"), .init("linked_at"), .init("party_id")]).map(CasePartyLink.init(row:))
    }

    public func evidence(caseID: String) async throws -> [Evidence] {
        try await store.fetchAll("evidence", where: ["case_id": .text(caseID)], orderBy: [.init("added_at"), .init("id")]).map(Evidence.init(row:))
    }

    public func party(_ id: String) async throws -> Party? {
        guard Validation.isIdentifier(id) else { return nil }
        return try await store.fetchOne("parties", where: ["id": .text(id)]).map(Party.init(row:))
    }

    /// The teams of the cases `partyID` is linked to that `principal` may see. A restricted case
    /// above their clearance counts as if it did not exist: it neither unmasks the party nor, by
    /// unmasking it, tells them such a case links it.
    public func caseTeams(linkedTo partyID: String, visibleTo principal: User) async throws -> Set<String> {
        var teams = Set<String>()
        for link in try await store.fetchAll("case_parties", where: ["party_id": .text(partyID)]) {
            guard let row = try await store.fetchOne("cases", where: ["id": link["case_id"]]) else { continue }
            let item = try Case(row: row)
            if AccessPolicy.canView(item, as: principal) { teams.insert(item.team) }
        }
        return teams
    }

    public func user(_ id: String) async throws -> User? {
        try await store.fetchOne("users", where: ["id": .text(id)]).map(User.init(row:))
    }

    public func users() async throws -> [User] {
        try await store.fetchAll("users", orderBy: [.init("id")]).map(User.init(row:))
    }
}
