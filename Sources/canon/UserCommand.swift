import ArgumentParser
import Canon
import CasePlatform
import Foundation

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage the platform's principals.", subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a user (a user.registered event in the outbox).")

        @OptionGroup var data: DataOptions
        @Option(name: .long, help: "Lower-case id: letters, digits, dashes.") var id: String
        @Option(name: .long, help: "Display name.") var name: String
        @Option(name: .long, help: "investigator, supervisor, analyst, legal or admin.") var role: String
        @Option(name: .long, help: "Team (required for investigator, supervisor, analyst).") var team: String?
        @Option(name: .long, help: "Clearance 1 to 3.") var clearance: Int = 1

        func validate() throws {
            guard let role = Role(rawValue: role) else {
                throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", ")); got \(role)")
            }
            // The whole decision, before any store is opened (or a data directory created).
            do {
                _ = try CaseDecisions.registerUser(user(role), at: Date(), metadata: .system)
            } catch {
                throw ValidationError(error.message)
            }
        }

        private func user(_ role: Role) -> User { User(id: id, displayName: name, role: role, team: team, clearance: clearance) }

        func run() async throws {
            let store = try await data.openStores(create: true, semantic: false).canonical
            let user = user(Role(rawValue: role)!)
            do {
                let outcome = try await CaseCommands(store: store).registerUser(user)
                say("registered \(id) at position \(outcome.position)")
                say("token: \(try await AccessTokens.load(from: store).token(for: id))")
            } catch let error as DomainError {
                throw ValidationError(error.message)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            let store = try await data.openStores(create: false, semantic: false).canonical
            for user in try await CaseQueries(store: store).users() {
                say("\(user.id)\t\(user.role.rawValue)\t\(user.team ?? "-")\tclearance \(user.clearance)\t\(user.displayName)")
            }
        }
    }
}
