@testable import Canon
import Foundation
@testable import CanonPostgres
import CanonTesting
import PostgresNIO
import Synchronization
import Testing

/// How a commit holds the outbox head's lock, which every commit of the cluster waits for (never
/// while it waits for something else, never for long after its client has gone quiet), and how a
/// process keeps its projection leases.
@Suite("PostgreSQL locks: the outbox head's order, quiet sessions, leases (real server)", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipMessage)))
struct LockOrderTests {
    /// A commit retried after a collision writes its rows before it takes the head's lock, as a
    /// first attempt does. (A retry used to take the head first, then its rows: with a writer that
    /// held one of those rows and waited for the head, that was a deadlock, which PostgreSQL broke
    /// after `deadlock_timeout` with every commit stalled meanwhile, failing one of the two.)
    ///
    /// The first attempt reads its stream's version, writes its row, and, in the `holdOpen` hook,
    /// another store appends to the same stream: its numbering is stale, its append collides, and
    /// it is retried. In the retry's hook, after its rows, another session asks for the head
    /// without waiting (`NOWAIT`): it must get it.
    @Test(.timeLimit(.minutes(2)))
    func aRetryTakesTheHeadAfterItsRows() async throws {
        let url = try await PostgresTestServer.createDatabase()
        let other = try await PostgresCanonicalStore(url: url, migrations: ConformanceSchema.migrations, configuration: .init(groupCommit: nil))
        let stream = StreamID(category: "note", id: "n1")
        @Sendable func note(_ n: Int) throws -> UnitOfWork {
            var work = UnitOfWork(metadata: CommandMetadata(actor: "tester"))
            work.events.append(try PendingEvent(streamID: stream, type: "note.added", encoding: ["n": n], occurredAt: Date()))
            return work
        }
        let attempts = Atomic<Int>(0)
        let headFreeInRetry = Mutex<Bool?>(nil)
        let writer = try await PostgresCanonicalStore(
            url: url, migrations: ConformanceSchema.migrations,
            configuration: .init(
                holdOpen: {
                    if attempts.add(1, ordering: .relaxed).newValue == 1 {
                        _ = try? await other.commit(note(1))
                    } else {
                        let free: Bool
                        do {
                            try await other.executeRawSQL("DO $$ BEGIN PERFORM 1 FROM canon_outbox_head WHERE id = 1 FOR UPDATE NOWAIT; END $$")
                            free = true
                        } catch {
                            free = false
                        }
                        headFreeInRetry.withLock { $0 = free }
                    }
                },
                groupCommit: nil))
        _ = try await other.commit(try CanonicalStoreConformance.openAccount("a"))
        // An update of the account and an event on the note stream, with no expectation: the
        // stream's version is read, so the commit takes the longer path.
        var work = try note(2)
        work.mutations.append(.update(table: "accounts", key: ["id": .text("a")], values: ["balance": .integer(7)]))
        let committed = try await writer.commit(work)

        #expect(attempts.load(ordering: .relaxed) == 2, "the first attempt collided, the retry went through")
        #expect(headFreeInRetry.withLock { $0 } == true, "the retry held no lock on the head while it wrote its rows")
        #expect(committed.events.map(\.streamVersion) == [2])
        #expect(try await writer.headPosition() == OutboxPosition(3))
        #expect(try await writer.fetchOne("accounts", where: ["id": .text("a")])?["balance"] == .integer(7))
    }

    /// A session that sits inside a transaction holding the head's lock, as one does whose
    /// process vanished mid-commit with its machine (its connection not closed), is ended by the
    /// server after `idleInTransactionTimeout` (here 3 s): the next commit goes through then,
    /// instead of failing at its own deadline (here 10 s), as every commit would until TCP's
    /// keepalive ended the session (about two hours). (Not 1 s: with the whole suite running on
    /// two cores, the quiet client itself took over a second between its BEGIN and its lock.)
    /// (Its time limit allows for the whole suite on two cores: a minute has been seen.)
    @Test(.timeLimit(.minutes(4)))
    func aWriterGoneQuietInsideItsTransactionLetsGoOfTheHead() async throws {
        let url = try await PostgresTestServer.createDatabase()
        let store = try await PostgresCanonicalStore(
            url: url, migrations: ConformanceSchema.migrations,
            configuration: .init(operationTimeout: .seconds(10), idleInTransactionTimeout: .seconds(3)))
        // The quiet writer: another process's pool, with the same setting. Its own deadline
        // (16 s) comes after the commit's (10 s): as for a process that is gone, nothing on its
        // side ends the transaction before the commit gives up. (Its call then fails at its
        // deadline: postgres-nio does not see that the server closed the connection.)
        let elsewhere = PostgresDatabase(url: url, maximumConnections: 1, operationTimeout: .seconds(16), idleInTransactionTimeout: .seconds(3))
        defer { elsewhere.close() }
        let held = PositionWaiters()
        let never = AsyncStream<Void>.makeStream()
        let quiet = Task {
            try await elsewhere.transaction { transaction in
                try await transaction.execute("SELECT 1 FROM canon_outbox_head WHERE id = 1 FOR UPDATE")
                held.advance(to: OutboxPosition(1))
                for await _ in never.stream { break }
            }
        }
        #expect(await held.wait(until: OutboxPosition(1), timeout: .seconds(30)), "the quiet session holds the head")

        let committed = try await store.commit(try CanonicalStoreConformance.openAccount("a"))
        #expect(committed.position == OutboxPosition(1))

        // The quiet session was ended by the server: its transaction cannot commit.
        never.continuation.finish()
        await #expect(throws: (any Error).self) { try await quiet.value }
        #expect(try await store.headPosition() == OutboxPosition(1))
    }

    /// A lease check from a task that is being cancelled (its agent stopping) drops nothing:
    /// the process's other leases stay held. (It closed the lease connection, which released
    /// them all while their agents ran on.)
    @Test(.timeLimit(.minutes(1)))
    func aCancelledLeaseCheckDropsNoOtherLease() async throws {
        let url = try await PostgresTestServer.createDatabase()
        let leases = PostgresLeases(url: url)
        let other = PostgresLeases(url: url)
        #expect(await leases.acquire("case-search"))
        #expect(await leases.acquire("case-timeline"))
        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await leases.stillHeld("case-search")
        }
        _ = await cancelled.value
        #expect(await leases.stillHeld("case-timeline"), "the other lease is still held")
        #expect(await !other.acquire("case-timeline"), "and no other process can take it")
        await leases.close()
        await other.close()
    }

    /// An acquire cancelled while its `pg_try_advisory_lock` is in flight may leave the lock taken
    /// on the server with nothing recorded here; that lock is let go, so another process can take
    /// the lease once this one has released it (a stacked lock would keep it until the process ends).
    @Test(.timeLimit(.minutes(3)))
    func aCancelledAcquireLeavesNoLockBehind() async throws {
        let url = try await PostgresTestServer.createDatabase()
        let leases = PostgresLeases(url: url)
        let other = PostgresLeases(url: url)
        do {
            try await Self.cancelAcquires(leases, other)
        } catch {
            // Closed on every path (a connection dropped open is a crash in debug builds).
            await leases.close()
            await other.close()
            throw error
        }
        await leases.close()
        await other.close()
    }

    static func cancelAcquires(_ leases: PostgresLeases, _ other: PostgresLeases) async throws {
        // The connection is open, so the cancellations land on the lock query itself.
        #expect(await leases.acquire("case-timeline"))
        var abandoned = 0
        for attempt in 0..<80 {
            let asking = Task { await leases.acquire("case-search") }
            for _ in 0..<(attempt % 8) { await Task.yield() }
            asking.cancel()
            if await asking.value {
                await leases.release("case-search")
            } else {
                abandoned += 1
            }
            // Another process can take the lease at once, every time: an acquire or release
            // that returned has let go of what it took.
            guard await other.acquire("case-search") else {
                Issue.record("attempt \(attempt): the lease is still locked by the process that cancelled its acquire")
                break
            }
            await other.release("case-search")
        }
        #expect(abandoned > 0, "some acquires were cancelled before they answered")
        #expect(await leases.stillHeld("case-timeline"), "the other lease stays held throughout")
    }

    /// An error the client raised with no word from the server says nothing was sent only when it
    /// cannot have been (the pool closed, too many parameters, a connection that never started);
    /// any other may have come with the statement or its commit in flight, so its outcome is
    /// unknown and group commit does not commit each unit again alone (which could commit one
    /// twice).
    @Test func aClientSideErrorIsAnUnknownOutcomeUnlessNothingWasSent() {
        let unknown: [PSQLError.Code] = [
            .serverClosedConnection, .connectionError, .uncleanShutdown, .clientClosedConnection, .messageDecodingFailure,
            .unexpectedBackendMessage, .invalidCommandTag, .queryCancelled, .listenFailed, .unlistenFailed,
        ]
        let nothingSent: [PSQLError.Code] = [
            .poolClosed, .tooManyParameters, .sslUnsupported, .failedToAddSSLHandler, .receivedUnencryptedDataAfterSSLRequest,
            .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError,
        ]
        for code in unknown {
            let error = PostgresDatabase.canonError(code: code, message: "\(code)")
            #expect(error.outcomeUnknown, "\(code)")
            #expect(!GroupCommitter.rolledBack(error), "\(code)")
        }
        for code in nothingSent {
            let error = PostgresDatabase.canonError(code: code, message: "\(code)")
            #expect(!error.outcomeUnknown, "\(code)")
        }
        #expect(PostgresDatabase.canonError(code: .poolClosed, message: "closed").transient)
        #expect(PostgresDatabase.canonError(code: .serverClosedConnection, message: "lost").transient)
    }
}
