import Canon
import Foundation
import Logging
import PostgresNIO

/// Projection leases held as PostgreSQL session advisory locks, on one connection of their own.
///
/// A lock lives exactly as long as the connection that took it: when the process holding a
/// lease dies (even by SIGKILL), the server sees its connection close and releases the lock at
/// once, and the next process that asks takes it over. A holder that loses its connection learns
/// it at its next check and stops its agent; the checkpoint's compare-and-set covers the moment
/// in between.
public actor PostgresLeases: ProjectionLeases {
    private let url: PostgresURL
    private let logger: Logger
    private var connection: PostgresConnection?
    private var opening: Task<PostgresConnection, any Error>?
    private var held: Set<String> = []
    private var nextID = 1

    public init(url: PostgresURL, logger: Logger = Logger(label: "canon.leases")) {
        self.url = url
        self.logger = logger
    }

    /// The advisory-lock key of projection `name`: FNV-1a of its name, in Canon's key space.
    static func key(_ name: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "canon.lease:\(name)".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int64(bitPattern: hash)
    }

    public func acquire(_ name: String) async -> Bool {
        if held.contains(name) { return await stillHeld(name) }
        do {
            let connection = try await open()
            let rows = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT pg_try_advisory_lock(\(Self.key(name)))"), logger: logger
            ).collect()
            let taken = try rows.first?.decode(Bool.self) ?? false
            if taken { held.insert(name) }
            return taken
        } catch {
            logger.warning("cannot ask for a projection lease", metadata: ["projection.name": "\(name)", "error": "\(error)"])
            drop()
            return false
        }
    }

    public func stillHeld(_ name: String) async -> Bool {
        guard held.contains(name), let connection, !connection.isClosed else {
            if !held.isEmpty, connection?.isClosed ?? true { drop() }
            return false
        }
        do {
            try await connection.query("SELECT 1", logger: logger).collect()
            return true
        } catch {
            logger.warning("lease connection lost", metadata: ["error": "\(error)"])
            drop()
            return false
        }
    }

    public func release(_ name: String) async {
        guard held.remove(name) != nil, let connection, !connection.isClosed else { return }
        _ = try? await connection.query(PostgresQuery(unsafeSQL: "SELECT pg_advisory_unlock(\(Self.key(name)))"), logger: logger).collect()
    }

    /// Releases every lease by closing the connection (at shutdown).
    public func close() async {
        held.removeAll()
        try? await connection?.close()
        connection = nil
    }

    /// The lease connection, opened once even when several agents ask at the same moment (the
    /// actor is re-entered while it connects).
    private func open() async throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        if let opening { return try await opening.value }
        let configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: .disable)
        nextID += 1
        let id = nextID, logger = self.logger
        let opening = Task { try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger) }
        self.opening = opening
        defer { self.opening = nil }
        let connection = try await opening.value
        self.connection = connection
        return connection
    }

    /// Every lock went with the connection.
    private func drop() {
        held.removeAll()
        if let connection { Task { try? await connection.close() } }
        connection = nil
    }
}
