import Canon
import Foundation

/// The platform's decisions: pure functions from current state and a request to the new state
/// and the unit of work that records it.
///
/// Every decision validates its input and the invariants it guards, and emits exactly the
/// events that describe its rows. Each command on a case expects the case's current version,
/// so a decision made on stale state cannot commit. `CaseCommands` runs them against the store;
/// the demo generator runs them on in-memory state to bulk-load.
public enum CaseDecisions {
    /// The result of a decision: the new state and what to commit.
    public struct Decision<Value: Sendable>: Sendable {
        public var value: Value
        public var work: UnitOfWork
    }

    public static func openCase(
        _ request: OpenCaseRequest, id: String, by actor: User, at now: Date, metadata: CommandMetadata
    ) throws(DomainError) -> Decision<Case> {
        let title = try Validation.text(request.title, field: "title", max: 200)
        let summary = try Validation.text(request.summary, field: "summary", max: 5000, allowEmpty: true)
        let sector = try parse(request.sector, as: Sector.self, field: "sector")
        let region = try parse(request.region, as: Region.self, field: "region")
        let priority = try parse(request.priority, as: Priority.self, field: "priority")
        guard let teamName = request.team ?? actor.team else {
            throw DomainError.invalid(field: "team", "is required when the opening user has no team")
        }
        let team = try Validation.slug(teamName, field: "team")
        let opened = Case(
            id: id, title: title, summary: summary, sector: sector, region: region, priority: priority, status: .intake,
            team: team, assignee: nil, restricted: false,
            slaDueAt: now.addingTimeInterval(Double(priority.slaDays) * 86_400), version: 1, openedAt: now,
            openedBy: actor.id, updatedAt: now)
        var work = UnitOfWork(metadata: metadata)
        work.expect(opened.streamID, .noStream)
        work.mutations.append(.insert(table: "cases", row: opened.row))
        let entry = CaseTransition(caseID: id, caseVersion: 1, from: nil, to: .intake, reason: "opened", actor: actor.id, at: now)
        work.mutations.append(.insert(table: "case_transitions", row: entry.row))
        work.events.append(try event(opened.streamID, CaseEvents.caseOpened, opened, at: now))
        return Decision(value: opened, work: work)
    }

    /// The case's assignee as canonical state holds them, when a decision needs to know.
    public enum AssigneeNow: Sendable {
        /// Not read: the decision keeps the assignee.
        case unknown
        /// The assignee's row is gone (the user was removed).
        case gone
        case user(User)
    }

    /// Moves a case along its state machine. Reopening a closed case (read with `assignee`)
    /// unassigns, in the same commit, an assignee who can no longer take it: removed, moved to
    /// another team or role, or without the clearance it needs.
    public static func transition(
        _ current: Case, _ request: TransitionRequest, assignee: AssigneeNow = .unknown, by actor: User, at now: Date, metadata: CommandMetadata
    ) throws(DomainError) -> Decision<Case> {
        let target = try parse(request.to, as: CaseStatus.self, field: "to")
        let reason = try Validation.text(request.reason, field: "reason", max: 2000)
        guard current.status.canMove(to: target) else { throw DomainError.transitionRefused(from: current.status, to: target) }
        var next = current
        next.status = target
        next.version += 1
        next.updatedAt = now
        var columns: Row = ["status": .text(target.rawValue)]
        var unassigned: String?
        if current.status == .closed, let id = current.assignee {
            let keeps = switch assignee {
            case .unknown: true
            case .gone: false
            case .user(let user): user.id == id && user.role == .investigator && user.team == next.team && AccessPolicy.canView(next, as: user)
            }
            if !keeps {
                next.assignee = nil
                columns["assignee"] = .null
                unassigned = id
            }
        }
        var work = changeCase(current, to: next, columns: columns, metadata: metadata)
        // Kept on what their row said: a change to them committed meanwhile refuses this; and, as an
        // assignment does, this moves their stream, so a change to them decided before it (when the
        // case was closed and did not count) cannot commit after it.
        if current.status == .closed, unassigned == nil, case .user(let user) = assignee {
            work.mutations.append(.require(table: "users", row: user.authority))
            work.expect(User.streamID(user.id), .any)
            work.events.append(try event(User.streamID(user.id), CaseEvents.userCaseAssigned, CaseEvents.CaseAssigned(caseID: current.id), at: now))
        }
        let entry = CaseTransition(caseID: current.id, caseVersion: next.version, from: current.status, to: target, reason: reason, actor: actor.id, at: now)
        work.mutations.append(.insert(table: "case_transitions", row: entry.row))
        work.events.append(try event(current.streamID, CaseEvents.caseStatusChanged,
                                     CaseEvents.StatusChanged(caseID: current.id, from: current.status, to: target, reason: reason, unassigned: unassigned), at: now))
        return Decision(value: next, work: work)
    }

    public static func assign(
        _ current: Case, investigator: User, by actor: User, at now: Date, metadata: CommandMetadata
    ) throws(DomainError) -> Decision<Case> {
        guard current.status != .closed else { throw DomainError.conflict("case \(current.id) is closed; reopen it before assigning") }
        guard investigator.role == .investigator else {
            throw DomainError.invalid(field: "investigator", "must name a user with the investigator role; \(investigator.id) is \(investigator.role.rawValue)")
        }
        guard investigator.team == current.team else {
            throw DomainError.invalid(field: "investigator", "must be a member of the case's team \(current.team); \(investigator.id) is in \(investigator.team ?? "no team")")
        }
        // Assigned a case they may not see, they would get 404 on their own assignment.
        guard AccessPolicy.canView(current, as: investigator) else {
            throw DomainError.invalid(
                field: "investigator",
                "\(investigator.id) has clearance \(investigator.clearance) and may not see this restricted case (clearance \(current.clearance))")
        }
        guard current.assignee != investigator.id else {
            throw DomainError.conflict("case \(current.id) is already assigned to \(investigator.id)")
        }
        var next = current
        next.assignee = investigator.id
        next.version += 1
        next.updatedAt = now
        var work = changeCase(current, to: next, columns: ["assignee": .text(investigator.id)], metadata: metadata)
        // The investigator as decided on: a change to them (`updateUser`) committed meanwhile refuses
        // this; and this moves their stream, so a change to them decided before it cannot commit after it.
        work.mutations.append(.require(table: "users", row: investigator.authority))
        work.events.append(try event(current.streamID, CaseEvents.caseAssigned,
                                     CaseEvents.Assigned(caseID: current.id, investigator: investigator.id, previous: current.assignee), at: now))
        work.expect(User.streamID(investigator.id), .any)
        work.events.append(try event(User.streamID(investigator.id), CaseEvents.userCaseAssigned, CaseEvents.CaseAssigned(caseID: current.id), at: now))
        return Decision(value: next, work: work)
    }

    /// Restricts (or lifts the restriction of) a case. An assignee the new restriction puts the
    /// case out of sight of is unassigned in the same commit, as a team change does: they could
    /// not open their own assignment.
    /// - Parameter assignee: the case's assignee as canonical state holds them now, if any.
    public static func restrict(
        _ current: Case, _ request: RestrictionRequest, assignee: User? = nil, by actor: User, at now: Date, metadata: CommandMetadata
    ) throws(DomainError) -> Decision<Case> {
        let reason = try Validation.text(request.reason, field: "reason", max: 2000)
        if let clearance = request.clearance, !(1...3).contains(clearance) {
            throw DomainError.invalid(field: "clearance", "must be 1, 2 or 3; got \(clearance)")
        }
        let clearance = request.clearance ?? current.clearance
        guard current.restricted != request.restricted || clearance != current.clearance else {
            throw DomainError.conflict("case \(current.id) is already \(request.restricted ? "restricted at clearance \(clearance)" : "unrestricted")")
        }
        var next = current
        next.restricted = request.restricted
        next.clearance = clearance
        next.version += 1
        next.updatedAt = now
        var columns: Row = ["restricted": .bool(request.restricted), "clearance": .integer(Int64(clearance))]
        var unassigned: String?
        if let assignee, current.assignee == assignee.id, !AccessPolicy.canView(next, as: assignee) {
            next.assignee = nil
            columns["assignee"] = .null
            unassigned = assignee.id
        }
        var work = changeCase(current, to: next, columns: columns, metadata: metadata)
        // Permission changes travel the priority path to derived stores.
        work.events.append(try event(current.streamID, CaseEvents.caseRestrictionChanged,
                                     CaseEvents.RestrictionChanged(
                                        caseID: current.id, restricted: request.restricted, reason: reason, clearance: clearance, unassigned: unassigned),
                                     at: now, priority: true))
        return Decision(value: next, work: work)
    }

    /// Hands the case to another team; the assignment, which belonged to the old team, is cleared.
    public static func changeTeam(
        _ current: Case, _ request: TeamChangeRequest, by actor: User, at now: Date, metadata: CommandMetadata
    ) throws(DomainError) -> Decision<Case> {
        let reason = try Validation.text(request.reason, field: "reason", max: 2000)
        let team = try Validation.slug(request.team, field: "team")
        guard team != current.team else { throw DomainError.conflict("case \(current.id) already belongs to team \(team)") }
        var next = current
        next.team = team
        next.assignee = nil
        next.version += 1
        next.updatedAt = now
        var work = changeCase(current, to: next, columns: ["team": .text(team), "assignee": .null], metadata: metadata)
        work.events.append(try event(current.streamID, CaseEvents.caseTeamChanged,
                                     CaseEvents.TeamChanged(caseID: current.id, from: current.team, to: team, reason: reason), at: now, priority: true))
        return Decision(value: next, work: work)
    }

    public static func registerParty(
        _ request: RegisterPartyRequest, id: String, by actor: User, at now: Date, metadata: CommandMetadata
    ) throws(DomainError) -> Decision<Party> {
        let kind = try parse(request.kind, as: PartyKind.self, field: "kind")
        let name = try Validation.text(request.name, field: "name", max: 200)
        let email = try request.email.map { email throws(DomainError) in try Validation.email(email, field: "email") }
        let nationalID = try request.nationalID.map { value throws(DomainError) in try Validation.text(value, field: "national_id", max: 64) }
        if kind == .organisation && nationalID != nil {
            throw DomainError.invalid(field: "national_id", "applies to people only, not organisations")
        }
        let party = Party(id: id, kind: kind, name: name, email: email, nationalID: nationalID, createdAt: now)
        var work = UnitOfWork(metadata: metadata)
        work.expect(Party.streamID(id), .noStream)
        work.mutations.append(.insert(table: "parties", row: party.row(createdBy: actor.id)))
        work.events.append(try event(Party.streamID(id), CaseEvents.partyRegistered, party, at: now))
        return Decision(value: party, work: work)
    }

    public static func linkParty(
        _ current: Case, party: Party, role roleName: String, existing: [CasePartyLink], by actor: User, at now: Date,
        metadata: CommandMetadata
    ) throws(DomainError) -> Decision<(Case, CasePartyLink)> {
        let role = try parse(roleName, as: PartyRole.self, field: "role")
        guard current.status != .closed else { throw DomainError.conflict("case \(current.id) is closed; reopen it before linking parties") }
        guard !existing.contains(where: { $0.partyID == party.id && $0.role == role }) else {
            throw DomainError.conflict("party \(party.id) is already linked to case \(current.id) as \(role.rawValue)")
        }
        var next = current
        next.version += 1
        let link = CasePartyLink(caseID: current.id, partyID: party.id, role: role, linkedAt: now, linkedBy: actor.id, caseVersion: next.version)
        next.updatedAt = now
        var work = changeCase(current, to: next, columns: [:], metadata: metadata)
        work.mutations.append(.insert(table: "case_parties", row: link.row))
        work.events.append(try event(current.streamID, CaseEvents.casePartyLinked,
                                     CaseEvents.PartyLinked(caseID: current.id, partyID: party.id, role: role, partyKind: party.kind, partyName: party.name),
                                     at: now))
        return Decision(value: (next, link), work: work)
    }

    public static func addEvidence(
        _ current: Case, _ request: AddEvidenceRequest, id: String, by actor: User, at now: Date, metadata: CommandMetadata
    ) throws(DomainError) -> Decision<(Case, Evidence)> {
        let title = try Validation.text(request.title, field: "title", max: 200)
        let description = try Validation.text(request.description, field: "description", max: 10_000, allowEmpty: true)
        let mediaType = try Validation.mediaType(request.mediaType, field: "media_type")
        guard (0...(1 << 40)).contains(request.sizeBytes) else {
            throw DomainError.invalid(field: "size_bytes", "must be between 0 and 1 TiB; got \(request.sizeBytes)")
        }
        let sha256 = try Validation.sha256(request.sha256, field: "sha256")
        guard current.status != .closed else { throw DomainError.conflict("case \(current.id) is closed; reopen it before adding evidence") }
        let evidence = Evidence(
            id: id, caseID: current.id, title: title, description: description, mediaType: mediaType,
            sizeBytes: request.sizeBytes, sha256: sha256, version: 1, addedAt: now, addedBy: actor.id)
        var next = current
        next.version += 1
        next.updatedAt = now
        var work = changeCase(current, to: next, columns: [:], metadata: metadata)
        work.mutations.append(.insert(table: "evidence", row: evidence.row))
        work.events.append(try event(current.streamID, CaseEvents.caseEvidenceAdded, evidence, at: now))
        return Decision(value: (next, evidence), work: work)
    }

    public static func registerUser(_ user: User, at now: Date, metadata: CommandMetadata) throws(DomainError) -> Decision<User> {
        try validate(user)
        var work = UnitOfWork(metadata: metadata)
        work.expect(User.streamID(user.id), .noStream)
        work.mutations.append(.insert(table: "users", row: user.row(createdAt: now)))
        work.events.append(try event(User.streamID(user.id), CaseEvents.userRegistered, user, at: now))
        return Decision(value: user, work: work)
    }

    /// Changes a user's name, role, team or clearance. Refused while they are assigned an open
    /// case the changed user could not take (not an investigator of its team, or without the
    /// clearance it needs): reassign those first. The commit expects the user's stream at the
    /// version read before their assigned cases, which an assignment or a reopening that keeps
    /// them moves; and those require the user's row at their commit. So neither can slip past
    /// the other.
    /// - Parameters:
    ///   - version: the user's stream version, read before `current` and `assigned`: an
    ///     assignment to them, or another change, committed since makes this fail to commit.
    ///   - assigned: the cases assigned to the user now.
    public static func updateUser(
        _ current: User, version: Int64?, to updated: User, assigned: [Case], at now: Date, metadata: CommandMetadata
    ) throws(DomainError) -> Decision<User> {
        try validate(updated)
        guard updated.id == current.id else { throw DomainError.invalid(field: "id", "cannot change; register a new user instead") }
        guard updated != current else { throw DomainError.conflict("\(current.id) already has that name, role, team and clearance") }
        let lost = assigned.filter { item in
            item.status != .closed && (updated.role != .investigator || updated.team != item.team || !AccessPolicy.canView(item, as: updated))
        }
        if !lost.isEmpty {
            throw DomainError.conflict("""
                \(current.id) is assigned \(lost.count) open case(s) the changed user could not take \
                (\(lost.prefix(10).map(\.id).joined(separator: ", "))\(lost.count > 10 ? ", …" : "")); reassign them first
                """)
        }
        var work = UnitOfWork(metadata: metadata)
        work.expect(User.streamID(current.id), version.map(ExpectedVersion.exactly) ?? .noStream)
        work.mutations.append(.update(table: "users", key: ["id": .text(current.id)], values: [
            "display_name": .text(updated.displayName), "role": .text(updated.role.rawValue), "team": .optionalText(updated.team),
            "clearance": .integer(Int64(updated.clearance)),
        ]))
        work.events.append(try event(User.streamID(current.id), CaseEvents.userUpdated, CaseEvents.UserUpdated(previous: current, user: updated), at: now))
        return Decision(value: updated, work: work)
    }

    /// Removes a user: their tokens stop working at once (every request resolves its principal
    /// from canonical state), and what they did stays recorded under their id. Refused while they
    /// are assigned an open case. An id is not registered again.
    public static func removeUser(
        _ current: User, version: Int64?, assigned: [Case], at now: Date, metadata: CommandMetadata
    ) throws(DomainError) -> Decision<User> {
        let open = assigned.filter { $0.status != .closed }
        if !open.isEmpty {
            throw DomainError.conflict("""
                \(current.id) is assigned \(open.count) open case(s) (\(open.prefix(10).map(\.id).joined(separator: ", "))\(open.count > 10 ? ", …" : "")); \
                reassign them first
                """)
        }
        var work = UnitOfWork(metadata: metadata)
        work.expect(User.streamID(current.id), version.map(ExpectedVersion.exactly) ?? .noStream)
        work.mutations.append(.delete(table: "users", key: ["id": .text(current.id)]))
        work.events.append(try event(User.streamID(current.id), CaseEvents.userRemoved, current, at: now))
        return Decision(value: current, work: work)
    }

    /// What every user must be: a slug id, a name, a clearance of 1–3, a team for the roles that work in one.
    private static func validate(_ user: User) throws(DomainError) {
        _ = try Validation.slug(user.id, field: "id")
        _ = try Validation.text(user.displayName, field: "display_name", max: 200)
        if let team = user.team { _ = try Validation.slug(team, field: "team") }
        guard (1...3).contains(user.clearance) else { throw DomainError.invalid(field: "clearance", "must be 1, 2 or 3; got \(user.clearance)") }
        if [.investigator, .supervisor, .analyst].contains(user.role) && user.team == nil {
            throw DomainError.invalid(field: "team", "is required for the \(user.role.rawValue) role")
        }
    }

    // MARK: - Helpers

    /// Updates the case row to `next`'s version (plus `columns`), expecting `current`'s version.
    /// Purges a closed case: its row, its party links and its evidence rows are deleted, a
    /// tombstone is kept for each, and `case.purged` tells every derived store to remove them, all
    /// in one transaction. The transition history is append-only and stays.
    ///
    /// A legal hold on the case, or a retention period that has not run out since it closed,
    /// refuses the purge.
    public static func purge(
        _ current: Case, evidence: [Evidence], reason rawReason: String, hold: LegalHold? = nil, closedAt: Date? = nil,
        retention: RetentionPolicy = .init(), by actor: User, at now: Date, metadata: CommandMetadata
    ) throws(DomainError) -> Decision<Case> {
        let reason = try Validation.text(rawReason, field: "reason", max: 2000)
        guard current.status == .closed else {
            throw DomainError.conflict("case \(current.id) is \(current.status.rawValue); only a closed case can be purged")
        }
        if let hold {
            throw DomainError.conflict(
                "case \(current.id) is under legal hold since \(Timestamp.iso8601(hold.placedAt)) (\(hold.reason)); a hold blocks every purge until it is lifted")
        }
        if retention.period != nil {
            // A closed case with no closing in its history (written before it was kept) counts
            // from its last change.
            let ends = retention.ends(closedAt: closedAt ?? current.updatedAt)
            guard now >= ends else {
                throw DomainError.conflict(
                    "case \(current.id) is within its retention period until \(Timestamp.iso8601(ends)); it may be purged after that")
            }
        }
        var work = UnitOfWork(metadata: metadata)
        work.expect(current.streamID, .exactly(current.version))
        work.mutations.append(.delete(table: "case_parties", key: ["case_id": .text(current.id)]))
        work.mutations.append(.delete(table: "evidence", key: ["case_id": .text(current.id)]))
        work.mutations.append(.delete(table: "cases", key: ["id": .text(current.id)]))
        let tombstones = [("case", current.id)] + evidence.map { ("evidence", $0.id) }
        for (kind, id) in tombstones {
            work.mutations.append(.insert(table: "tombstones", row: [
                "kind": .text(kind), "id": .text(id), "case_id": .text(current.id), "purged_at": .timestamp(now), "purged_by": .text(actor.id),
                "reason": .text(reason),
            ]))
        }
        work.events.append(try event(current.streamID, CaseEvents.casePurged,
                                     CaseEvents.Purged(caseID: current.id, evidenceIDs: evidence.map(\.id), reason: reason), at: now))
        var gone = current
        gone.version += 1
        gone.updatedAt = now
        return Decision(value: gone, work: work)
    }

    /// Places a legal hold on the case (any status): from now on nothing of it may be purged.
    public static func placeHold(
        _ current: Case, reason rawReason: String, existing: LegalHold?, by actor: User, at now: Date, metadata: CommandMetadata
    ) throws(DomainError) -> Decision<Case> {
        let reason = try Validation.text(rawReason, field: "reason", max: 2000)
        if let existing {
            throw DomainError.conflict("case \(current.id) is already under legal hold since \(Timestamp.iso8601(existing.placedAt)) (\(existing.reason))")
        }
        let row = LegalHold(caseID: current.id, reason: reason, placedAt: now, placedBy: actor.id).row
        return try holdChange(current, .insert(table: "legal_holds", row: row), CaseEvents.caseHoldPlaced, reason: reason, at: now, metadata: metadata)
    }

    /// Lifts the case's legal hold.
    public static func releaseHold(
        _ current: Case, reason rawReason: String, existing: LegalHold?, by actor: User, at now: Date, metadata: CommandMetadata
    ) throws(DomainError) -> Decision<Case> {
        let reason = try Validation.text(rawReason, field: "reason", max: 2000)
        guard existing != nil else { throw DomainError.conflict("case \(current.id) is not under legal hold") }
        return try holdChange(
            current, .delete(table: "legal_holds", key: ["case_id": .text(current.id)]), CaseEvents.caseHoldReleased, reason: reason, at: now, metadata: metadata)
    }

    /// A hold placed or lifted: the case's next version, the `legal_holds` row and the event.
    private static func holdChange(
        _ current: Case, _ mutation: RowMutation, _ type: String, reason: String, at now: Date, metadata: CommandMetadata
    ) throws(DomainError) -> Decision<Case> {
        var next = current
        next.version += 1
        next.updatedAt = now
        var work = changeCase(current, to: next, columns: [:], metadata: metadata)
        work.mutations.append(mutation)
        work.events.append(try event(current.streamID, type, CaseEvents.Hold(caseID: current.id, reason: reason), at: now))
        return Decision(value: next, work: work)
    }

    private static func changeCase(_ current: Case, to next: Case, columns: Row, metadata: CommandMetadata) -> UnitOfWork {
        var values = columns
        values["version"] = .integer(next.version)
        values["updated_at"] = .timestamp(next.updatedAt)
        var work = UnitOfWork(metadata: metadata)
        work.expect(current.streamID, .exactly(current.version))
        work.mutations.append(.update(table: "cases", key: ["id": .text(current.id)], values: values))
        return work
    }

    private static func event(_ stream: StreamID, _ type: String, _ payload: some Encodable, at now: Date, priority: Bool = false) throws(DomainError) -> PendingEvent {
        do {
            return try PendingEvent(streamID: stream, type: type, encoding: payload, occurredAt: now, priority: priority)
        } catch {
            throw DomainError.invalid(field: "body", "cannot be recorded as an event: \(error)")
        }
    }
}
