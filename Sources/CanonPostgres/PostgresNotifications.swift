import Canon
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Listens on one connection of its own for the engine's notifications, so processes learn of
/// other processes' work at once instead of at their next poll:
/// - `canon_outbox` (a commit's last position) wakes this process's agents;
/// - `canon_priority` (the same, for a commit that appended a priority event) wakes its
///   priority path;
/// - `canon_applied` (`name:version:position`) lets readers here that wait for a position
///   another process's agent applied go on;
/// - `canon_control` (`resume:name:version`) carries operators' requests to the process that
///   runs the agent (`PostgresControl` sends them), and (`switch:name:version`) tells every
///   process that a blue-green rebuild switched a projection's live version
///   (`PostgresProjectionVersions`).
///
/// Polling stays as the fallback: a lost connection is reopened with backoff, and on every
/// (re)connect the agents are woken once, since notifications sent meanwhile are gone.
public struct PostgresNotifications: Service {
    public let url: PostgresURL
    private let commits: PositionWaiters
    private let priorityCommits: PositionWaiters?
    private let applied: @Sendable (ProjectionIdentity, OutboxPosition) -> Void
    private let resume: @Sendable (ProjectionIdentity) -> Void
    private let switched: @Sendable () -> Void
    private let listening: @Sendable () -> Void
    private let listensForCommits: Bool
    private let logger: Logger

    /// - Parameter listensForCommits: listen on `canon_outbox` and `canon_priority`; a process
    ///   that runs no agents does not (each listener is one more backend PostgreSQL signals, and
    ///   one more process woken, on every commit).
    /// - Parameter listening: called on every (re)connect once `canon_applied` is listened to:
    ///   from then on no applied position is missed.
    public init(
        url: PostgresURL, commits: PositionWaiters, priorityCommits: PositionWaiters? = nil, listensForCommits: Bool = true,
        applied: @escaping @Sendable (ProjectionIdentity, OutboxPosition) -> Void,
        resume: @escaping @Sendable (ProjectionIdentity) -> Void = { _ in }, switched: @escaping @Sendable () -> Void = {},
        listening: @escaping @Sendable () -> Void = {}, logger: Logger = Logger(label: "canon.notifications")
    ) {
        self.url = url
        self.commits = commits
        self.priorityCommits = priorityCommits
        self.applied = applied
        self.resume = resume
        self.switched = switched
        self.listening = listening
        self.listensForCommits = listensForCommits
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown { await listen() }
    }

    private func listen() async {
        var backoff = Duration.milliseconds(100)
        var id = 0
        while !Task.isCancelled {
            do {
                id += 1
                let connection = try await PostgresConnection.connect(
                    configuration: .init(host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: .disable),
                    id: id, logger: logger)
                backoff = .milliseconds(100)
                commits.kick()
                priorityCommits?.kick()
                let commits = self.commits
                let priorityCommits = self.priorityCommits
                let applied = self.applied
                let resume = self.resume
                let switched = self.switched
                let listening = self.listening
                let listensForCommits = self.listensForCommits
                do {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        if listensForCommits {
                            group.addTask {
                                try await connection.listen(on: PostgresCanonicalStore.notificationChannel) { notifications in
                                    for try await notification in notifications {
                                        if let position = Int64(notification.payload) { commits.advance(to: OutboxPosition(position)) }
                                    }
                                }
                            }
                        }
                        if listensForCommits, let priorityCommits {
                            group.addTask {
                                try await connection.listen(on: PostgresCanonicalStore.priorityChannel) { notifications in
                                    for try await notification in notifications {
                                        if let position = Int64(notification.payload) { priorityCommits.advance(to: OutboxPosition(position)) }
                                    }
                                }
                            }
                        }
                        group.addTask {
                            try await connection.listen(on: PostgresProjectionDatabase.appliedChannel) { notifications in
                                listening()
                                for try await notification in notifications {
                                    guard let (identity, position) = Self.parseApplied(notification.payload) else { continue }
                                    applied(identity, position)
                                }
                            }
                        }
                        group.addTask {
                            try await connection.listen(on: PostgresControl.channel) { notifications in
                                // A switch announced while the connection was down is found by
                                // reading the versions, once no later one can be missed.
                                switched()
                                for try await notification in notifications {
                                    if notification.payload.hasPrefix(PostgresProjectionVersions.switchPrefix) {
                                        switched()
                                    } else if let identity = Self.parseResume(notification.payload) {
                                        resume(identity)
                                    }
                                }
                            }
                        }
                        defer { group.cancelAll() }
                        try await group.next()
                    }
                } catch {
                    // Closed on every path: a connection must not be dropped open.
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
            } catch {
                if Task.isCancelled { return }
                logger.warning("notification connection lost; polling until it is back", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(5))
        }
    }
}

/// Sends operators' requests to the process that runs an agent, over `canon_control`: every
/// process LISTENs there (`PostgresNotifications`), and the one that holds the projection's lease
/// acts on it.
extension PostgresNotifications {
    /// `name:version:position` of the `canon_applied` channel. The numbers are read from the
    /// right, so a name may hold colons.
    static func parseApplied(_ payload: String) -> (ProjectionIdentity, OutboxPosition)? {
        var parts = payload.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 3, let position = Int64(parts.removeLast()), let version = Int(parts.removeLast()) else { return nil }
        let name = parts.joined(separator: ":")
        guard !name.isEmpty else { return nil }
        return (ProjectionIdentity(name: name, version: version), OutboxPosition(position))
    }

    /// `resume:name:version` of the `canon_control` channel; the name may hold colons.
    static func parseResume(_ payload: String) -> ProjectionIdentity? {
        guard payload.hasPrefix("resume:") else { return nil }
        var parts = payload.dropFirst("resume:".count).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 2, let version = Int(parts.removeLast()) else { return nil }
        let name = parts.joined(separator: ":")
        guard !name.isEmpty else { return nil }
        return ProjectionIdentity(name: name, version: version)
    }
}

public struct PostgresControl: ProjectionControl {
    public static let channel = "canon_control"
    let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    public func requestResume(_ identity: ProjectionIdentity) async throws {
        try await database.rows("SELECT pg_notify($1, $2)", [.text(Self.channel), .text("resume:\(identity.name):\(identity.version)")])
    }
}
