import Canon
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Projection leases held as PostgreSQL session advisory locks, on one connection of their own.
///
/// A lock lives exactly as long as the connection that took it:
/// - When the process holding a lease dies (even by SIGKILL), the server sees its connection close
///   and releases the lock at once; the next process that asks takes it over.
/// - When the holder's machine vanishes without closing anything (power, network), the server
///   ends the idle session after `idleTimeout` (`idle_session_timeout`, set at connect), which
///   releases the lock; the holder pings far more often than that while it lives.
/// - A lease is bound to the connection that took it: a new connection (after the old one broke)
///   holds nothing until it takes the lock again.
/// - A check that does not answer within `checkTimeout` counts as a lost lease (the connection is
///   closed), so a blackholed holder stops its agent instead of waiting on TCP for minutes.
///
/// The checkpoint's compare-and-set covers the moments in between: two agents can never apply an
/// event twice.
public actor PostgresLeases: ProjectionLeases {
    private let url: PostgresURL
    private let logger: Logger
    private let idleTimeout: Duration
    private let checkTimeout: Duration
    private var connection: PostgresConnection?
    private var opening: Task<PostgresConnection, any Error>?
    /// Each held lease, with the connection that holds its lock.
    private var held: [String: ObjectIdentifier] = [:]
    private var closed = false
    private var nextID = 1

    public init(
        url: PostgresURL, idleTimeout: Duration = .seconds(10), checkTimeout: Duration = .seconds(3),
        logger: Logger = Logger(label: "canon.leases")
    ) {
        self.url = url
        self.idleTimeout = idleTimeout
        self.checkTimeout = checkTimeout
        self.logger = logger
    }

    /// The advisory-lock key of projection `name`: FNV-1a of its name, in Canon's key space.
    static func key(_ name: String) -> Int64 { advisoryKey("canon.lease:\(name)") }

    /// An advisory-lock key for `text`: its FNV-1a hash.
    static func advisoryKey(_ text: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int64(bitPattern: hash)
    }

    public func acquire(_ name: String) async -> Bool {
        if held[name] != nil { return await stillHeld(name) }
        do {
            let connection = try await open()
            let key = Self.key(name), logger = self.logger
            let taken = try await bounded(connection) {
                try await connection.query(PostgresQuery(unsafeSQL: "SELECT pg_try_advisory_lock(\(key))"), logger: logger).collect().first?.decode(Bool.self) ?? false
            }
            // The caller stopped while it asked (`bounded` waits for the answer even so): a lock
            // taken for it is let go here, by exactly the one lock this query took. Taken again
            // later it would stack, and one release would keep it.
            if taken, Task.isCancelled {
                _ = try? await bounded(connection) {
                    try await connection.query(PostgresQuery(unsafeSQL: "SELECT pg_advisory_unlock(\(key))"), logger: logger).collect()
                }
                return false
            }
            // Only if the connection that took it is still the current one (the actor may have
            // dropped it while the query ran).
            guard taken, self.connection === connection, !connection.isClosed else { return false }
            held[name] = ObjectIdentifier(connection)
            return true
        } catch {
            // A caller that is stopping learns nothing of the connection: the other leases stay.
            if Task.isCancelled { return false }
            logger.warning("cannot ask for a projection lease", metadata: ["projection.name": "\(name)", "error": "\(error)"])
            drop()
            return false
        }
    }

    public func stillHeld(_ name: String) async -> Bool {
        guard let holder = held[name], let connection, ObjectIdentifier(connection) == holder, !connection.isClosed else {
            held[name] = nil
            return false
        }
        do {
            let logger = self.logger
            _ = try await bounded(connection) { try await connection.query("SELECT 1", logger: logger).collect() }
            return held[name] == holder
        } catch {
            // A cancelled check (its agent is stopping) says nothing against the connection:
            // dropping it would release every other lease of this process, whose agents would
            // run on until their next check while another process takes their leases.
            if Task.isCancelled { return false }
            logger.warning("lease connection lost or not answering", metadata: ["error": "\(error)"])
            if self.connection === connection { drop() }
            return false
        }
    }

    public func release(_ name: String) async {
        guard let holder = held.removeValue(forKey: name), let connection, ObjectIdentifier(connection) == holder, !connection.isClosed else { return }
        let key = Self.key(name), logger = self.logger
        _ = try? await bounded(connection) {
            try await connection.query(PostgresQuery(unsafeSQL: "SELECT pg_advisory_unlock(\(key))"), logger: logger).collect()
        }
    }

    /// Releases every lease by closing the connection (at shutdown). No connection opens after.
    public func close() async {
        closed = true
        held.removeAll()
        if let opening, let late = try? await opening.value, late !== connection { try? await late.close() }
        try? await connection?.close()
        connection = nil
    }

    /// The lease connection, opened once even when several agents ask at the same moment (the
    /// actor is re-entered while it connects).
    private func open() async throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        guard !closed else { throw CanonicalStoreError.storage("the lease connection is closed") }
        if let opening { return try await opening.value }
        // The server ends a session idle this long (the holder's machine is gone), freeing its locks.
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: .disable)
        configuration.options.additionalStartupParameters = [("options", "-c idle_session_timeout=\(Int(idleTimeout.components.seconds * 1000))")]
        nextID += 1
        let id = nextID, logger = self.logger
        let opening = Task { try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger) }
        self.opening = opening
        defer { self.opening = nil }
        let connection = try await opening.value
        if closed {
            try? await connection.close()
            throw CanonicalStoreError.storage("the lease connection is closed")
        }
        // Locks of an earlier connection are gone with it.
        held.removeAll()
        self.connection = connection
        return connection
    }

    private final class Expired: Sendable {
        let flag = Mutex(false)
    }

    /// `body` on `connection`, or a timeout error once `checkTimeout` passes.
    ///
    /// The body runs in a task of its own, which the caller's cancellation does not reach:
    /// postgres-nio's row stream, cancelled mid-answer, drops the answer (a lock taken unseen)
    /// and can leave the connection waiting for good. The caller waits for the answer instead;
    /// at the timeout the connection is closed, which ends the body (and lets every lock go).
    private func bounded<T: Sendable>(_ connection: PostgresConnection, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let timeout = checkTimeout
        let work = Task { try await body() }
        let expired = Expired()
        let timer = Task {
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            expired.flag.withLock { $0 = true }
            try? await connection.close()
        }
        defer { timer.cancel() }
        do {
            return try await work.value
        } catch {
            if expired.flag.withLock({ $0 }) { throw CanonicalStoreError.storage("the lease connection did not answer within \(timeout)") }
            throw error
        }
    }

    /// Every lock went with the connection.
    private func drop() {
        held.removeAll()
        if let connection { Task { try? await connection.close() } }
        connection = nil
    }
}
