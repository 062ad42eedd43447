import ArgumentParser
import CasePlatform

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a bearer token for a user.")

    @OptionGroup var data: DataOptions

    @Option(name: .long, help: "The user's id, e.g. ivan.")
    var user: String

    @Option(name: .long, help: "Hours until the token expires.")
    var hours: Int = 24

    func validate() throws {
        guard (1...24 * 366).contains(hours) else { throw ValidationError("--hours must be between 1 and 8784; got \(hours)") }
    }

    func run() async throws {
        let store = try await data.openStores(create: false, semantic: false).canonical
        let queries = CaseQueries(store: store)
        guard try await queries.user(user) != nil else {
            let known = try await queries.users().map(\.id).prefix(12).joined(separator: ", ")
            throw ValidationError("no user \"\(user)\" in \(data.directory.url.path); known users include: \(known.isEmpty ? "none" : known)")
        }
        say(try await AccessTokens.load(from: store).token(for: user, validFor: .seconds(hours * 3600)))
    }
}
