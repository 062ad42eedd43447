import Canon
import Foundation
import Testing

/// The conformance suite every canonical store engine must pass: one body of checks, run by
/// each engine's test target against a real instance of that engine.
///
/// ```swift
/// @Test(arguments: CanonicalStoreConformance.Check.allCases)
/// func conformance(_ check: CanonicalStoreConformance.Check) async throws {
///     try await CanonicalStoreConformance.run(check, on: .sqlite)
/// }
/// ```
public enum CanonicalStoreConformance {
    /// How the suite gets stores of one engine.
    public struct Engine: Sendable {
        public var name: String
        /// A new, empty store with `ConformanceSchema.migrations` and the given fault injector,
        /// keeping any files in `scratch`, which lives as long as the check.
        public var make: @Sendable (_ faults: FaultInjector?, _ scratch: TemporaryDirectory) async throws -> any CanonicalStore
        /// Opens the storage in `scratch` again after its store was released (for durability);
        /// nil when the engine keeps nothing across instances.
        public var reopen: (@Sendable (_ scratch: TemporaryDirectory) async throws -> any CanonicalStore)?

        public init(
            name: String, make: @escaping @Sendable (FaultInjector?, TemporaryDirectory) async throws -> any CanonicalStore,
            reopen: (@Sendable (TemporaryDirectory) async throws -> any CanonicalStore)?
        ) {
            self.name = name
            self.make = make
            self.reopen = reopen
        }

        public static let inMemory = Engine(
            name: "memory",
            make: { faults, _ in try InMemoryCanonicalStore(migrations: ConformanceSchema.migrations, configuration: .init(faults: faults)) },
            reopen: nil)
    }

    public enum Check: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case commitNumbersEventsAndWritesRows
        case failedMutationLeavesNothingBehind
        case injectedFaultLeavesNothingBehind
        case staleExpectedVersionIsAConflict
        case concurrentWritersWithSameExpectedVersionOneWins
        case positionsAreGapFreeInCommitOrderUnderConcurrentWriters
        case appendOnlyTableRefusesUpdateAndDelete
        case outboxReadsAreOrderedAndBounded
        case queriesFilterOrderAndCount
        case batchCommitIsAllOrNothing
        case committedDataSurvivesReopen
        case concurrentAppendsToOneStreamWithoutExpectationAllCommitInOrder
        case concurrentCommitsThatFailFailAloneAndTheRestCommit
        case requiredRowGuardsTheCommit
        case valuesOfEveryTypeAreStoredExactly

        public var testDescription: String { rawValue }
    }

    public static func run(_ check: Check, on engine: Engine) async throws {
        switch check {
        case .commitNumbersEventsAndWritesRows: try await commitNumbersEventsAndWritesRows(engine)
        case .failedMutationLeavesNothingBehind: try await failedMutationLeavesNothingBehind(engine)
        case .injectedFaultLeavesNothingBehind: try await injectedFaultLeavesNothingBehind(engine)
        case .staleExpectedVersionIsAConflict: try await staleExpectedVersionIsAConflict(engine)
        case .concurrentWritersWithSameExpectedVersionOneWins: try await concurrentWritersWithSameExpectedVersionOneWins(engine)
        case .positionsAreGapFreeInCommitOrderUnderConcurrentWriters: try await positionsAreGapFree(engine)
        case .appendOnlyTableRefusesUpdateAndDelete: try await appendOnlyTableRefusesUpdateAndDelete(engine)
        case .outboxReadsAreOrderedAndBounded: try await outboxReadsAreOrderedAndBounded(engine)
        case .queriesFilterOrderAndCount: try await queriesFilterOrderAndCount(engine)
        case .batchCommitIsAllOrNothing: try await batchCommitIsAllOrNothing(engine)
        case .committedDataSurvivesReopen: try await committedDataSurvivesReopen(engine)
        case .concurrentAppendsToOneStreamWithoutExpectationAllCommitInOrder: try await concurrentAppendsToOneStream(engine)
        case .concurrentCommitsThatFailFailAloneAndTheRestCommit: _ = try await concurrentCommitsThatFailFailAlone(engine)
        case .requiredRowGuardsTheCommit: try await requiredRowGuardsTheCommit(engine)
        case .valuesOfEveryTypeAreStoredExactly: try await valuesOfEveryTypeAreStoredExactly(engine)
        }
    }

    // MARK: - Fixtures

    static let opened = Date(timeIntervalSince1970: 1_790_000_000)

    static func stream(_ id: String) -> StreamID { StreamID(category: "account", id: id) }

    /// Opens account `id`: one row and one `account.opened` event, expecting a new stream.
    public static func openAccount(_ id: String, owner: String? = nil, balance: Int64 = 0) throws -> UnitOfWork {
        var work = UnitOfWork(metadata: CommandMetadata(actor: "tester", correlationID: "corr-\(id)", causationID: "req-\(id)"))
        work.expect(stream(id), .noStream)
        work.mutations.append(.insert(table: "accounts", row: [
            "id": .text(id), "owner": .text(owner ?? "owner-\(id)"), "balance": .integer(balance),
            "closed": .bool(false), "opened_at": .timestamp(opened), "tier": .text("standard"),
        ]))
        work.events.append(try PendingEvent(streamID: stream(id), type: "account.opened", encoding: ["id": id], occurredAt: opened))
        return work
    }

    /// Deposits into account `id` at expected version `version`: a balance update, a ledger row, an event.
    public static func deposit(_ id: String, amount: Int64, expecting version: ExpectedVersion, seq: Int64) throws -> UnitOfWork {
        var work = UnitOfWork(metadata: CommandMetadata(actor: "tester"))
        work.expect(stream(id), version)
        work.mutations.append(.update(table: "accounts", key: ["id": .text(id)], values: ["balance": .integer(amount * seq)]))
        work.mutations.append(.insert(table: "ledger", row: ["account_id": .text(id), "seq": .integer(seq), "amount": .integer(amount)]))
        work.events.append(try PendingEvent(streamID: stream(id), type: "account.deposited", encoding: ["amount": amount], occurredAt: opened))
        return work
    }

    // MARK: - Checks

    static func commitNumbersEventsAndWritesRows(_ engine: Engine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-conformance")
        let store = try await engine.make(nil, scratch)
        #expect(try await store.headPosition() == .start)
        let first = try await store.commit(try openAccount("a"))
        #expect(first.position == OutboxPosition(1))
        let event = try #require(first.events.first)
        #expect(event.streamVersion == 1)
        #expect(event.actor == "tester")
        #expect(event.correlationID == "corr-a")
        #expect(event.causationID == "req-a")
        #expect(event.type == "account.opened")
        #expect(event.priority == false)

        var two = try deposit("a", amount: 5, expecting: .exactly(1), seq: 1)
        two.events.append(try PendingEvent(streamID: stream("a"), type: "account.flagged", encoding: ["flag": "x"], occurredAt: opened, priority: true))
        let second = try await store.commit(two)
        #expect(second.events.map(\.position) == [OutboxPosition(2), OutboxPosition(3)])
        #expect(second.events.map(\.streamVersion) == [2, 3])
        #expect(second.version(of: stream("a")) == 3)
        #expect(try await store.streamVersion(stream("a")) == 3)
        #expect(try await store.streamVersion(stream("nobody")) == nil)

        let stored = try await store.events(after: .start, limit: 10)
        #expect(stored == first.events + second.events)
        #expect(stored.last?.priority == true)
        let decoded: [String: String] = try #require(stored.first).decodePayload()
        #expect(decoded == ["id": "a"])
        let row = try #require(try await store.fetchOne("accounts", where: ["id": .text("a")]))
        #expect(try row.int("balance") == 5)
        #expect(try row.date("opened_at") == opened)
        #expect(try row.bool("closed") == false)
        #expect(try row.string("tier") == "standard")
    }

    static func failedMutationLeavesNothingBehind(_ engine: Engine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-conformance")
        let store = try await engine.make(nil, scratch)
        _ = try await store.commit(try openAccount("a", owner: "shared"))
        var work = try openAccount("b")
        // The second insert reuses owner "shared", which is unique: it fails midway.
        work.mutations.append(.insert(table: "accounts", row: [
            "id": .text("c"), "owner": .text("shared"), "balance": .integer(0), "closed": .bool(false),
            "opened_at": .timestamp(opened), "tier": .text("standard"),
        ]))
        await #expect {
            try await store.commit(work)
        } throws: { error in
            (error as? CanonicalStoreError)?.code == .uniqueViolation
        }
        #expect(try await store.fetchOne("accounts", where: ["id": .text("b")]) == nil)
        #expect(try await store.count("accounts", filter: [:]) == 1)
        #expect(try await store.headPosition() == OutboxPosition(1))
        #expect(try await store.streamVersion(stream("b")) == nil)
        // The store is still usable and numbering continues without a gap.
        let next = try await store.commit(try openAccount("b"))
        #expect(next.position == OutboxPosition(2))
    }

    static func injectedFaultLeavesNothingBehind(_ engine: Engine) async throws {
        for point in [FaultPoint.afterMutations, .beforeCommit] {
            let faults = FaultSwitch()
            let scratch = try TemporaryDirectory(prefix: "canon-conformance-fault")
            let store = try await engine.make(faults.injector, scratch)
            _ = try await store.commit(try openAccount("a"))
            faults.arm(point)
            await #expect {
                try await store.commit(try deposit("a", amount: 7, expecting: .exactly(1), seq: 1))
            } throws: { error in
                (error as? CanonicalStoreError)?.code == .injectedFault
            }
            let row = try #require(try await store.fetchOne("accounts", where: ["id": .text("a")]))
            #expect(try row.int("balance") == 0, "rows rolled back after a fault at \(point)")
            #expect(try await store.count("ledger", filter: [:]) == 0)
            #expect(try await store.headPosition() == OutboxPosition(1), "no event after a fault at \(point)")
            #expect(try await store.streamVersion(stream("a")) == 1)
        }
    }

    static func staleExpectedVersionIsAConflict(_ engine: Engine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-conformance")
        let store = try await engine.make(nil, scratch)
        _ = try await store.commit(try openAccount("a"))
        _ = try await store.commit(try deposit("a", amount: 1, expecting: .exactly(1), seq: 1))
        await #expect {
            try await store.commit(try deposit("a", amount: 1, expecting: .exactly(1), seq: 2))
        } throws: { error in
            let error = error as? CanonicalStoreError
            return error?.code == .streamVersionConflict && error?.actualVersion == 2
        }
        // An expectation on a stream the unit does not append to guards what it read: wrong, it
        // is a conflict too.
        for expected in [ExpectedVersion.noStream, .exactly(1)] {
            var guarded = try openAccount("b")
            guarded.expect(stream("a"), expected)
            await #expect {
                try await store.commit(guarded)
            } throws: { error in
                (error as? CanonicalStoreError)?.code == .streamVersionConflict
            }
        }
        #expect(try await store.fetchOne("accounts", where: ["id": .text("b")]) == nil)
        // An expectation ahead of the stream is as wrong as one behind it.
        await #expect {
            try await store.commit(try deposit("a", amount: 1, expecting: .exactly(5), seq: 2))
        } throws: { error in
            let error = error as? CanonicalStoreError
            return error?.code == .streamVersionConflict && error?.actualVersion == 2
        }
        await #expect {
            try await store.commit(try openAccount("a", owner: "other"))
        } throws: { error in
            (error as? CanonicalStoreError)?.code == .streamVersionConflict
        }
        #expect(try await store.count("ledger", filter: [:]) == 1)
        #expect(try await store.headPosition() == OutboxPosition(2))
    }

    static func concurrentWritersWithSameExpectedVersionOneWins(_ engine: Engine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-conformance")
        let store = try await engine.make(nil, scratch)
        _ = try await store.commit(try openAccount("a"))
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for writer in 1...2 {
                group.addTask {
                    do {
                        _ = try await store.commit(try deposit("a", amount: Int64(writer), expecting: .exactly(1), seq: 1))
                        return true
                    } catch let error as CanonicalStoreError where error.code == .streamVersionConflict {
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1, "exactly one writer wins")
        #expect(outcomes.filter { !$0 }.count == 1, "the other gets a conflict")
        let events = try await store.events(after: .start, limit: 10)
        #expect(events.map(\.streamVersion) == [1, 2], "no duplicate stream version")
        #expect(try await store.count("ledger", filter: [:]) == 1, "no lost or doubled update")
    }

    /// Writers that append to one stream without an expectation all commit: no writer sees a
    /// conflict it did not ask for, and the stream's versions are 1, 2, 3, … in position order.
    static func concurrentAppendsToOneStream(_ engine: Engine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-conformance")
        let store = try await engine.make(nil, scratch)
        let writers = 6, commitsEach = 15
        let shared = stream("shared")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for index in 0..<commitsEach {
                        var work = UnitOfWork(metadata: CommandMetadata(actor: "writer-\(writer)"))
                        work.events.append(try PendingEvent(streamID: shared, type: "account.noted", encoding: ["n": writer * 100 + index], occurredAt: opened))
                        _ = try await store.commit(work)
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = writers * commitsEach
        let events = try await store.events(after: .start, limit: total + 10)
        #expect(events.count == total)
        #expect(events.map(\.streamVersion) == Array(1...Int64(total)), "versions follow positions")
        #expect(try await store.streamVersion(shared) == Int64(total))
    }

    static func positionsAreGapFree(_ engine: Engine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-conformance")
        let store = try await engine.make(nil, scratch)
        let writers = 8, commitsEach = 40
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    let id = "w\(writer)"
                    _ = try await store.commit(try openAccount(id))
                    for seq in 1..<commitsEach {
                        _ = try await store.commit(try deposit(id, amount: 1, expecting: .exactly(Int64(seq)), seq: Int64(seq)))
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = writers * commitsEach
        let events = try await store.events(after: .start, limit: total + 10)
        #expect(events.map(\.position.rawValue) == Array(1...Int64(total)), "gap-free and strictly increasing")
        #expect(zip(events, events.dropFirst()).allSatisfy { $0.committedAt <= $1.committedAt }, "commit time follows position")
        for writer in 0..<writers {
            let versions = events.filter { $0.streamID == stream("w\(writer)") }.map(\.streamVersion)
            #expect(versions == Array(1...Int64(commitsEach)), "stream w\(writer) numbered in position order")
        }
        #expect(try await store.headPosition() == OutboxPosition(Int64(total)))
    }

    static func appendOnlyTableRefusesUpdateAndDelete(_ engine: Engine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-conformance")
        let store = try await engine.make(nil, scratch)
        _ = try await store.commit(try openAccount("a"))
        _ = try await store.commit(try deposit("a", amount: 3, expecting: .exactly(1), seq: 1))
        let key: Row = ["account_id": .text("a"), "seq": .integer(1)]
        for mutation in [RowMutation.update(table: "ledger", key: key, values: ["amount": .integer(300)]), .delete(table: "ledger", key: key)] {
            await #expect {
                try await store.commit(UnitOfWork(metadata: .system, mutations: [mutation]))
            } throws: { error in
                (error as? CanonicalStoreError)?.code == .appendOnlyViolation
            }
        }
        let row = try #require(try await store.fetchOne("ledger", where: key))
        #expect(try row.int("amount") == 3)
    }

    static func outboxReadsAreOrderedAndBounded(_ engine: Engine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-conformance")
        let store = try await engine.make(nil, scratch)
        for index in 0..<25 { _ = try await store.commit(try openAccount("acc\(index)")) }
        var position = OutboxPosition.start
        var seen: [OutboxPosition] = []
        while true {
            let page = try await store.events(after: position, limit: 10)
            #expect(page.count <= 10)
            guard let last = page.last else { break }
            seen += page.map(\.position)
            position = last.position
        }
        #expect(seen == (1...25).map { OutboxPosition(Int64($0)) })
        #expect(try await store.events(after: OutboxPosition(25), limit: 10).isEmpty)
        #expect(try await store.events(after: OutboxPosition(3), limit: 0).isEmpty)
    }

    /// Text that needs escaping in SQL or JSON, extreme integers, reals that print long, bytes of
    /// every value and nulls are read back exactly as written: by a unit alone, by several
    /// committed as one batch (on PostgreSQL, rows bound as arrays), and by a unit that also
    /// updates (PostgreSQL's longer path).
    static func valuesOfEveryTypeAreStoredExactly(_ engine: Engine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-conformance")
        let store = try await engine.make(nil, scratch)
        let texts = [
            "", "plain", "quote \" backslash \\ slash / tab \t newline \n return \r", "control \u{01}\u{08}\u{0C}\u{1F} end",
            "ünïcødé ✓ 𝄞 🙂", "'; DROP TABLE samples; --", "\\x41 looks like bytes", "{\"json\": [1, 2]}",
        ]
        let integers: [Int64] = [.min, .max, 0, -1, 9_007_199_254_740_993]
        let reals: [Double] = [0.1, -1e-300, 1.7976931348623157e308, 3.141592653589793, -0.0, 5e-324, .infinity, -.infinity, 123456789.125]
        let blobs = [Data(0...255), Data([0]), Data("\\x".utf8)]
        func sample(_ index: Int) -> Row {
            [
                "id": .text("s\(index)"),
                "label": index % 9 == 8 ? .null : .text(texts[index % texts.count]),
                "count": index % 7 == 6 ? .null : .integer(integers[index % integers.count]),
                "ratio": index % 10 == 9 ? .null : .real(reals[index % reals.count]),
                "bytes": index % 4 == 3 ? .null : .blob(blobs[index % blobs.count]),
                "at": .timestamp(opened.addingTimeInterval(Double(index) * 0.000_001)),
                "flag": index % 5 == 4 ? .null : .bool(index % 2 == 0),
            ]
        }
        func unit(_ indices: Range<Int>, updating: Int? = nil) throws -> UnitOfWork {
            var work = UnitOfWork(metadata: CommandMetadata(actor: "tester"))
            for index in indices { work.mutations.append(.insert(table: "samples", row: sample(index))) }
            if let updating {
                var values = sample(updating + 100)
                values.values["id"] = nil
                work.mutations.append(.update(table: "samples", key: ["id": .text("s\(updating)")], values: values))
            }
            let streamID = StreamID(category: "sample", id: "\(indices.lowerBound)")
            work.expect(streamID, .noStream)
            work.events.append(try PendingEvent(streamID: streamID, type: "sample.added", encoding: ["count": indices.count], occurredAt: opened))
            return work
        }
        _ = try await store.commit(try unit(0..<12))
        _ = try await store.commit(batch: [try unit(12..<20), try unit(20..<27), try unit(27..<28)])
        _ = try await store.commit(try unit(28..<36, updating: 3))
        var expected = (0..<36).map(sample)
        expected[3] = sample(103)
        expected[3]["id"] = .text("s3")
        let stored = try await store.fetchAll("samples", orderBy: [.init("id")])
        #expect(stored.count == expected.count)
        let byID = Dictionary(uniqueKeysWithValues: try stored.map { (try $0.string("id"), $0) })
        for row in expected {
            let id = try row.string("id")
            let found = try #require(byID[id], "\(engine.name): \(id) is missing")
            for column in ConformanceSchema.samples.columns.map(\.name) {
                #expect(found[column] == row[column], "\(engine.name): \(id).\(column) is \(found[column]), written as \(row[column])")
            }
        }
    }

    static func queriesFilterOrderAndCount(_ engine: Engine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-conformance")
        let store = try await engine.make(nil, scratch)
        for (index, balance) in [30, 10, 20].enumerated() {
            _ = try await store.commit(try openAccount("q\(index)", balance: Int64(balance)))
        }
        let ordered = try await store.fetchAll("accounts", orderBy: [.init("balance", ascending: false)], limit: 2)
        #expect(try ordered.map { try $0.int("balance") } == [30, 20])
        #expect(try await store.count("accounts", filter: ["balance": .integer(10)]) == 1)
        #expect(try await store.fetchAll("accounts", where: ["note": .null]).count == 3)
        // An offset skips rows in order, with or without a limit.
        let skipped = try await store.fetchAll(RowQuery(table: "accounts", order: [.init("balance")], limit: 1, offset: 1))
        #expect(try skipped.map { try $0.int("balance") } == [20])
        #expect(try await store.fetchAll(RowQuery(table: "accounts", order: [.init("balance")], offset: 2)).map { try $0.int("balance") } == [30])
        #expect(try await store.fetchAll(RowQuery(table: "accounts", order: [.init("balance")], limit: 1, offset: 3)).isEmpty)
        // A batch of keys in one read; unknown keys are simply absent; an empty batch matches nothing.
        let batch = try await store.fetchAll(RowQuery(
            table: "accounts", anyOf: .init("id", [.text("q2"), .text("q0"), .text("missing")]), order: [.init("id")]))
        #expect(try batch.map { try $0.string("id") } == ["q0", "q2"])
        #expect(try await store.fetchAll(RowQuery(table: "accounts", anyOf: .init("id", []))).isEmpty)
        let filtered = try await store.fetchAll(RowQuery(
            table: "accounts", filter: ["balance": .integer(30)], anyOf: .init("id", [.text("q0"), .text("q1")])))
        #expect(try filtered.map { try $0.string("id") } == ["q0"])
        await #expect {
            try await store.fetchAll(RowQuery(table: "accounts", anyOf: .init("no_such_column", [.integer(1)])))
        } throws: { error in
            (error as? CanonicalStoreError)?.code == .constraintViolation
        }
        await #expect {
            try await store.fetchAll("no_such_table")
        } throws: { error in
            (error as? CanonicalStoreError)?.code == .unknownTable
        }
        await #expect {
            try await store.fetchAll("accounts", where: ["no_such_column": .integer(1)])
        } throws: { error in
            (error as? CanonicalStoreError)?.code == .constraintViolation
        }
    }

    static func batchCommitIsAllOrNothing(_ engine: Engine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-conformance")
        let store = try await engine.make(nil, scratch)
        let results = try await store.commit(batch: [try openAccount("a"), try openAccount("b"), try deposit("a", amount: 2, expecting: .exactly(1), seq: 1)])
        #expect(results.map(\.position) == [OutboxPosition(1), OutboxPosition(2), OutboxPosition(3)])
        await #expect {
            try await store.commit(batch: [try openAccount("c"), try openAccount("a")])
        } throws: { error in
            (error as? CanonicalStoreError)?.code == .streamVersionConflict
        }
        #expect(try await store.fetchOne("accounts", where: ["id": .text("c")]) == nil)
        #expect(try await store.headPosition() == OutboxPosition(3))
    }

    /// `RowMutation.require`: a unit commits only while the row it was decided on still holds the
    /// values it read (a NULL column included), whether it only inserts (PostgreSQL's
    /// one-statement commit) or also updates (the longer path), alone or among concurrent
    /// commits; when the row changed, it fails with `requirementFailed` and writes nothing.
    static func requiredRowGuardsTheCommit(_ engine: Engine) async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-conformance")
        let store = try await engine.make(nil, scratch)
        _ = try await store.commit(try openAccount("a", owner: "ann"))
        let asOpened: Row = ["id": .text("a"), "owner": .text("ann"), "balance": .integer(0), "note": .null]
        func requiring(_ work: UnitOfWork, _ row: Row) -> UnitOfWork {
            var work = work
            work.mutations.append(.require(table: "accounts", row: row))
            return work
        }
        func isRequirementFailure(_ error: any Error) -> Bool {
            (error as? CanonicalStoreError).map { $0.code == .requirementFailed && $0.table == "accounts" } ?? false
        }
        // The row holds what the unit requires: it commits.
        let b = try await store.commit(requiring(try openAccount("b"), asOpened))
        #expect(b.position == OutboxPosition(2))
        _ = try await store.commit(try deposit("a", amount: 5, expecting: .exactly(1), seq: 1))
        // Now it does not: inserts only, then an update too; nothing of either is written.
        await #expect(performing: { try await store.commit(requiring(try openAccount("c"), asOpened)) }, throws: isRequirementFailure)
        await #expect(performing: {
            try await store.commit(requiring(try deposit("b", amount: 7, expecting: .exactly(1), seq: 1), asOpened))
        }, throws: isRequirementFailure)
        #expect(try await store.fetchOne("accounts", where: ["id": .text("c")]) == nil)
        #expect(try await store.fetchOne("accounts", where: ["id": .text("b")])?.int("balance") == 0)
        #expect(try await store.count("ledger", filter: ["account_id": .text("b")]) == 0)
        #expect(try await store.headPosition() == OutboxPosition(3))
        #expect(try await store.streamVersion(stream("c")) == nil)
        // A required row that is not there at all.
        await #expect(performing: {
            try await store.commit(requiring(try openAccount("d"), ["id": .text("nobody")]))
        }, throws: isRequirementFailure)
        // Among concurrent commits, only those whose row changed fail.
        let current: Row = ["id": .text("a"), "balance": .integer(5), "note": .null]
        let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for writer in 0..<16 {
                group.addTask {
                    let work = requiring(try openAccount("w\(writer)"), writer % 4 == 0 ? asOpened : current)
                    do {
                        _ = try await store.commit(work)
                        return (writer, true)
                    } catch {
                        #expect(isRequirementFailure(error), "\(error)")
                        return (writer, false)
                    }
                }
            }
            return try await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        #expect(outcomes.filter(\.value).keys.sorted() == (0..<16).filter { $0 % 4 != 0 })
        #expect(try await store.headPosition() == OutboxPosition(3 + 12))
        #expect(try await store.count("accounts", filter: [:]) == 2 + 12)
    }

    /// Many writers commit at once and some of their units must fail (an account opened twice,
    /// a deposit at a stale version). Each writer gets its own outcome: only those fail, with the
    /// conflict; every other commit lands, with its own position, and the outbox stays gap-free.
    /// (An engine that gathers concurrent commits into one transaction must still do this.)
    public static func concurrentCommitsThatFailFailAlone(_ engine: Engine, rounds: Int = 4, writers: Int = 32) async throws -> [CommitResult] {
        let scratch = try TemporaryDirectory(prefix: "canon-conformance")
        let store = try await engine.make(nil, scratch)
        _ = try await store.commit(try openAccount("taken"))
        var committed: [CommitResult] = []
        for round in 0..<rounds {
            let outcomes = try await withThrowingTaskGroup(of: (Int, Result<CommitResult, CanonicalStoreError>).self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        let work = switch writer % 8 {
                        case 0: try openAccount("taken")
                        case 4: try deposit("taken", amount: 1, expecting: .exactly(7), seq: Int64(round * writers + writer))
                        default: try openAccount("r\(round)-w\(writer)")
                        }
                        do {
                            return (writer, .success(try await store.commit(work)))
                        } catch let error as CanonicalStoreError {
                            return (writer, .failure(error))
                        }
                    }
                }
                return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            for (writer, outcome) in outcomes.sorted(by: { $0.key < $1.key }) {
                switch outcome {
                case .success(let result):
                    #expect(writer % 4 != 0, "writer \(writer) of round \(round) should have failed")
                    #expect(result.events.map(\.streamID) == [stream("r\(round)-w\(writer)")])
                    #expect(result.events.last?.position == result.position)
                    committed.append(result)
                case .failure(let error):
                    #expect(writer % 4 == 0, "writer \(writer) of round \(round) failed: \(error)")
                    #expect(error.code == .streamVersionConflict, "\(error)")
                }
            }
        }
        let expected = rounds * writers * 3 / 4
        #expect(committed.count == expected)
        let events = try await store.events(after: .start, limit: expected + 10)
        #expect(events.map(\.position.rawValue) == Array(1...Int64(expected + 1)), "gap-free")
        #expect(Set(committed.map(\.position)).count == expected, "each commit has a position of its own")
        for result in committed {
            #expect(events[Int(result.position.rawValue) - 1].streamID == result.events[0].streamID, "the position holds that commit's event")
        }
        #expect(try await store.count("accounts", filter: [:]) == expected + 1)
        #expect(try await store.count("ledger", filter: [:]) == 0, "no stale deposit wrote its row")
        return committed
    }

    static func committedDataSurvivesReopen(_ engine: Engine) async throws {
        guard let reopen = engine.reopen else { return }
        let scratch = try TemporaryDirectory(prefix: "canon-durability")
        var store: (any CanonicalStore)? = try await engine.make(nil, scratch)
        _ = try await store!.commit(try openAccount("a"))
        _ = try await store!.commit(try deposit("a", amount: 4, expecting: .exactly(1), seq: 1))
        let before = try await store!.events(after: .start, limit: 10)
        store = nil
        let reopened = try await reopen(scratch)
        #expect(try await reopened.events(after: .start, limit: 10) == before)
        #expect(try await reopened.headPosition() == OutboxPosition(2))
        let row = try #require(try await reopened.fetchOne("accounts", where: ["id": .text("a")]))
        #expect(try row.int("balance") == 4)
        #expect(try await reopened.count("ledger", filter: [:]) == 1)
        let next = try await reopened.commit(try deposit("a", amount: 4, expecting: .exactly(2), seq: 2))
        #expect(next.position == OutboxPosition(3))
    }
}
