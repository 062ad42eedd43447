import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// The principals every store-backed test registers through `CaseCommands.registerUser`.
enum People {
    static let ivan = User(id: "ivan", displayName: "Ivan Petrov", role: .investigator, team: "financial-crime", clearance: 2)
    static let iris = User(id: "iris", displayName: "Iris Lund", role: .investigator, team: "financial-crime", clearance: 1)
    static let sam = User(id: "sam", displayName: "Sam Whitlock", role: .supervisor, team: "financial-crime", clearance: 3)
    static let nora = User(id: "nora", displayName: "Nora Quist", role: .analyst, team: "financial-crime", clearance: 1)
    static let lena = User(id: "lena", displayName: "Lena Marsh", role: .legal, team: nil, clearance: 3)
    static let ada = User(id: "ada", displayName: "Ada Okafor", role: .admin, team: nil, clearance: 3)
    /// An investigator of another team.
    static let otto = User(id: "otto", displayName: "Otto Brandt", role: .investigator, team: "consumer-protection", clearance: 2)
    /// A supervisor of another team.
    static let sue = User(id: "sue", displayName: "Sue Varga", role: .supervisor, team: "consumer-protection", clearance: 3)

    static let all = [ivan, iris, sam, nora, lena, ada, otto, sue]
}

/// Everything the canonical store holds that a command could touch, in a stable order, so that
/// "the command wrote nothing" is one equality.
struct StoreSnapshot: Equatable {
    var users: [Row]
    var cases: [Row]
    var transitions: [Row]
    var parties: [Row]
    var caseParties: [Row]
    var evidence: [Row]
    var events: [EventEnvelope]
    var head: OutboxPosition

    init(_ store: any CanonicalStore) async throws {
        users = try await store.fetchAll("users", orderBy: [.init("id")])
        cases = try await store.fetchAll("cases", orderBy: [.init("id")])
        transitions = try await store.fetchAll("case_transitions", orderBy: [.init("case_id"), .init("case_version")])
        parties = try await store.fetchAll("parties", orderBy: [.init("id")])
        caseParties = try await store.fetchAll("case_parties", orderBy: [.init("case_id"), .init("party_id"), .init("role")])
        evidence = try await store.fetchAll("evidence", orderBy: [.init("id")])
        events = try await store.events(after: .start, limit: 1_000_000)
        head = try await store.headPosition()
    }
}

/// A real SQLite canonical store in a fresh temporary directory, with `People.all` registered.
struct Fixture {
    let directory: TemporaryDirectory
    let path: String
    let store: SQLiteCanonicalStore
    let commands: CaseCommands
    let queries: CaseQueries

    init(faults: FaultInjector? = nil, clock: (@Sendable () -> Date)? = nil, registerUsers: Bool = true, retention: RetentionPolicy = .init()) async throws {
        directory = try TemporaryDirectory(prefix: "case-platform-tests")
        path = directory.file("canonical.sqlite")
        let store = try SQLiteCanonicalStore(
            path: path, migrations: CasePlatformSchema.migrations, configuration: .init(faults: faults))
        self.store = store
        commands = clock.map { CaseCommands(store: store, clock: $0, retention: retention) } ?? CaseCommands(store: store, retention: retention)
        queries = CaseQueries(store: store)
        if registerUsers {
            for user in People.all { _ = try await commands.registerUser(user) }
        }
    }

    func snapshot() async throws -> StoreSnapshot { try await StoreSnapshot(store) }

    /// Opens a valid case as `principal` (ivan by default), in the principal's team.
    @discardableResult
    func openCase(by principal: User = People.ivan, title: String = "Northwind Capital: misleading tariffs") async throws -> CaseCommands.Outcome {
        try await commands.openCase(Requests.openCase(title: title), by: principal)
    }

    /// Moves the case along the main path (intake → triage → investigation → enforcement → closed)
    /// until it reaches `target`.
    func advance(_ caseID: String, to target: CaseStatus, by principal: User = People.ivan) async throws {
        let path: [CaseStatus] = [.intake, .triage, .investigation, .enforcement, .closed]
        guard let current = try await queries.caseIfVisible(caseID, to: principal) else {
            throw DomainError.notFound("case", id: caseID)
        }
        guard let from = path.firstIndex(of: current.status), let to = path.firstIndex(of: target), from <= to else {
            Issue.record("cannot advance from \(current.status) to \(target) along the main path")
            return
        }
        for status in path[(from + 1)..<(to + 1)] {
            _ = try await commands.transition(caseID, TransitionRequest(to: status.rawValue, reason: "moving on"), by: principal)
        }
    }

    func currentCase(_ id: String) async throws -> Case {
        try #require(try await queries.caseIfVisible(id, to: People.ada))
    }
}

/// Valid request bodies, each a small change away from an invalid one.
enum Requests {
    static func openCase(
        title: String = "Northwind Capital: misleading tariffs", sector: String = "banking", region: String = "north",
        priority: String = "high", team: String? = nil
    ) -> OpenCaseRequest {
        OpenCaseRequest(title: title, summary: "Customers were shown introductory tariffs only.", sector: sector, region: region,
                        priority: priority, team: team)
    }

    static func evidence(
        _ index: Int = 1, mediaType: String = "application/pdf", sizeBytes: Int64 = 12_345, sha256: String? = nil
    ) -> AddEvidenceRequest {
        AddEvidenceRequest(title: "Exhibit \(index)", description: "Scanned letter \(index)", mediaType: mediaType,
                           sizeBytes: sizeBytes, sha256: sha256 ?? digest(index))
    }

    /// A distinct, well-formed lower-case SHA-256 hex digest for `index`.
    static func digest(_ index: Int) -> String {
        let hex = String(UInt64(index), radix: 16)
        return String(repeating: "a", count: 64 - hex.count) + hex
    }
}

/// Runs `body` and checks that it throws a `DomainError` with `code` (and `field`, when given).
@discardableResult
func expectDomainError(
    _ code: DomainError.Code, field: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> DomainError? {
    do {
        try await body()
        Issue.record("expected DomainError.\(code) but the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as DomainError {
        #expect(error.code == code, "unexpected error: \(error)", sourceLocation: sourceLocation)
        if let field {
            #expect(error.field == field, "unexpected field in: \(error)", sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected DomainError.\(code) but got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension EventEnvelope {
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: payload) as? [String: Any]) ?? [:]
    }
}
