import Canon
import Foundation
import Logging
import PostgresNIO

extension PostgresCanonicalStore: SnapshotReadable {
    /// A `REPEATABLE READ` transaction, read-only, on a connection of its own: every read in it
    /// sees the database as of its first statement, however long the rebuild reading it takes,
    /// while writers go on. Its head is the last outbox position that snapshot holds: commits
    /// take their positions in commit order (under the outbox head's lock), so the state it
    /// sees is exactly the outbox up to there folded.
    ///
    /// The transaction ends (and the connection closes) when the snapshot is released.
    public func snapshot() async throws -> any CanonicalSnapshot {
        let logger = database.logger
        let connection = try await database.url.connectAlone(logger: logger)
        do {
            _ = try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger).collect()
            let rows = try await connection.query("SELECT MAX(position) FROM canon_outbox", logger: logger).collect()
            let head = OutboxPosition(try rows.first?.decode(Int64?.self) ?? 0)
            return PostgresCanonicalSnapshot(connection: connection, head: head, tables: tables, logger: logger)
        } catch {
            try? await connection.close()
            throw (error as? PSQLError).map(PostgresDatabase.canonError) ?? error
        }
    }
}

final class PostgresCanonicalSnapshot: CanonicalSnapshot {
    let head: OutboxPosition
    private let connection: PostgresConnection
    private let tables: [String: TableSchema]
    private let logger: Logger

    init(connection: PostgresConnection, head: OutboxPosition, tables: [String: TableSchema], logger: Logger) {
        self.connection = connection
        self.head = head
        self.tables = tables
        self.logger = logger
    }

    deinit {
        // Closing ends the transaction: nothing was written in it.
        let connection = self.connection
        Task { try? await connection.close() }
    }

    /// Reads run one after the other on the snapshot's connection (the connection queues them).
    func fetchAll(_ query: RowQuery) async throws -> [Row] {
        let (sql, binds) = try PostgresSchemaSQL.select(query, tables: tables)
        do {
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: try PostgresDatabase.bindings(binds)), logger: logger).collect()
            return try rows.map(PostgresCanonicalStore.row)
        } catch let error as PSQLError {
            throw PostgresDatabase.canonError(error)
        }
    }
}
