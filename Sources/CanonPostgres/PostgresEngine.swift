import Canon
import Foundation
import Synchronization
import Logging
import PostgresNIO
import _ConnectionPoolModule

/// A connection pool to one PostgreSQL database, with the few operations the stores need:
/// queries with positional binds, transactions that roll back on any error, and errors mapped to
/// Canon's typed errors.
///
/// The pool runs while this object lives: it is closed (every connection dropped) when the last
/// reference goes, or by `close()`.
public final class PostgresDatabase: Sendable {
    public let url: PostgresURL
    let client: PostgresClient
    let logger: Logger
    /// How long one operation (a statement, or a whole transaction) may take before its caller
    /// gets an error instead. postgres-nio 1.33's pool can leave a request waiting forever after
    /// the server dropped a connection under concurrent use (seen in tests that terminate
    /// backends): the caller must not wait with it.
    let operationTimeout: Duration
    private let deadlines = Deadline()
    private let running: Task<Void, Never>
    /// The texts of variable shape that `preparing` has let be prepared (see there).
    private let preparedShapes = Mutex<Set<String>>([])
    /// How many texts of variable shape may be prepared on each connection.
    static let preparedShapeLimit = 128
    /// Part of every prepared statement's name: moved on after a call that may have failed its
    /// preparation (`PreparedSQL.mayHaveFailedPreparation`), so the next calls prepare afresh.
    let preparedGeneration = Atomic<Int>(0)

    /// Connects lazily to `url` with at most `maximumConnections` connections.
    /// - Parameter settings: server settings every connection starts with (`role`,
    ///   `search_path`, …), sent in the startup packet, so no query pays for them.
    /// - Parameter idleInTransactionTimeout: the server ends a session that sits this long
    ///   inside a transaction without sending anything (PostgreSQL's
    ///   `idle_in_transaction_session_timeout`), so a process that vanished mid-transaction (its
    ///   machine lost, not its connection closed) lets go of its locks, such as the outbox head's
    ///   that every commit waits for, after this instead of after TCP's keepalive (about two
    ///   hours by default). No transaction here waits on its client that long: their statements
    ///   follow one another, and the slowest client-side work inside one (hashing a projection's
    ///   rows for a drift check) takes seconds.
    public init(
        url: PostgresURL, maximumConnections: Int = 8, settings: [(String, String)] = [], logger: Logger = Logger(label: "canon.postgres"),
        operationTimeout: Duration = .seconds(60), idleInTransactionTimeout: Duration = .seconds(30)
    ) {
        self.url = url
        self.logger = logger
        self.operationTimeout = operationTimeout
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: .disable)
        configuration.options.maximumConnections = max(1, maximumConnections)
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = .seconds(5)
        let idle = max(1, Int(idleInTransactionTimeout / .milliseconds(1)))
        let startup = [("idle_in_transaction_session_timeout", "\(idle)ms")] + settings
        configuration.options.additionalStartupParameters = [("options", startup.map { "-c \($0.0)=\($0.1)" }.joined(separator: " "))]
        // The pool's own chatter (such as a lease asked for in the instant before `run()` starts)
        // is not the application's business; failures reach callers as errors.
        var background = logger
        background.logLevel = .error
        let client = PostgresClient(configuration: configuration, backgroundLogger: background)
        self.client = client
        running = Task { await client.run() }
    }

    deinit { running.cancel() }

    /// Closes every connection of the pool.
    public func close() { running.cancel() }

    /// Runs `sql` with `binds` and collects its rows.
    ///
    /// - Parameter prepared: prepare `sql` once per connection and only bind and execute it
    ///   afterwards (`PreparedSQL`), which spares the server parsing and planning it each time.
    ///   For statements of a fixed shape only: every distinct text stays prepared on every
    ///   connection that ran it.
    @discardableResult
    func rows(_ sql: String, _ binds: [CanonValue] = [], prepared: Bool = false) async throws -> [PostgresRow] {
        try await rows(sql, binding: try Self.bindings(binds), prepared: prepared)
    }

    @discardableResult
    func rows(_ sql: String, _ binds: [PostgresBind], prepared: Bool = false) async throws -> [PostgresRow] {
        try await rows(sql, binding: try Self.bindings(binds), prepared: prepared)
    }

    private func rows(_ sql: String, binding bindings: PostgresBindings, prepared: Bool) async throws -> [PostgresRow] {
        try await mapErrors { [client, logger] in
            if prepared {
                do {
                    return try await PreparedSQL.run(sql, on: self) {
                        try await client.execute(PreparedSQL(bindings: bindings), logger: logger).reduce(into: []) { $0.append($1) }
                    }
                } catch let error as PSQLError where error.serverInfo?[.sqlState] == PreparedSQL.resultTypeChanged {
                    // A migration changed a table under a `SELECT *` prepared before it: unprepared, it answers.
                }
            }
            return try await client.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger).collect()
        }
    }

    /// Whether to prepare `sql`, a statement whose text depends on its data's shape (which tables
    /// and columns a commit writes, not how many rows): yes for the first `preparedShapeLimit`
    /// texts seen, then no for any new text, so a workload of ever new shapes cannot fill every
    /// connection with prepared statements (the unprepared way only costs a parse and plan).
    func preparing(_ sql: String) -> Bool {
        preparedShapes.withLock { shapes in
            if shapes.contains(sql) { return true }
            guard shapes.count < Self.preparedShapeLimit else { return false }
            shapes.insert(sql)
            return true
        }
    }

    /// Runs one statement (DDL and administration: with the long deadline).
    public func execute(_ sql: String) async throws {
        _ = try await mapErrors(deadline: Self.longOperation) { [client, logger] in
            try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
        }
    }

    /// The first column of the first row of `sql`, as an integer (nil when there is no row or it is NULL).
    public func integer(_ sql: String) async throws -> Int64? {
        try await rows(sql).first?.makeRandomAccess()[0].decode(Int64?.self)
    }

    /// Runs `body` in one transaction on one connection: committed when it returns, rolled back
    /// when it throws (the error is rethrown as it was, mapped to Canon's errors).
    ///
    /// - Parameter begin: the statement that opens it (for example a read-only snapshot).
    /// - Parameter deadline: how long it may take, when not `operationTimeout` (migrations and
    ///   whole-table scans take longer than any request should).
    func transaction<T: Sendable>(
        begin: String = "BEGIN", deadline: Duration? = nil, _ body: @escaping @Sendable (PostgresTransaction) async throws -> T
    ) async throws -> T {
        try await mapErrors(deadline: deadline) { [client, logger] in
            try await client.withConnection { connection in
                let transaction = PostgresTransaction(connection: connection, logger: logger, database: self)
                try await transaction.execute(begin)
                do {
                    let value = try await body(transaction)
                    try await transaction.execute("COMMIT")
                    return value
                } catch {
                    try? await transaction.execute("ROLLBACK")
                    throw error
                }
            }
        }
    }

    /// Runs `body` on one connection of the pool, outside any transaction.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresTransaction) async throws -> T) async throws -> T {
        try await mapErrors { [client, logger] in
            try await client.withConnection { connection in try await body(PostgresTransaction(connection: connection, logger: logger, database: self)) }
        }
    }

    static func bindings(_ values: [CanonValue]) throws -> PostgresBindings {
        var binds = PostgresBindings(capacity: values.count)
        for value in values { try append(value, to: &binds) }
        return binds
    }

    static func bindings(_ values: [PostgresBind]) throws -> PostgresBindings {
        var binds = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .value(let value): try append(value, to: &binds)
            case .column(let column): binds.append(column)
            }
        }
        return binds
    }

    private static func append(_ value: CanonValue, to binds: inout PostgresBindings) throws {
        switch value {
        case .null: binds.appendNull()
        case .integer(let value): binds.append(value)
        case .real(let value): binds.append(value)
        case .text(let value): binds.append(value)
        case .blob(let value): try binds.append(value)
        }
    }

    /// An error the client raised, with no word from the server: what it says of the work.
    ///
    /// Only a few say nothing was sent (the pool is closed, the statement had too many
    /// parameters to send, the connection never got past its start). Every other one may have
    /// come with the statement or its commit in flight (the connection lost, or an answer the
    /// client could not read or did not expect): its outcome is unknown, so it must not simply
    /// be run again (group commit then fails each unit of the transaction instead of committing
    /// each alone, which could commit one twice).
    static func canonError(code: PSQLError.Code, message: String) -> CanonicalStoreError {
        let lost: [PSQLError.Code] = [.serverClosedConnection, .connectionError, .uncleanShutdown, .clientClosedConnection]
        let neverStarted: [PSQLError.Code] = [
            .sslUnsupported, .failedToAddSSLHandler, .receivedUnencryptedDataAfterSSLRequest, .unsupportedAuthMechanism,
            .authMechanismRequiresPassword, .saslError,
        ]
        if code == .poolClosed || neverStarted.contains(code) { return .unavailable(message) }
        if code == .tooManyParameters { return .storage(message) }
        // The server went away, restarted or never answered.
        if lost.contains(code) { return .unavailable(message, outcomeUnknown: true) }
        return .storage(message, outcomeUnknown: true)
    }

    /// Long operations: migrations (an index built over a large table) and whole-table scans.
    static let longOperation = Duration.seconds(6 * 3600)

    func mapErrors<T: Sendable>(deadline: Duration? = nil, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let timeout = deadline ?? operationTimeout
        do {
            return try await deadlines.run(timeout, body)
        } catch is Deadline.Passed {
            throw CanonicalStoreError.unavailable("PostgreSQL did not answer within \(timeout)", outcomeUnknown: true)
        } catch let error as PSQLError {
            throw Self.canonError(error)
        } catch let error as ConnectionPoolError {
            // No connection could be had (the server has been unreachable for a while, or the
            // pool is shut down): nothing was sent.
            throw CanonicalStoreError.unavailable("PostgreSQL connection pool: \(error)")
        }
    }

    static func canonError(_ error: PSQLError) -> any Error {
        guard let info = error.serverInfo else {
            return canonError(code: error.code, message: "PostgreSQL: \(error.code)\(error.underlying.map { ": \($0)" } ?? "")")
        }
        let message = info[.message] ?? "\(error.code)"
        let state = info[.sqlState] ?? ""
        let table = info[.tableName] ?? ""
        switch state {
        // Serialization failures and deadlocks: other writers; the transaction rolled back.
        case "40001", "40P01":
            return CanonicalStoreError.contended("PostgreSQL \(state): \(message)")
        // Connection exceptions, insufficient resources, operator intervention (shutdown, crash
        // recovery, "cannot connect now", but not a cancelled statement), system errors: the
        // server's trouble; later it can succeed.
        case _ where ["08", "53", "57", "58"].contains(String(state.prefix(2))) && state != "57014":
            return CanonicalStoreError.unavailable("PostgreSQL \(state): \(message)")
        case "23505":
            return CanonicalStoreError.uniqueViolation(table: table, detail: info[.detail] ?? message)
        case PostgresSchemaSQL.requirementState:
            return CanonicalStoreError.requirementFailed(table: table, detail: message)
        case PostgresSchemaSQL.appendOnlyState:
            return CanonicalStoreError.appendOnlyViolation(table: table.isEmpty ? (message.components(separatedBy: " ").last ?? "table") : table)
        case _ where state.hasPrefix("22"):
            // Bad data (a NUL character in text, a number out of range): the client's value, not the store.
            return CanonicalStoreError.invalidValue(message)
        case _ where state.hasPrefix("23"):
            return CanonicalStoreError.constraintViolation("\(message)\(info[.detail].map { " (\($0))" } ?? "")")
        default:
            return CanonicalStoreError.storage("PostgreSQL \(state): \(message)")
        }
    }
}

/// A statement of a fixed shape that each connection prepares on first use (a named prepared
/// statement) and then only binds and executes: the server parses and plans it once per
/// connection instead of on every call. postgres-nio keys prepared statements by a static name
/// and text; here both come from the task-local `text`, set around each call.
struct PreparedSQL: PostgresPreparedStatement {
    typealias Row = PostgresRow

    /// The statement's text and its database's `generation`, set around each call.
    struct Current {
        var text = ""
        var generation = 0
    }

    @TaskLocal static var current = Current()
    /// "cached plan must not change result type": a table changed under a prepared `SELECT *`.
    static let resultTypeChanged = "0A000"

    /// A name per text and generation: the text's FNV-1a hash and length.
    static var name: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in current.text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return "canon_\(String(hash, radix: 36))_\(current.text.utf8.count)_\(current.generation)"
    }

    static var sql: String { current.text }

    /// Whether `error` may have come from preparing the statement rather than running it.
    /// postgres-nio remembers a failed preparation for the connection and answers every later
    /// call of that name with the same error, so after such an error the database moves to a
    /// new generation of names and the next call prepares afresh. Bad data, constraints, Canon's
    /// own checks and serialization failures only come from running; an error without a server
    /// state is the connection's, which is gone with its statements.
    static func mayHaveFailedPreparation(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return !["22", "23", "CA", "40"].contains(String(state.prefix(2)))
    }

    /// Runs `body` (one prepared call of `text`) under `database`'s current generation, and
    /// moves the database to the next one when the call fails as `mayHaveFailedPreparation` says.
    static func run<T>(_ text: String, on database: PostgresDatabase, _ body: () async throws -> T) async throws -> T {
        let generation = database.preparedGeneration.load(ordering: .relaxed)
        do {
            return try await $current.withValue(Current(text: text, generation: generation)) { try await body() }
        } catch let error as PSQLError where mayHaveFailedPreparation(error) {
            // Once for all the calls that failed in this generation.
            _ = database.preparedGeneration.compareExchange(expected: generation, desired: generation + 1, ordering: .relaxed)
            throw error
        }
    }

    let bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

/// One connection inside `PostgresDatabase.transaction` (or `withConnection`).
struct PostgresTransaction: Sendable {
    let connection: PostgresConnection
    let logger: Logger
    /// The pool it came from (which shapes of statement to prepare, `PostgresDatabase.preparing`).
    let database: PostgresDatabase

    /// Runs `sql` with `binds` and collects its rows; `prepared` as in `PostgresDatabase.rows`.
    @discardableResult
    func rows(_ sql: String, _ binds: [CanonValue] = [], prepared: Bool = false) async throws -> [PostgresRow] {
        try await rows(sql, binding: try PostgresDatabase.bindings(binds), prepared: prepared)
    }

    @discardableResult
    func rows(_ sql: String, _ binds: [PostgresBind], prepared: Bool = false) async throws -> [PostgresRow] {
        try await rows(sql, binding: try PostgresDatabase.bindings(binds), prepared: prepared)
    }

    private func rows(_ sql: String, binding bindings: PostgresBindings, prepared: Bool) async throws -> [PostgresRow] {
        if prepared {
            return try await PreparedSQL.run(sql, on: database) {
                try await connection.execute(PreparedSQL(bindings: bindings), logger: logger).reduce(into: []) { $0.append($1) }
            }
        }
        return try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger).collect()
    }

    func execute(_ sql: String, _ binds: [CanonValue] = []) async throws {
        try await connection.query(PostgresQuery(unsafeSQL: sql, binds: try PostgresDatabase.bindings(binds)), logger: logger).collect()
    }

    func execute(_ sql: String, _ binds: [PostgresBind]) async throws {
        try await connection.query(PostgresQuery(unsafeSQL: sql, binds: try PostgresDatabase.bindings(binds)), logger: logger).collect()
    }
}

/// A `postgres://user[:password]@host[:port]/database` address.
public struct PostgresURL: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String

    /// - Throws: `PostgresURLError` naming what is wrong with `text`.
    public init(_ text: String) throws(PostgresURLError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql"
        else { throw PostgresURLError(text: text, reason: "expected postgres://user@host:port/database") }
        guard let host = components.host, !host.isEmpty else { throw PostgresURLError(text: text, reason: "no host") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw PostgresURLError(text: text, reason: "no database name after the host") }
        self.host = host
        self.port = components.port ?? 5432
        self.user = components.user ?? "postgres"
        self.password = components.password
        self.database = database
    }

    public init(host: String, port: Int, user: String, password: String? = nil, database: String) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// The same server, another database.
    public func database(_ name: String) -> PostgresURL {
        var url = self
        url.database = name
        return url
    }

    /// The address without the password.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }
}

extension PostgresURL {
    /// One connection of its own, outside any pool: for what must stay on one session (a read
    /// snapshot, a lock held for a whole operation). The caller closes it.
    /// - Parameter settings: server settings the session starts with.
    func connectAlone(logger: Logger, id: Int = 1, settings: [(String, String)] = []) async throws -> PostgresConnection {
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: .disable)
        if !settings.isEmpty {
            configuration.options.additionalStartupParameters = [("options", settings.map { "-c \($0.0)=\($0.1)" }.joined(separator: " "))]
        }
        do {
            return try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
        } catch let error as PSQLError {
            throw PostgresDatabase.canonError(error)
        }
    }
}

public struct PostgresURLError: Error, Hashable, Sendable, CustomStringConvertible {
    public let text: String
    public let reason: String
    public var description: String { "invalid database address \(text): \(reason)" }
}

extension PostgresCell {
    /// The cell as a Canon value: integers of any width, floats, text and bytes; NULL as `.null`.
    func canonValue() throws -> CanonValue {
        guard bytes != nil else { return .null }
        switch dataType {
        case .int2, .int4, .int8, .oid: return .integer(try decode(Int64.self))
        case .float4, .float8: return .real(try decode(Double.self))
        case .bytea: return .blob(try decode(Data.self))
        case .bool: return .integer(try decode(Bool.self) ? 1 : 0)
        default: return .text(try decode(String.self))
        }
    }
}

/// Runs operations with deadlines, without waiting for one past its deadline: a caller whose
/// operation hangs (see `PostgresDatabase.operationTimeout`) gets `Passed`, and the operation is
/// cancelled and left to end on its own. One watch task checks every pending deadline each
/// `tick`, so an operation costs no timer of its own.
final class Deadline: Sendable {
    struct Passed: Error {}

    private struct Pending {
        var deadline: ContinuousClock.Instant
        var expire: @Sendable () -> Void
    }

    private struct State {
        var next: UInt64 = 0
        var pending: [UInt64: Pending] = [:]
    }

    private final class Shared: Sendable {
        let state = Mutex(State())
    }

    private let shared = Shared()
    private let watching: Task<Void, Never>

    init(tick: Duration = .milliseconds(500)) {
        let shared = self.shared
        watching = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: tick)
                let now = ContinuousClock.now
                let expired = shared.state.withLock { state -> [@Sendable () -> Void] in
                    let due = state.pending.filter { $0.value.deadline <= now }
                    for key in due.keys { state.pending[key] = nil }
                    return due.values.map(\.expire)
                }
                for expire in expired { expire() }
            }
        }
    }

    deinit { watching.cancel() }

    func run<T: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let outcome = Outcome<T>()
        let shared = self.shared
        let key = shared.state.withLock { state -> UInt64 in
            state.next += 1
            return state.next
        }
        defer { _ = shared.state.withLock { $0.pending.removeValue(forKey: key) } }
        // A caller cancelled while it waits stops waiting at once, as at a deadline: the
        // operation is cancelled and left to end on its own (postgres-nio may never end a request
        // it lost, and a DDL statement's deadline is hours), so a stopping process or a test past
        // its time limit does not hang on it. Its outcome is unknown to the caller
        // (`CancellationError` is not a rollback to group commit). A caller that was cancelled
        // before it asked (an agent writing its last heartbeat as it stops) still waits for the
        // answer, as before.
        let cancelledBefore = Task.isCancelled
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // Cancelled in the instant before: resumed already, and nothing is started.
                guard outcome.set(continuation) else { return }
                let work = Task {
                    do { outcome.finish(.success(try await operation())) } catch { outcome.finish(.failure(error)) }
                }
                outcome.attach(work)
                shared.state.withLock { state in
                    state.pending[key] = Pending(deadline: ContinuousClock.now + timeout) {
                        if outcome.finish(.failure(Passed())) { work.cancel() }
                    }
                }
            }
        } onCancel: {
            if !cancelledBefore { outcome.finish(.failure(CancellationError())) }
            outcome.cancelWork()
        }
    }

    /// Resumes the caller once: with the operation's result or with the deadline, whichever comes first.
    final class Outcome<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var done = false
            /// The result decided before the caller's continuation was there.
            var early: Result<T, any Error>?
            var work: Task<Void, Never>?
            var workCancelled = false
        }
        private let state = Mutex(State())

        /// Keeps the caller's continuation; returns false (and resumes it) when the result was
        /// decided already.
        func set(_ continuation: CheckedContinuation<T, any Error>) -> Bool {
            let early: Result<T, any Error>?? = state.withLock { state in
                guard !state.done else { return .some(state.early) }
                state.continuation = continuation
                return .none
            }
            guard let early else { return true }
            continuation.resume(with: early ?? .failure(CancellationError()))
            return false
        }

        func attach(_ work: Task<Void, Never>) {
            let cancelled = state.withLock { state in
                state.work = work
                return state.workCancelled
            }
            if cancelled { work.cancel() }
        }

        func cancelWork() {
            state.withLock { state in
                state.workCancelled = true
                return state.work
            }?.cancel()
        }

        /// Returns whether this call decided the result (resumed the caller, or will as soon as
        /// its continuation is there).
        @discardableResult
        func finish(_ result: Result<T, any Error>) -> Bool {
            let (decided, continuation): (Bool, CheckedContinuation<T, any Error>?) = state.withLock { state in
                guard !state.done else { return (false, nil) }
                state.done = true
                let continuation = state.continuation
                state.continuation = nil
                if continuation == nil { state.early = result }
                return (true, continuation)
            }
            continuation?.resume(with: result)
            return decided
        }
    }
}
