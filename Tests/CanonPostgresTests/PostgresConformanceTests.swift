import Canon
import Foundation
@testable import CanonPostgres
import CanonTesting
import Testing

@Suite("PostgreSQL canonical store conformance (real server)", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipMessage)))
struct PostgresConformanceTests {
    @Test(arguments: CanonicalStoreConformance.Check.allCases)
    func conformance(_ check: CanonicalStoreConformance.Check) async throws {
        try await CanonicalStoreConformance.run(check, on: .postgres)
    }

    /// Commits that arrive together are gathered into fewer transactions (group commit), and
    /// each still gets its own outcome: the shared conformance check, on one store whose
    /// committer's totals are then read.
    @Test func concurrentCommitsAreGatheredIntoFewerTransactions() async throws {
        let url = try await PostgresTestServer.createDatabase()
        let store = try await PostgresCanonicalStore(url: url, migrations: ConformanceSchema.migrations)
        let engine = CanonicalStoreConformance.Engine(name: "postgres, one store", make: { _, _ in store }, reopen: nil)
        let committed = try await CanonicalStoreConformance.concurrentCommitsThatFailFailAlone(engine)
        #expect(committed.count == 96)
        let totals = try #require(store.groupCommitter).totals
        #expect(totals.units == 4 * 32 + 1)
        #expect(totals.transactions < totals.units, "no commits were gathered: \(totals)")
    }

    /// The row a commit requires (`RowMutation.require`) is share-locked from when the commit
    /// checks it: a change to the row made while the commit waits for the outbox head has to
    /// wait for the commit (here it gives up after its lock timeout), so the commit never lands
    /// on a row that changed under it. Both paths: the one commit statement (a unit that only
    /// inserts elsewhere and opens a stream), and the longer one (a unit that inserts into the
    /// required row's table).
    ///
    /// Another session holds the head's lock meanwhile, without sleeping: it takes the head, then
    /// waits for the row lock of a "gate" account that a third transaction holds open (a store's
    /// `holdOpen` hook) until the test lets it go.
    @Test(.timeLimit(.minutes(2)), arguments: [true, false])
    func aRequiredRowCannotChangeWhileTheCommitWaitsForTheHead(_ oneStatement: Bool) async throws {
        let url = try await PostgresTestServer.createDatabase()
        let store = try await PostgresCanonicalStore(url: url, migrations: ConformanceSchema.migrations)
        let other = try await PostgresCanonicalStore(url: url, migrations: ConformanceSchema.migrations)
        let gateHeld = PositionWaiters()
        let release = AsyncStream<Void>.makeStream()
        let gatekeeper = try await PostgresCanonicalStore(
            url: url, migrations: ConformanceSchema.migrations,
            configuration: .init(holdOpen: {
                gateHeld.advance(to: OutboxPosition(1))
                for await _ in release.stream { break }
            }))
        _ = try await store.commit(try CanonicalStoreConformance.openAccount("a", owner: "ann"))
        _ = try await store.commit(try CanonicalStoreConformance.openAccount("gate"))
        /// Polls `condition` (SQL) on the server until it holds, up to 30 s.
        func until(_ what: String, _ condition: String) async throws {
            let deadline = ContinuousClock.now + .seconds(30)
            while true {
                do {
                    try await other.executeRawSQL("DO $$ BEGIN IF NOT (\(condition)) THEN RAISE EXCEPTION 'not yet: \(what)'; END IF; END $$")
                    return
                } catch {
                    guard ContinuousClock.now < deadline else { throw error }
                    await Task.yield()
                }
            }
        }
        // (pg_stat_activity shows every database's sessions: other tests run beside this one.)
        let here = "datname = current_database()"
        // The gate: an update of the gate account, with no event, held open until released.
        let gate = Task {
            try await gatekeeper.commit(UnitOfWork(
                metadata: CommandMetadata(actor: "tester"),
                mutations: [.update(table: "accounts", key: ["id": .text("gate")], values: ["balance": .integer(1)])]))
        }
        #expect(await gateHeld.wait(until: OutboxPosition(1), timeout: .seconds(30)), "the gate is held")
        let holder = Task {
            try await other.executeRawSQL(
                "DO $$ BEGIN PERFORM 1 FROM canon_outbox_head WHERE id = 1 FOR UPDATE; PERFORM 1 FROM accounts WHERE id = 'gate' FOR UPDATE; END $$")
        }
        try await until("the head is held", "EXISTS (SELECT 1 FROM pg_stat_activity WHERE \(here) AND wait_event_type = 'Lock' AND query LIKE '%''gate'' FOR UPDATE%')")
        let required: Row = ["id": .text("a"), "owner": .text("ann")]
        var work: UnitOfWork
        if oneStatement {
            work = UnitOfWork(metadata: CommandMetadata(actor: "tester"))
            let stream = StreamID(category: "note", id: "n1")
            work.expect(stream, .noStream)
            work.mutations.append(.insert(table: "ledger", row: ["account_id": .text("a"), "seq": .integer(1), "amount": .integer(5)]))
            work.events.append(try PendingEvent(streamID: stream, type: "note.added", encoding: ["n": 1], occurredAt: Date()))
        } else {
            work = try CanonicalStoreConformance.openAccount("b")
        }
        work.mutations.append(.require(table: "accounts", row: required))
        let committing = Task { [work] in try await store.commit(work) }
        try await until(
            "the commit waits for the head",
            "EXISTS (SELECT 1 FROM pg_stat_activity WHERE \(here) AND wait_event_type = 'Lock' AND query NOT LIKE '%''gate'' FOR UPDATE%')")
        await #expect("the required row cannot change before the commit") {
            try await other.executeRawSQL("DO $$ BEGIN SET LOCAL lock_timeout = '300ms'; UPDATE accounts SET owner = 'anna' WHERE id = 'a'; END $$")
        } throws: { error in
            (error as? CanonicalStoreError)?.message.contains("55P03") == true
        }
        // Let the gate go: the holder finishes and lets go of the head, and the commit lands.
        release.continuation.finish()
        _ = try await gate.value
        try await holder.value
        let committed = try await committing.value
        #expect(committed.position == OutboxPosition(3))
        // Once the commit is done, the change goes through, and the next commit that requires
        // the old row fails.
        try await other.executeRawSQL("UPDATE accounts SET owner = 'anna' WHERE id = 'a'")
        var stale = try CanonicalStoreConformance.openAccount("c")
        stale.mutations.append(.require(table: "accounts", row: required))
        await #expect(throws: CanonicalStoreError.self) { try await store.commit(stale) }
        #expect(try await store.headPosition() == OutboxPosition(3))
    }

    /// What the server reports about itself (shutting down, out of resources, a deadlock or a
    /// serialization failure) is a transient error; what it reports about the statement or the
    /// data is not. The server raises each SQLSTATE for real here (`RAISE … USING ERRCODE`).
    @Test(arguments: [
        ("57P01", true), ("57P03", true), ("08006", true), ("53200", true), ("58030", true), ("40001", true), ("40P01", true),
        ("57014", false), ("23505", false), ("22001", false), ("42703", false), ("XX000", false),
    ])
    func theServersOwnTroublesAreTransientAndTheStatementsAreNot(_ state: String, _ transient: Bool) async throws {
        let store = try await PostgresCanonicalStore(url: try await PostgresTestServer.createDatabase(), migrations: ConformanceSchema.migrations)
        await #expect {
            try await store.executeRawSQL("DO $$ BEGIN RAISE EXCEPTION 'raised for the test' USING ERRCODE = '\(state)'; END $$")
        } throws: { error in
            (error as? CanonicalStoreError)?.transient == transient
        }
        _ = try await store.commit(try CanonicalStoreConformance.openAccount("a"))
        #expect(try await store.headPosition() == OutboxPosition(1))
    }

    /// A backend the server terminates (a restart, a failover, an operator) is a transient error,
    /// and no caller waits forever after it. postgres-nio 1.33's pool can leave a request waiting
    /// forever after such a drop under concurrent use (it did here, about one round in fifteen);
    /// `PostgresDatabase.operationTimeout` (10 s here) turns that into a transient error, and
    /// the next attempt gets a fresh connection. Six stores at once, eight terminations each.
    @Test(.timeLimit(.minutes(3)))
    func aConnectionTheServerTerminatesIsTransientAndLeavesNoCallerWaiting() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<6 {
                group.addTask {
                    for round in 0..<8 {
                        let store = try await PostgresCanonicalStore(
                            url: try await PostgresTestServer.createDatabase(), migrations: ConformanceSchema.migrations,
                            configuration: .init(operationTimeout: .seconds(10)))
                        await #expect("lane \(lane) round \(round)") {
                            try await store.executeRawSQL("SELECT pg_terminate_backend(pg_backend_pid())")
                        } throws: { error in
                            (error as? CanonicalStoreError)?.transience == .outage
                        }
                        var attempts = 0
                        while true {
                            attempts += 1
                            do {
                                _ = try await store.commit(try CanonicalStoreConformance.openAccount("a"))
                                break
                            } catch let error as CanonicalStoreError where error.transient && attempts < 10 {
                                continue
                            }
                        }
                        #expect(try await store.headPosition() == OutboxPosition(1))
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func theDatabaseItselfRefusesChangesToTheOutboxAndAppendOnlyTables() async throws {
        let url = try await PostgresTestServer.createDatabase()
        let store = try await PostgresCanonicalStore(url: url, migrations: ConformanceSchema.migrations)
        _ = try await store.commit(try CanonicalStoreConformance.openAccount("a"))
        _ = try await store.commit(try CanonicalStoreConformance.deposit("a", amount: 3, expecting: .exactly(1), seq: 1))
        for sql in [
            "UPDATE canon_outbox SET actor = 'mallory'", "DELETE FROM canon_outbox", "TRUNCATE canon_outbox",
            "UPDATE ledger SET amount = 300", "DELETE FROM ledger",
        ] {
            await #expect("\(sql)") {
                try await store.executeRawSQL(sql)
            } throws: { error in
                (error as? CanonicalStoreError)?.code == .appendOnlyViolation
            }
        }
        #expect(try await store.events(after: .start, limit: 10).map(\.actor) == ["tester", "tester"])
        #expect(try await store.count("ledger", filter: [:]) == 1)
    }

    /// A database with a migration this Canon does not know (written by a newer one) is
    /// refused, as a SQLite file is; so is a projection schema.
    @Test func aDatabaseWrittenByANewerCanonIsRefused() async throws {
        let url = try await PostgresTestServer.createDatabase()
        let newer = ConformanceSchema.migrations + [
            SchemaMigration("conformance.v4", steps: [.addColumn(table: "accounts", column: .init("region", .text), default: .text("north"))])
        ]
        let store = try await PostgresCanonicalStore(url: url, migrations: newer)
        _ = try await store.commit(try CanonicalStoreConformance.openAccount("a"))
        await #expect {
            _ = try await PostgresCanonicalStore(url: url, migrations: ConformanceSchema.migrations)
        } throws: { error in
            let error = error as? CanonicalStoreError
            return error?.code == .storage && error?.message.contains("newer version of Canon") == true
                && error?.message.contains("conformance.v4") == true
        }
        #expect(try await PostgresCanonicalStore(url: url, migrations: newer).headPosition() == OutboxPosition(1))

        let identity = ProjectionIdentity(name: "notes", version: 1)
        _ = try await PostgresProjectionDatabase.open(url: url, identity: identity, faults: nil, migrations: [("notes.v1", []), ("notes.v2", [])])
        await #expect {
            _ = try await PostgresProjectionDatabase.open(url: url, identity: identity, faults: nil, migrations: [("notes.v1", [])])
        } throws: { error in
            (error as? ProjectionError)?.message.contains("newer version of Canon") == true
        }
    }

    @Test func processesOpeningOneDatabaseTogetherApplyEachMigrationOnce() async throws {
        let url = try await PostgresTestServer.createDatabase()
        let stores = try await withThrowingTaskGroup(of: PostgresCanonicalStore.self) { group in
            for _ in 0..<4 { group.addTask { try await PostgresCanonicalStore(url: url, migrations: ConformanceSchema.migrations) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        _ = try await stores[0].commit(try CanonicalStoreConformance.openAccount("a"))
        #expect(try await stores[3].fetchOne("accounts", where: ["id": .text("a")]) != nil)
    }
}

@Suite("PostgreSQL input errors", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipMessage)))
struct PostgresInputErrorTests {
    /// PostgreSQL cannot store a NUL character in text: that is the caller's value, a typed
    /// error (422 through HTTP), and nothing is written.
    @Test func aValueTheServerCannotStoreIsATypedInputErrorAndWritesNothing() async throws {
        let store = try await PostgresCanonicalStore(url: try await PostgresTestServer.createDatabase(), migrations: ConformanceSchema.migrations)
        _ = try await store.commit(try CanonicalStoreConformance.openAccount("a"))
        await #expect {
            try await store.commit(try CanonicalStoreConformance.openAccount("b", owner: "nul\u{0}owner"))
        } throws: { error in
            (error as? CanonicalStoreError)?.code == .invalidValue
        }
        #expect(try await store.headPosition() == OutboxPosition(1))
        #expect(try await store.count("accounts", filter: [:]) == 1)
    }

    /// Rows go to PostgreSQL as typed arrays (`PostgresColumns`): a value converts to its
    /// column's type only when nothing is lost (a whole number into text, a real with no fraction
    /// into an integer column, as PostgreSQL's assignment casts did); any other is a typed input
    /// error and the commit writes nothing, on both commit paths.
    @Test(arguments: [true, false])
    func aValueOfAnotherTypeConvertsOnlyWhenNothingIsLost(_ oneStatement: Bool) async throws {
        let store = try await PostgresCanonicalStore(url: try await PostgresTestServer.createDatabase(), migrations: ConformanceSchema.migrations)
        func open(_ id: String, _ values: Row) throws -> UnitOfWork {
            var work = try CanonicalStoreConformance.openAccount(id)
            guard case .insert(let table, var row) = work.mutations[0] else { return work }
            for column in values.columns { row[column] = values[column] }
            work.mutations[0] = .insert(table: table, row: row)
            // An update beside it sends the unit down the longer path.
            if !oneStatement { work.mutations.append(.update(table: "accounts", key: ["id": .text(id)], values: ["note": .text("longer")])) }
            return work
        }
        _ = try await store.commit(try open("kept", ["note": .integer(42), "balance": .real(7)]))
        let row = try #require(try await store.fetchOne("accounts", where: ["id": .text("kept")]))
        #expect(row["balance"] == .integer(7))
        #expect(row["note"] == (oneStatement ? .text("42") : .text("longer")))
        for bad: Row in [["balance": .text("12")], ["balance": .real(1.5)], ["note": .blob(Data([1]))]] {
            await #expect {
                try await store.commit(try open("bad", bad))
            } throws: { error in
                (error as? CanonicalStoreError)?.code == .invalidValue
            }
        }
        #expect(try await store.headPosition() == OutboxPosition(1))
        #expect(try await store.count("accounts", filter: [:]) == 1)
    }
}
