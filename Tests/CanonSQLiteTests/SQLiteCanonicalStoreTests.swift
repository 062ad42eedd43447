import Canon
import CanonSQLite
import CanonTesting
import Foundation
import GRDB
import Testing

/// What the SQLite engine guarantees in the database file itself, beyond the shared contract.
@Suite("SQLite canonical store engine")
struct SQLiteCanonicalStoreTests {
    let scratch: TemporaryDirectory
    let store: SQLiteCanonicalStore

    init() throws {
        scratch = try TemporaryDirectory()
        store = try SQLiteCanonicalStore(path: scratch.file("canonical.sqlite"), migrations: ConformanceSchema.migrations)
    }

    func seedLedger() async throws {
        var work = UnitOfWork(metadata: .system)
        work.mutations.append(.insert(table: "ledger", row: ["account_id": .text("a"), "seq": .integer(1), "amount": .integer(5)]))
        work.events.append(PendingEvent(streamID: StreamID("account-a"), type: "ledger.appended", payload: Data("{}".utf8), occurredAt: Date()))
        _ = try await store.commit(work)
    }

    @Test func appendOnlyTableRefusesRawSQLUpdate() async throws {
        try await seedLedger()
        await #expect {
            try await store.executeRawSQL("UPDATE ledger SET amount = 500")
        } throws: { error in
            (error as? CanonicalStoreError)?.code == .appendOnlyViolation
        }
    }

    @Test func appendOnlyTableRefusesRawSQLDelete() async throws {
        try await seedLedger()
        await #expect {
            try await store.executeRawSQL("DELETE FROM ledger")
        } throws: { error in
            (error as? CanonicalStoreError)?.code == .appendOnlyViolation
        }
        #expect(try await store.count("ledger", filter: [:]) == 1)
    }

    @Test func outboxRefusesRawSQLUpdateAndDelete() async throws {
        try await seedLedger()
        for sql in ["UPDATE canon_outbox SET type = 'forged'", "DELETE FROM canon_outbox"] {
            await #expect {
                try await store.executeRawSQL(sql)
            } throws: { error in
                (error as? CanonicalStoreError)?.code == .appendOnlyViolation
            }
        }
        #expect(try await store.events(after: .start, limit: 10).map(\.type) == ["ledger.appended"])
    }

    /// The outbox read shares the Strings of texts that repeat from one event to the next (stream,
    /// type, actor, correlation and causation ids): each event must still read back as written,
    /// through runs of the same text, changes, texts that are prefixes of each other, and nulls.
    @Test func eventsReadBackAsWrittenWhateverTheirTextsRepeat() async throws {
        let streams = ["account-a", "account-a", "account-ab", "account-a", "account-b", "account-b", "account-é", "account-a"]
        // Same-length neighbours too ("ledger.opened"/"ledger.closed", "alice"/"alina"), so a
        // check of lengths alone would be caught on every shared text.
        let types = ["ledger.opened", "ledger.opened", "ledger.closed", "ledger", "ledger.opened", "ledger.appended.again", "", "ledger.closed"]
        let actors = ["alice", "alice", "alina", "alice", "al", "alice-with-a-name-longer-than-fifteen", "alina", "bob"]
        let correlations: [String?] = ["c-1", "c-1", nil, "c-1", "c-2", nil, nil, "c-10"]
        let causations: [String?] = [nil, "k-1", "k-1", nil, "k-1", "k-2", "k-2", nil]
        var written: [(stream: String, type: String, actor: String, correlation: String?, causation: String?)] = []
        for round in 0..<3 {
            for index in streams.indices {
                let rotated = (index + round) % streams.count
                var work = UnitOfWork(metadata: CommandMetadata(actor: actors[rotated], correlationID: correlations[index], causationID: causations[rotated]))
                work.events.append(PendingEvent(streamID: StreamID(streams[index]), type: types[rotated], payload: Data("{}".utf8), occurredAt: Date()))
                _ = try await store.commit(work)
                written.append((streams[index], types[rotated], actors[rotated], correlations[index], causations[rotated]))
            }
        }
        let read = try await store.events(after: .start, limit: 1_000)
        #expect(read.count == written.count)
        for (event, expected) in zip(read, written) {
            #expect(event.streamID.rawValue == expected.stream)
            #expect(event.type == expected.type)
            #expect(event.actor == expected.actor)
            #expect(event.correlationID == expected.correlation)
            #expect(event.causationID == expected.causation)
        }
        // More distinct actors than one read keeps (all of one length): each still reads back.
        for index in 0..<40 {
            var work = UnitOfWork(metadata: CommandMetadata(actor: String(format: "actor-%02d", index)))
            work.events.append(PendingEvent(streamID: StreamID("account-a"), type: "ledger.opened", payload: Data("{}".utf8), occurredAt: Date()))
            _ = try await store.commit(work)
        }
        let many = try await store.events(after: .start, limit: 1_000).suffix(40)
        #expect(many.map(\.actor) == (0..<40).map { String(format: "actor-%02d", $0) })
        // Read again from the middle, as a later batch would: the same events.
        let later = try await store.events(after: read[9].position, limit: 5)
        #expect(later.map(\.position) == Array(read[10..<15]).map(\.position))
        #expect(later.map(\.streamID) == Array(read[10..<15]).map(\.streamID))
        #expect(later.map(\.actor) == Array(read[10..<15]).map(\.actor))
    }

    @Test func duplicateStreamVersionIsRefusedByTheDatabase() async throws {
        try await seedLedger()
        await #expect {
            try await store.executeRawSQL("""
                INSERT INTO canon_outbox (position, stream_id, stream_version, type, schema_version, payload, actor,
                    occurred_at, committed_at, priority)
                VALUES (2, 'account-a', 1, 'x', 1, '{}', 'forger', 0, 0, 0)
                """)
        } throws: { error in
            (error as? CanonicalStoreError)?.code == .uniqueViolation
        }
    }

    @Test func fileIsInWALModeWithStrictTables() throws {
        let queue = try DatabaseQueue(path: scratch.file("canonical.sqlite"))
        let mode = try queue.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        let strict = try queue.read { db in
            try Int.fetchOne(db, sql: "SELECT strict FROM pragma_table_list WHERE name = 'accounts'")
        }
        #expect(strict == 1)
    }

    @Test func migrationsAreRecordedAndNotReapplied() async throws {
        try await seedLedger()
        let reopened = try SQLiteCanonicalStore(path: scratch.file("canonical.sqlite"), migrations: ConformanceSchema.migrations)
        #expect(try await reopened.count("ledger", filter: [:]) == 1)
        let queue = try DatabaseQueue(path: scratch.file("canonical.sqlite"))
        let applied = try await queue.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY rowid") }
        #expect(applied == ["canon.outbox.v1"] + ConformanceSchema.migrations.map(\.identifier))
    }

    /// A file with a migration this Canon does not know (written by a newer one) is refused, for
    /// writing and for reading: its tables may have columns or meanings this one would write without.
    @Test func aFileWrittenByANewerCanonIsRefused() async throws {
        let path = scratch.file("newer.sqlite")
        let newer = ConformanceSchema.migrations + [
            SchemaMigration("conformance.v4", steps: [.addColumn(table: "accounts", column: .init("region", .text), default: .text("north"))])
        ]
        _ = try await SQLiteCanonicalStore(path: path, migrations: newer).commit(try CanonicalStoreConformance.openAccount("a"))
        for readonly in [false, true] {
            #expect {
                try SQLiteCanonicalStore(path: path, migrations: ConformanceSchema.migrations, configuration: .init(readonly: readonly))
            } throws: { error in
                let error = error as? CanonicalStoreError
                return error?.code == .storage && error?.message.contains("written by a newer version of Canon") == true
            }
        }
        // The version that wrote it still opens it.
        #expect(try await SQLiteCanonicalStore(path: path, migrations: newer).headPosition() == OutboxPosition(1))
    }

    /// Another process holding the write lock past the busy timeout is a transient error: the
    /// commit wrote nothing and may be tried again (projection agents do, without counting it
    /// toward the failure policy).
    @Test func aWriteLockHeldByAnotherConnectionIsATransientErrorAndWritesNothing() async throws {
        let path = scratch.file("locked.sqlite")
        let store = try SQLiteCanonicalStore(path: path, migrations: ConformanceSchema.migrations, configuration: .init(busyTimeout: 0.05))
        // Another connection holds the write lock until released.
        let other = try DatabaseQueue(path: path)
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let holder = Task.detached {
            try other.inTransaction(.exclusive) { _ in
                entered.signal()
                release.wait()
                return .rollback
            }
        }
        await withCheckedContinuation { continuation in DispatchQueue.global().async { entered.wait(); continuation.resume() } }
        await #expect {
            try await store.commit(try CanonicalStoreConformance.openAccount("a"))
        } throws: { error in
            let error = error as? CanonicalStoreError
            return error?.code == .storage && error?.transient == true
        }
        release.signal()
        try await holder.value
        #expect(try await store.headPosition() == .start)
        _ = try await store.commit(try CanonicalStoreConformance.openAccount("a"))
        #expect(try await store.headPosition() == OutboxPosition(1))
    }

    @Test func aFileThatIsNotADatabaseIsAClearError() throws {
        let path = scratch.file("corrupt.sqlite")
        try Data(repeating: 0x42, count: 4096).write(to: URL(fileURLWithPath: path))
        #expect {
            try SQLiteCanonicalStore(path: path, migrations: ConformanceSchema.migrations)
        } throws: { error in
            let error = error as? CanonicalStoreError
            return error?.code == .storage && error?.message.contains("corrupt.sqlite") == true
        }
    }
}
