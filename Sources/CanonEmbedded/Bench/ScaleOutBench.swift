import Canon
import CanonPostgres
import CasePlatform
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization

/// Sustained writes through the HTTP API of a `canon serve --database` process while `canon
/// worker` processes apply them, and for every write the time from its answer to its being
/// searchable (the worker's checkpoint notification for case search).
public struct ScaleOutBench: Sendable {
    public let database: PostgresURL
    /// The server's address, e.g. `http://127.0.0.1:8080`.
    public let server: String

    public init(database: PostgresURL, server: String) {
        self.database = database
        self.server = server
    }

    public struct Result: Sendable {
        public var writes: Int
        public var failures: Int
        public var seconds: Double
        public var writesPerSecond: Double { Double(writes) / seconds }
        public var latency: EndToEndBench.LatencyResult
    }

    static let investigator = User(id: "bench-ivan", displayName: "Bench Ivan", role: .investigator, team: "financial-crime", clearance: 2)

    /// `clients` loops, each opening its own case and moving it round the status cycle
    /// (investigation → enforcement → closed → investigation …), one request at a time, for
    /// `duration`.
    public func run(clients: Int, duration: Duration, progress: @escaping @Sendable (String) -> Void) async throws -> Result {
        let canonical = try await PostgresCanonicalStore(url: database, migrations: CasePlatformSchema.migrations, configuration: .init(maximumConnections: 2))
        let commands = CaseCommands(store: canonical)
        if try await CaseQueries(store: canonical).users().contains(where: { $0.id == Self.investigator.id }) == false {
            _ = try await commands.registerUser(Self.investigator)
        }
        let token = try await AccessTokens.load(from: canonical).token(for: Self.investigator.id)
        // Searchable = the worker applying case search has moved its checkpoint past the write.
        let searchable = PositionWaiters()
        let ready = PositionWaiters()
        let listener = PostgresNotifications(
            url: database, commits: PositionWaiters(), listensForCommits: false,
            applied: { identity, position in if identity.name == "case-search" { searchable.advance(to: position) } },
            listening: { ready.advance(to: OutboxPosition(1)) })
        let listening = Task { try await listener.run() }
        defer { listening.cancel() }
        // A write applied before the listener is in place would never be seen as searchable.
        guard await ready.wait(until: OutboxPosition(1), timeout: .seconds(30)) else {
            throw CanonicalStoreError.unavailable("no notification connection to \(database) within 30 s")
        }
        let histogram = LockedHistogram()
        let counts = Tally()
        let clock = ContinuousClock()
        let start = clock.now
        let end = start + duration
        let server = self.server
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<clients {
                group.addTask {
                    let session = URLSession(configuration: .ephemeral)
                    var id: String?
                    var cycle = ["triage", "investigation"]
                    var random = SeededGenerator(seed: UInt64(client + 1))
                    while clock.now < end {
                        let request: (String, String)
                        if let id {
                            if cycle.isEmpty { cycle = ["enforcement", "closed", "investigation"] }
                            request = ("/v1/cases/\(id)/transitions", #"{"to":"\#(cycle.removeFirst())","reason":"bench"}"#)
                        } else {
                            let title = "\(random.pick(BenchWords.names)) \(random.pick(BenchWords.issues))"
                            request = ("/v1/cases", #"{"title":"\#(title)","summary":"bench","sector":"energy","region":"north","priority":"low"}"#)
                        }
                        let answer = try await Self.post(session, server + request.0, token: token, json: request.1)
                        let answered = clock.now
                        guard let position = answer.position else {
                            counts.state.withLock { $0.failures += 1 }
                            continue
                        }
                        if id == nil { id = answer.id }
                        let written = counts.state.withLock { counts -> Int in
                            counts.writes += 1
                            return counts.writes
                        }
                        if written % 1000 == 0 { progress("scale-out: \(written) writes") }
                        if await searchable.wait(until: OutboxPosition(position), timeout: .seconds(30)) {
                            histogram.record(clock.now - answered)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = (clock.now - start).seconds
        let (writes, failures) = counts.state.withLock { ($0.writes, $0.failures) }
        return Result(
            writes: writes, failures: failures, seconds: elapsed,
            latency: histogram.result(writes: writes, targetRate: 0, achievedRate: Double(writes) / elapsed))
    }

    private static func post(_ session: URLSession, _ url: String, token: String, json: String) async throws -> (position: Int64?, id: String?) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(json.utf8)
        let (data, response) = try await session.data(for: request)
        guard let status = (response as? HTTPURLResponse)?.statusCode, (200..<300).contains(status),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return (nil, nil) }
        return ((object["position"] as? NSNumber)?.int64Value, object["id"] as? String)
    }
}

/// Writes and failures counted by concurrent clients.
final class Tally: Sendable {
    let state = Mutex((writes: 0, failures: 0))
}
