import Canon
import CanonSQLite
import CanonTesting
import CasePlatform
import Foundation
import Testing

/// Optimistic concurrency on a case: If-Match races, internal retries, and an outbox that stays
/// gap-free with unique stream versions under contention.
@Suite struct ConcurrencyTests {
    /// Checks the outbox invariants: positions 1…head without gaps, and no duplicate
    /// (stream, version), with each stream numbered 1, 2, 3, … in position order.
    static func expectOutboxIsConsistent(_ store: SQLiteCanonicalStore, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let events = try await store.events(after: .start, limit: 1_000_000)
        let head = try await store.headPosition()
        #expect(events.map(\.position.rawValue) == Array(stride(from: Int64(1), through: head.rawValue, by: 1)), sourceLocation: sourceLocation)
        let keys = events.map { "\($0.streamID)#\($0.streamVersion)" }
        #expect(Set(keys).count == keys.count, "duplicate stream versions in the outbox", sourceLocation: sourceLocation)
        var next: [StreamID: Int64] = [:]
        for event in events {
            #expect(event.streamVersion == (next[event.streamID] ?? 1), "stream \(event.streamID) skips a version", sourceLocation: sourceLocation)
            next[event.streamID] = event.streamVersion + 1
        }
    }

    @Test(arguments: 1...5)
    func two_concurrent_transitions_with_the_same_ifMatch_let_exactly_one_win(round: Int) async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let version = try await fixture.currentCase(opened.id).version
        let historyBefore = try await fixture.queries.history(caseID: opened.id)
        let head = try await fixture.store.headPosition()
        let commands = fixture.commands

        let results = await withTaskGroup(of: Result<CaseCommands.Outcome, any Error>.self) { group in
            for actor in [People.ivan, People.iris] {
                group.addTask {
                    do {
                        return .success(try await commands.transition(opened.id, TransitionRequest(to: "triage", reason: "by \(actor.id)"),
                                                                      ifMatch: version, by: actor))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }

        let successes = results.compactMap { try? $0.get() }
        let failures = results.compactMap { result -> (any Error)? in if case .failure(let error) = result { error } else { nil } }
        #expect(successes.count == 1)
        #expect(failures.count == 1)
        #expect((failures.first as? DomainError)?.code == .versionMismatch, "\(String(describing: failures.first))")
        #expect(successes.first?.version == version + 1)

        let history = try await fixture.queries.history(caseID: opened.id)
        #expect(history.count == historyBefore.count + 1)
        #expect(try await fixture.currentCase(opened.id).version == version + 1)
        #expect(try await fixture.store.headPosition() == head.next)
        let newEvents = try await fixture.store.events(after: head, limit: 10)
        #expect(newEvents.map(\.type) == [CaseEvents.caseStatusChanged])
        try await Self.expectOutboxIsConsistent(fixture.store)
    }

    /// Every loss of one writer is a distinct other writer's commit, so with three writers each
    /// loses at most twice and the third attempt always succeeds: no failure is acceptable.
    @Test func three_concurrent_addEvidence_without_ifMatch_all_succeed_through_retries() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let head = try await fixture.store.headPosition()
        let commands = fixture.commands

        let outcomes = try await withThrowingTaskGroup(of: CaseCommands.Outcome.self) { group in
            for index in 1...3 {
                group.addTask { try await commands.addEvidence(opened.id, Requests.evidence(index), by: People.ivan) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }

        #expect(outcomes.count == 3)
        #expect(Set(outcomes.map(\.version)) == [2, 3, 4])
        #expect(Set(outcomes.map(\.position)) == [head.next, head.next.next, head.next.next.next])
        #expect(try await fixture.queries.evidence(caseID: opened.id).count == 3)
        #expect(Set(try await fixture.queries.evidence(caseID: opened.id).map(\.id)) == Set(outcomes.map(\.id)))
        #expect(try await fixture.currentCase(opened.id).version == 4)
        try await Self.expectOutboxIsConsistent(fixture.store)
    }

    /// Under heavier contention some writers may exhaust their three attempts; those must fail
    /// with `conflict`, and exactly the successful ones must have left rows and events.
    @Test func twenty_concurrent_addEvidence_account_for_every_success_and_only_conflicts_fail() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let head = try await fixture.store.headPosition()
        let commands = fixture.commands
        let writers = 20

        let results = await withTaskGroup(of: Result<CaseCommands.Outcome, any Error>.self) { group in
            for index in 1...writers {
                group.addTask {
                    do { return .success(try await commands.addEvidence(opened.id, Requests.evidence(index), by: People.ivan)) } catch { return .failure(error) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }

        let successes = results.compactMap { try? $0.get() }
        let failures = results.compactMap { result -> (any Error)? in if case .failure(let error) = result { error } else { nil } }
        #expect(successes.count + failures.count == writers)
        #expect(successes.count >= 1)
        for failure in failures {
            #expect((failure as? DomainError)?.code == .conflict, "\(failure)")
        }

        let evidence = try await fixture.queries.evidence(caseID: opened.id)
        #expect(evidence.count == successes.count)
        #expect(Set(evidence.map(\.id)) == Set(successes.map(\.id)))
        let newEvents = try await fixture.store.events(after: head, limit: 1_000)
        #expect(newEvents.count == successes.count)
        #expect(newEvents.allSatisfy { $0.type == CaseEvents.caseEvidenceAdded })
        #expect(Set(successes.map(\.version)) == Set((0..<successes.count).map { Int64(2 + $0) }))
        #expect(try await fixture.currentCase(opened.id).version == Int64(1 + successes.count))
        try await Self.expectOutboxIsConsistent(fixture.store)
    }

    @Test func concurrent_commands_on_different_cases_do_not_interfere() async throws {
        let fixture = try await Fixture()
        var ids: [String] = []
        for index in 0..<6 { ids.append(try await fixture.openCase(title: "Case \(index)").id) }
        let commands = fixture.commands
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in ids {
                group.addTask {
                    _ = try await commands.transition(id, TransitionRequest(to: "triage", reason: "x"), by: People.ivan)
                    _ = try await commands.addEvidence(id, Requests.evidence(1), by: People.ivan)
                }
            }
            try await group.waitForAll()
        }
        for id in ids {
            let current = try await fixture.currentCase(id)
            #expect(current.status == .triage && current.version == 3)
            #expect(try await fixture.store.streamVersion(Case.streamID(id)) == 3)
        }
        try await Self.expectOutboxIsConsistent(fixture.store)
    }

    @Test func two_concurrent_restrictions_without_ifMatch_commit_once_and_the_retry_reports_conflict() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let head = try await fixture.store.headPosition()
        let commands = fixture.commands
        let results = await withTaskGroup(of: Result<CaseCommands.Outcome, any Error>.self) { group in
            for principal in [People.lena, People.sam] {
                group.addTask {
                    do {
                        return .success(try await commands.restrict(opened.id, RestrictionRequest(restricted: true, reason: "by \(principal.id)"),
                                                                    by: principal))
                    } catch { return .failure(error) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let successes = results.compactMap { try? $0.get() }
        let failures = results.compactMap { result -> (any Error)? in if case .failure(let error) = result { error } else { nil } }
        #expect(successes.count == 1)
        #expect((failures.first as? DomainError)?.code == .conflict, "\(String(describing: failures.first))")
        let events = try await fixture.store.events(after: head, limit: 10)
        #expect(events.map(\.type) == [CaseEvents.caseRestrictionChanged])
        #expect(try await fixture.currentCase(opened.id).version == 2)
        try await Self.expectOutboxIsConsistent(fixture.store)
    }

    @Test func two_concurrent_identical_transitions_without_ifMatch_move_once_and_the_retry_is_refused() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        let commands = fixture.commands
        let results = await withTaskGroup(of: Result<CaseCommands.Outcome, any Error>.self) { group in
            for principal in [People.ivan, People.iris] {
                group.addTask {
                    do {
                        return .success(try await commands.transition(opened.id, TransitionRequest(to: "triage", reason: "x"), by: principal))
                    } catch { return .failure(error) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let successes = results.compactMap { try? $0.get() }
        let failures = results.compactMap { result -> (any Error)? in if case .failure(let error) = result { error } else { nil } }
        #expect(successes.count == 1)
        #expect((failures.first as? DomainError)?.code == .transitionRefused, "\(String(describing: failures.first))")
        #expect(try await fixture.queries.history(caseID: opened.id).map(\.to) == [.intake, .triage])
        try await Self.expectOutboxIsConsistent(fixture.store)
    }

    // MARK: - If-Match

    @Test func transition_with_a_stale_ifMatch_is_versionMismatch_and_writes_nothing() async throws {
        let fixture = try await Fixture()
        let opened = try await fixture.openCase()
        _ = try await fixture.commands.addEvidence(opened.id, Requests.evidence(1), by: People.ivan)
        let before = try await fixture.snapshot()
        #expect(try await fixture.currentCase(opened.id).version == 2)

        for stale in [Int64(1), 3, 99] {
            let error = await expectDomainError(.versionMismatch) {
                _ = try await fixture.commands.transition(opened.id, TransitionRequest(to: "triage", reason: "x"), ifMatch: stale, by: People.ivan)
            }
            #expect(error?.message.contains("version 2") == true)
        }
        await expectDomainError(.versionMismatch) {
            _ = try await fixture.commands.assign(opened.id, AssignmentRequest(investigator: "ivan"), ifMatch: 1, by: People.sam)
        }
        await expectDomainError(.versionMismatch) {
            _ = try await fixture.commands.restrict(opened.id, RestrictionRequest(restricted: true, reason: "x"), ifMatch: 1, by: People.lena)
        }
        #expect(try await fixture.snapshot() == before)

        let outcome = try await fixture.commands.transition(opened.id, TransitionRequest(to: "triage", reason: "x"), ifMatch: 2, by: People.ivan)
        #expect(outcome.version == 3)
    }
}
