import Canon
import Foundation

/// Runs the platform's commands against the canonical store: load current state, decide,
/// commit the unit of work.
///
/// Each command reads canonical state (never a projection), checks what the principal may do,
/// and commits with the case's version as the expected stream version. When a concurrent write
/// wins and the caller gave no `If-Match` version, the command re-reads and decides again (up to
/// three times); with `If-Match` it fails with `versionMismatch`, as the caller asked.
///
/// The principal is authorization read before the decision, so every commit on their behalf
/// also requires their row (role, team, clearance) to be what the decision used, atomically with
/// the write (`RowMutation.require`). A principal passed in from a cache, or changed while the
/// command ran, therefore never commits on stale rights: the command reads the principal again
/// and decides once more with what they hold now (and a refusal on a principal that has since
/// changed is decided again the same way).
public struct CaseCommands: Sendable {
    /// What a successful command answers: the aggregate's id and version, and the outbox
    /// position of the write (a read-your-writes token).
    public struct Outcome: Hashable, Codable, Sendable {
        public var id: String
        public var version: Int64
        public var status: CaseStatus?
        public var position: OutboxPosition
    }

    public let store: any CanonicalStore
    private let clock: @Sendable () -> Date
    private let newID: @Sendable () -> String
    private let queries: CaseQueries
    private let reread: (@Sendable (User) -> Void)?
    /// How long a closed case is kept before it may be purged.
    public let retention: RetentionPolicy

    /// - Parameters:
    ///   - reread: told the principal as stored whenever a command found the one it was given
    ///     changed (a server keeps it for the next request).
    ///   - retention: the canonical store's declared retention period (`RetentionPolicy(portfolio)`).
    public init(
        store: any CanonicalStore, clock: @escaping @Sendable () -> Date = { Date() },
        newID: @escaping @Sendable () -> String = { TimeOrderedID.next() }, reread: (@Sendable (User) -> Void)? = nil,
        retention: RetentionPolicy = .init()
    ) {
        self.store = store
        self.clock = clock
        self.newID = newID
        self.queries = CaseQueries(store: store)
        self.reread = reread
        self.retention = retention
    }

    public func openCase(_ request: OpenCaseRequest, by principal: User, correlationID: String? = nil) async throws -> Outcome {
        let id = newID()
        return try await asPrincipal(principal) { principal in
            try AccessPolicy.require(principal, may: .openCase)
            let decision = try CaseDecisions.openCase(request, id: id, by: principal, at: clock(), metadata: metadata(principal, correlationID))
            try AccessPolicy.requireTeamScope(principal, team: decision.value.team)
            let result = try await commit(decision.work, by: principal)
            return Outcome(id: decision.value.id, version: decision.value.version, status: decision.value.status, position: result.position)
        }
    }

    public func transition(_ caseID: String, _ request: TransitionRequest, ifMatch: Int64? = nil, by principal: User, correlationID: String? = nil) async throws -> Outcome {
        try await asPrincipal(principal) { principal in
            try AccessPolicy.require(principal, may: .transitionCase)
            return try await changeCase(caseID, ifMatch: ifMatch, by: principal) { current, now in
                // Reopening: the assignee as they are now, who may no longer be able to take the case.
                var assignee = CaseDecisions.AssigneeNow.unknown
                if current.status == .closed, let id = current.assignee {
                    assignee = try await queries.user(id).map(CaseDecisions.AssigneeNow.user) ?? .gone
                }
                return try CaseDecisions.transition(current, request, assignee: assignee, by: principal, at: now, metadata: metadata(principal, correlationID))
                    .map { $0 }
            }
        }
    }

    public func assign(_ caseID: String, _ request: AssignmentRequest, ifMatch: Int64? = nil, by principal: User, correlationID: String? = nil) async throws -> Outcome {
        try await asPrincipal(principal) { principal in
            try AccessPolicy.require(principal, may: .assignCase)
            guard let investigator = try await queries.user(request.investigator) else {
                throw DomainError.invalid(field: "investigator", "names no user: \"\(request.investigator)\"")
            }
            return try await changeCase(caseID, ifMatch: ifMatch, by: principal) { current, now in
                try CaseDecisions.assign(current, investigator: investigator, by: principal, at: now, metadata: metadata(principal, correlationID)).map { $0 }
            }
        }
    }

    public func restrict(_ caseID: String, _ request: RestrictionRequest, ifMatch: Int64? = nil, by principal: User, correlationID: String? = nil) async throws -> Outcome {
        try await asPrincipal(principal) { principal in
            try AccessPolicy.require(principal, may: .restrictCase)
            return try await changeCase(caseID, ifMatch: ifMatch, by: principal) { current, now in
                // The assignee as they are now: one the restriction puts the case out of sight of is unassigned.
                var assignee: User?
                if let id = current.assignee { assignee = try await queries.user(id) }
                return try CaseDecisions.restrict(current, request, assignee: assignee, by: principal, at: now, metadata: metadata(principal, correlationID))
                    .map { $0 }
            }
        }
    }

    /// Purges a closed case (legal and admins): see `CaseDecisions.purge`. Refused while a legal
    /// hold stands or the retention period runs.
    public func purge(_ caseID: String, reason: String, ifMatch: Int64? = nil, by principal: User, correlationID: String? = nil) async throws -> Outcome {
        try await asPrincipal(principal) { principal in
            try AccessPolicy.require(principal, may: .purgeCase)
            return try await changeCase(caseID, ifMatch: ifMatch, by: principal) { current, now in
                try await decidePurge(current, reason: reason, by: principal, at: now, metadata: metadata(principal, correlationID))
            }
        }
    }

    /// The hold and the closing are read with the case: placing or lifting a hold changes the
    /// case's version, so a purge decided on a hold that has since changed cannot commit.
    private func decidePurge(_ current: Case, reason: String, by actor: User, at now: Date, metadata: CommandMetadata) async throws -> CaseDecisions.Decision<Case> {
        let evidence = try await queries.evidence(caseID: current.id)
        let hold = try await queries.legalHold(caseID: current.id)
        let closedAt = retention.period == nil ? nil : try await queries.closedAt(caseID: current.id)
        return try CaseDecisions.purge(
            current, evidence: evidence, reason: reason, hold: hold, closedAt: closedAt, retention: retention, by: actor, at: now, metadata: metadata)
    }

    /// Places a legal hold on a case (legal and admins).
    public func placeHold(_ caseID: String, reason: String, ifMatch: Int64? = nil, by principal: User, correlationID: String? = nil) async throws -> Outcome {
        try await changeHold(caseID, reason: reason, ifMatch: ifMatch, by: principal, correlationID: correlationID, CaseDecisions.placeHold)
    }

    /// Lifts a case's legal hold (legal and admins).
    public func releaseHold(_ caseID: String, reason: String, ifMatch: Int64? = nil, by principal: User, correlationID: String? = nil) async throws -> Outcome {
        try await changeHold(caseID, reason: reason, ifMatch: ifMatch, by: principal, correlationID: correlationID, CaseDecisions.releaseHold)
    }

    private func changeHold(
        _ caseID: String, reason: String, ifMatch: Int64?, by principal: User, correlationID: String?,
        _ decide: (Case, String, LegalHold?, User, Date, CommandMetadata) throws(DomainError) -> CaseDecisions.Decision<Case>
    ) async throws -> Outcome {
        try await asPrincipal(principal) { principal in
            try AccessPolicy.require(principal, may: .holdCase)
            return try await changeCase(caseID, ifMatch: ifMatch, by: principal) { current, now in
                let existing = try await queries.legalHold(caseID: current.id)
                return try decide(current, reason, existing, principal, now, metadata(principal, correlationID))
            }
        }
    }

    /// The retention job's principal: it purges as the platform itself, recorded as the purger.
    public static let retentionJob = User(id: "canon-retention", displayName: "Retention job", role: .admin, team: nil, clearance: 3)

    /// What one run of the retention job did.
    public struct ExpiryReport: Hashable, Codable, Sendable {
        /// Closed cases examined.
        public var examined: Int = 0
        /// Closed cases whose retention period has run out, among those examined.
        public var due: Int = 0
        public var purged: [String] = []
        /// Due cases left because a legal hold stands on them.
        public var held: [String] = []
        /// Due cases that changed while the job ran (reopened, held, purged by hand): left for the next run.
        public var skipped: [String] = []
        /// Whether `stop` ended the run before every closed case was examined.
        public var stopped = false

        public init() {}

        enum CodingKeys: String, CodingKey {
            case examined, due, purged, held, skipped, stopped
        }
    }

    /// Purges every closed case whose retention period has run out and on which no legal hold
    /// stands, one commit per case (`canon lifecycle expire`). Does nothing when no period is
    /// declared: a case is then purged by hand only.
    ///
    /// Closed cases are read `pageSize` at a time in id order, each page's last closings and
    /// holds in one read each, so memory stays flat however many cases are closed. `progress`
    /// is told (examined, closed) after each closed case; `stop` is asked before each, so a
    /// SIGTERM ends the run between cases.
    public func expire(
        dryRun: Bool = false, pageSize: Int = 500, progress: (@Sendable (Int, Int) -> Void)? = nil, stop: (@Sendable () -> Bool)? = nil
    ) async throws -> ExpiryReport {
        var report = ExpiryReport()
        guard retention.period != nil else { return report }
        let now = clock()
        let closed: Row = ["status": .text(CaseStatus.closed.rawValue)]
        let total = try await store.count("cases", filter: closed)
        var after: RowQuery.After?
        while true {
            let page = try await store.fetchAll(RowQuery(table: "cases", filter: closed, after: after, order: [.init("id")], limit: max(1, pageSize)))
            guard let last = page.last else { break }
            after = .init("id", .text(try last.string("id")))
            let ids = try page.map { CanonValue.text(try $0.string("id")) }
            // The page's last closings and holds in one read each, not one per case. A purge still
            // reads its case's hold when it decides, so a hold placed meanwhile refuses it.
            var closings: [String: Date] = [:]
            for row in try await store.fetchAll(RowQuery(
                table: "case_transitions", filter: ["to_status": .text(CaseStatus.closed.rawValue)], anyOf: .init("case_id", ids),
                columns: ["case_id", "at"])) {
                let id = try row.string("case_id"), at = try row.date("at")
                if closings[id].map({ at > $0 }) ?? true { closings[id] = at }
            }
            let held = Set(try await store.fetchAll(RowQuery(table: "legal_holds", anyOf: .init("case_id", ids), columns: ["case_id"]))
                .map { try $0.string("case_id") })
            for row in page {
                if stop?() == true {
                    report.stopped = true
                    return report
                }
                report.examined += 1
                defer { progress?(report.examined, total) }
                let item = try Case(row: row)
                guard retention.ends(closedAt: closings[item.id] ?? item.updatedAt) <= now else { continue }
                report.due += 1
                if held.contains(item.id) {
                    report.held.append(item.id)
                    continue
                }
                if dryRun {
                    report.purged.append(item.id)
                    continue
                }
                do {
                    let decided = try await decidePurge(item, reason: "retention period ended", by: Self.retentionJob, at: now, metadata: .init(actor: Self.retentionJob.id))
                    _ = try await store.commit(decided.work)
                    report.purged.append(item.id)
                } catch let error as CanonicalStoreError where error.code == .streamVersionConflict {
                    report.skipped.append(item.id)
                } catch let error as DomainError where error.code == .conflict {
                    report.skipped.append(item.id)
                }
            }
            if page.count < pageSize { break }
        }
        return report
    }

    /// What was purged of `caseID` (nil when it was not).
    public func tombstones(caseID: String) async throws -> [Row] {
        try await store.fetchAll("tombstones", where: ["case_id": .text(caseID)], orderBy: [.init("kind"), .init("id")])
    }

    /// Hands a case to another team: legal, admins, or the supervisor of the case's current team.
    public func changeTeam(_ caseID: String, _ request: TeamChangeRequest, ifMatch: Int64? = nil, by principal: User, correlationID: String? = nil) async throws -> Outcome {
        try await asPrincipal(principal) { principal in
            try AccessPolicy.require(principal, may: .changeTeam)
            return try await changeCase(caseID, ifMatch: ifMatch, by: principal) { current, now in
                try CaseDecisions.changeTeam(current, request, by: principal, at: now, metadata: metadata(principal, correlationID)).map { $0 }
            }
        }
    }

    public func registerParty(_ request: RegisterPartyRequest, by principal: User, correlationID: String? = nil) async throws -> Outcome {
        let id = newID()
        return try await asPrincipal(principal) { principal in
            try AccessPolicy.require(principal, may: .registerParty)
            let decision = try CaseDecisions.registerParty(request, id: id, by: principal, at: clock(), metadata: metadata(principal, correlationID))
            let result = try await commit(decision.work, by: principal)
            return Outcome(id: decision.value.id, version: 1, status: nil, position: result.position)
        }
    }

    /// Links a party to a case; the outcome's id is the case's, its version the case's new version.
    public func linkParty(
        _ caseID: String, _ request: LinkPartyRequest, ifMatch: Int64? = nil, by principal: User, correlationID: String? = nil
    ) async throws -> Outcome {
        try await asPrincipal(principal) { principal in
            try AccessPolicy.require(principal, may: .linkParty)
            guard Validation.isIdentifier(request.partyID), let party = try await queries.party(request.partyID) else {
                throw DomainError.invalid(field: "party_id", "names no party: \"\(request.partyID)\"")
            }
            return try await changeCase(caseID, ifMatch: ifMatch, by: principal) { current, now in
                let existing = try await queries.partyLinks(caseID: caseID)
                return try CaseDecisions.linkParty(current, party: party, role: request.role, existing: existing, by: principal, at: now,
                                                   metadata: metadata(principal, correlationID)).map(\.0)
            }
        }
    }

    /// Adds evidence metadata; the outcome's id is the new evidence's, its version the case's.
    public func addEvidence(
        _ caseID: String, _ request: AddEvidenceRequest, ifMatch: Int64? = nil, by principal: User, correlationID: String? = nil
    ) async throws -> Outcome {
        let evidenceID = newID()
        var outcome = try await asPrincipal(principal) { principal in
            try AccessPolicy.require(principal, may: .addEvidence)
            return try await changeCase(caseID, ifMatch: ifMatch, by: principal) { current, now in
                try CaseDecisions.addEvidence(current, request, id: evidenceID, by: principal, at: now, metadata: metadata(principal, correlationID)).map(\.0)
            }
        }
        outcome.id = evidenceID
        return outcome
    }

    /// Changes a user (an operator's command: `canon user update`). Their next request decides on
    /// what they are now (principals are resolved from canonical state, and a command decided on
    /// the old row cannot commit). Refused while they are assigned an open case the changed user
    /// could not take; a concurrent change or assignment makes it decide again (up to three times).
    public func updateUser(_ id: String, _ change: (User) -> User) async throws -> Outcome {
        try await changeUser(id) { current, version, assigned, now in
            try CaseDecisions.updateUser(current, version: version, to: change(current), assigned: assigned, at: now, metadata: .system)
        }
    }

    /// Removes a user (`canon user remove`): their tokens stop working at once. Refused while they
    /// are assigned an open case.
    public func removeUser(_ id: String) async throws -> Outcome {
        try await changeUser(id) { current, version, assigned, now in
            try CaseDecisions.removeUser(current, version: version, assigned: assigned, at: now, metadata: .system)
        }
    }

    private func changeUser(
        _ id: String, decide: (User, Int64?, [Case], Date) throws -> CaseDecisions.Decision<User>
    ) async throws -> Outcome {
        var attempt = 0
        while true {
            attempt += 1
            // The stream's version first: whatever commits after it (an assignment, another change)
            // moves it, and this change then cannot commit on what it read below.
            let version = try await store.streamVersion(User.streamID(id))
            guard let current = try await queries.user(id) else { throw DomainError.notFound("user", id: id) }
            let assigned = try await store.fetchAll("cases", where: ["assignee": .text(id)], orderBy: [.init("id")]).map(Case.init(row:))
            let decision = try decide(current, version, assigned, clock())
            do {
                let result = try await store.commit(decision.work)
                return Outcome(id: id, version: 0, status: nil, position: result.position)
            } catch let error as CanonicalStoreError where error.code == .streamVersionConflict || error.transience == .contention {
                if attempt >= 3 { throw DomainError.conflict("user \(id) kept changing concurrently; retry") }
            }
        }
    }

    public func registerUser(_ user: User) async throws -> Outcome {
        let decision = try CaseDecisions.registerUser(user, at: clock(), metadata: .system)
        do {
            let result = try await store.commit(decision.work)
            return Outcome(id: user.id, version: 1, status: nil, position: result.position)
        } catch let error as CanonicalStoreError where error.code == .streamVersionConflict || error.code == .uniqueViolation {
            throw DomainError.conflict("a user with id \(user.id) already exists")
        }
    }

    // MARK: - Running a decision on a case

    private func changeCase(
        _ caseID: String, ifMatch: Int64?, by principal: User,
        decide: (Case, Date) async throws -> CaseDecisions.Decision<Case>
    ) async throws -> Outcome {
        var attempt = 0
        while true {
            attempt += 1
            guard let current = try await queries.caseIfVisible(caseID, to: principal) else { throw DomainError.notFound("case", id: caseID) }
            try AccessPolicy.requireTeamScope(principal, team: current.team)
            if let ifMatch, ifMatch != current.version { throw DomainError.versionMismatch(expected: ifMatch, actual: current.version) }
            let decision = try await decide(current, clock())
            do {
                let result = try await commit(decision.work, by: principal)
                return Outcome(id: caseID, version: decision.value.version, status: decision.value.status, position: result.position)
            } catch let error as CanonicalStoreError where error.code == .streamVersionConflict {
                if let ifMatch { throw DomainError.versionMismatch(expected: ifMatch, actual: error.actualVersion ?? ifMatch) }
                if attempt >= 3 { throw DomainError.conflict("case \(caseID) kept changing concurrently; retry the request") }
            } catch let error as CanonicalStoreError where error.code == .uniqueViolation {
                throw DomainError.conflict("the change collides with an existing record: \(error.message)")
            }
        }
    }

    // MARK: - The principal at commit

    /// Commits `work` decided for `principal`, requiring their row unchanged.
    private func commit(_ work: UnitOfWork, by principal: User) async throws -> CommitResult {
        var work = work
        work.mutations.append(.require(table: CasePlatformSchema.users.name, row: principal.authority))
        return try await store.commit(work)
    }

    /// Runs `command` as `principal`; when their row no longer holds what `principal` says (the
    /// commit's requirement failed), or the command was refused or found nothing while it may
    /// not, runs it once more as they are now. A principal who no longer exists is refused.
    private func asPrincipal(_ principal: User, _ command: (User) async throws -> Outcome) async throws -> Outcome {
        do {
            return try await command(principal)
        } catch let error as CanonicalStoreError where error.code == .requirementFailed && error.table == CasePlatformSchema.users.name {
            return try await again(command, as: principal)
        } catch let error as DomainError where error.code == .forbidden || error.code == .notFound {
            // Refused on the rights `principal` says: the same answer unless they changed.
            guard let current = try await queries.user(principal.id) else { throw DomainError.principalGone(principal.id) }
            guard current != principal else { throw error }
            return try await again(command, as: principal, now: current)
        }
    }

    private func again(_ command: (User) async throws -> Outcome, as principal: User, now known: User? = nil) async throws -> Outcome {
        let current = if let known { known } else { try await queries.user(principal.id) }
        guard let current else { throw DomainError.principalGone(principal.id) }
        reread?(current)
        do {
            return try await command(current)
        } catch let error as CanonicalStoreError where error.code == .requirementFailed && error.table == CasePlatformSchema.users.name {
            guard try await queries.user(principal.id) != nil else { throw DomainError.principalGone(principal.id) }
            throw DomainError.principalChanged(principal.id)
        }
    }

    private func metadata(_ principal: User, _ correlationID: String?) -> CommandMetadata {
        CommandMetadata(actor: principal.id, correlationID: correlationID, causationID: correlationID)
    }
}

extension CaseDecisions.Decision {
    func map<T: Sendable>(_ transform: (Value) -> T) -> CaseDecisions.Decision<T> {
        CaseDecisions.Decision<T>(value: transform(value), work: work)
    }
}
