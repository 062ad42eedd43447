import Canon
import Foundation

/// Case search documents read from canonical state (`cases`, `case_parties`, `parties`): what a
/// build from state writes and what a drift check expects. Folding a case's whole history gives
/// the same document (`CaseSearchProjection.document(for:partyNames:)`).
public struct CaseSearchState: DocumentStateSource {
    public let projection: CaseSearchProjection

    public init(projection: CaseSearchProjection = CaseSearchProjection()) { self.projection = projection }

    public func count(in snapshot: any CanonicalSnapshot, source: any CanonicalStore) async throws -> Int {
        try await source.count("cases", filter: [:])
    }

    public func documents(in snapshot: any CanonicalSnapshot, after cursor: String?, limit: Int) async throws -> (documents: [SearchDocument], next: String?) {
        let rows = try await snapshot.fetchAll(RowQuery(
            table: "cases", after: cursor.map { RowQuery.After("id", .text($0)) }, order: [.init("id")], limit: limit))
        let cases = try rows.map(Case.init(row:))
        let documents = try await Self.documents(of: cases, projection: projection, fetch: snapshot.fetchAll)
        return (documents, rows.count < limit ? nil : cases.last?.id)
    }

    /// The documents of `cases`, their parties read through `fetch` in batches.
    static func documents(
        of cases: [Case], projection: CaseSearchProjection, fetch: (RowQuery) async throws -> [Canon.Row]
    ) async throws -> [SearchDocument] {
        guard !cases.isEmpty else { return [] }
        var links: [CasePartyLink] = []
        for start in stride(from: 0, to: cases.count, by: 5_000) {
            let batch = cases[start..<min(start + 5_000, cases.count)]
            links += try await fetch(RowQuery(table: "case_parties", anyOf: .init("case_id", batch.map { .text($0.id) }))).map(CasePartyLink.init(row:))
        }
        let partyIDs = Array(Set(links.map(\.partyID)))
        var names: [String: String] = [:]
        for start in stride(from: 0, to: partyIDs.count, by: 5_000) {
            let batch = partyIDs[start..<min(start + 5_000, partyIDs.count)]
            for row in try await fetch(RowQuery(table: "parties", anyOf: .init("id", batch.map { .text($0) }), columns: ["id", "name"])) {
                names[try row.string("id")] = try row.string("name")
            }
        }
        let byCase = Dictionary(grouping: links, by: \.caseID)
        return try cases.map { item in
            let ordered = (byCase[item.id] ?? []).sorted { ($0.caseVersion, $0.linkedAt, $0.partyID) < ($1.caseVersion, $1.linkedAt, $1.partyID) }
            return try projection.document(for: item, partyNames: ordered.compactMap { names[$0.partyID] })
        }
    }
}
