import ArgumentParser
import Canon
import Foundation

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show each declared store's health, and each projection: version, position, lag, state, heartbeat age, dead letters.",
        discussion: "Reads the stores' files, so it works while `canon serve` or `canon demo` runs in another process.")

    @OptionGroup var data: DataOptions

    @Option(name: .long, help: "text or json.")
    var format: OutputFormat = .text

    @Option(name: .long, help: "Seconds without a heartbeat after which an agent counts as stalled.")
    var stallAfter: Int = 5

    func validate() throws {
        guard (1...86_400).contains(stallAfter) else { throw ValidationError("--stall-after must be between 1 and 86400 seconds; got \(stallAfter)") }
    }

    func run() async throws {
        let platform = try await data.openStores(create: false)
        var statuses: [ProjectionStatus] = []
        for store in platform.projections {
            statuses.append(try await ProjectionStatus.read(store, source: platform.canonical, stallAfter: .seconds(stallAfter)))
        }
        let head = try await platform.canonical.headPosition()
        // Health is judged against each store's freshness contract in the portfolio.
        let drift = await NewestDriftChecks.read(platform.projections)
        let stores = PortfolioStoreStatus.all(
            in: platform.portfolio, projections: statuses, canonicalHead: head, unavailable: platform.unavailable, drift: drift, scaledOut: platform.scaledOut)
        switch format {
        case .json:
            try sayJSON([
                "head_position": AnyEncodable(head), "stores": AnyEncodable(stores), "projections": AnyEncodable(statuses),
            ])
        case .text:
            say("portfolio \(platform.portfolio.name): \(stores.filter { $0.status == "live" }.count) live store(s), \(stores.filter { $0.status == "planned" }.count) planned")
            say(pad("STORE", 20) + pad("ROLE", 12) + pad("STATUS", 9) + pad("HEALTH", 10) + pad("LAG MS", 9) + pad("P95", 8) + pad("ALERT AFTER", 12) + "DRIFT")
            for store in stores {
                say(pad(store.name, 20) + pad(store.role, 12) + pad(store.status, 9) + pad(store.health.rawValue, 10)
                    + pad(store.freshness.map { "\($0.lagMilliseconds)" } ?? "-", 9)
                    + pad(store.normalP95Milliseconds.map { "\($0)ms" } ?? "-", 8) + pad(store.alertAfterMilliseconds.map { "\($0)ms" } ?? "-", 12)
                    + (store.drift.map { "\($0.differences) (\($0.mode.rawValue) at \($0.position), \(Self.age($0.checkedAt)) ago)" } ?? "never checked"))
            }
            say("")
            say("outbox head: \(head)")
            say(pad("PROJECTION", 16) + pad("VER", 5) + pad("POSITION", 10) + pad("LAG", 8) + pad("LAG MS", 9) + pad("STATE", 12) + pad("HEARTBEAT", 11) + "DEAD LETTERS")
            for status in statuses {
                let heartbeat = status.heartbeatAgeMilliseconds.map { "\($0 / 1000)s ago" } ?? "never"
                say(pad(status.name, 16) + pad("\(status.version)", 5) + pad("\(status.position)", 10) + pad("\(status.lagEvents)", 8)
                    + pad("\(status.lagMilliseconds)", 9) + pad(status.state, 12) + pad(heartbeat, 11) + "\(status.deadLetters)")
                if let error = status.lastError { say("    last error: \(error)") }
            }
        }
    }

    static func age(_ date: Date) -> String {
        let seconds = Int(max(0, Date().timeIntervalSince(date)))
        return seconds < 120 ? "\(seconds)s" : seconds < 7_200 ? "\(seconds / 60)m" : "\(seconds / 3_600)h"
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}

struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}
