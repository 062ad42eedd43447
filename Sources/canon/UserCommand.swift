import ArgumentParser
import Canon
import CasePlatform
import Foundation

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage the platform's principals.", subcommands: [Add.self, Update.self, Remove.self, List.self])

    /// Runs a user command, a refusal (`DomainError`) printed as a usage error with its reason.
    static func refusals<T>(_ command: () async throws -> T) async throws -> T {
        do {
            return try await command()
        } catch let error as DomainError {
            throw ValidationError(error.message)
        }
    }

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
            let outcome = try await UserCommand.refusals { try await CaseCommands(store: store).registerUser(user) }
            say("registered \(id) at position \(outcome.position)")
            say("token: \(try await AccessTokens.load(from: store).token(for: id))")
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a user's name, role, team or clearance (a user.updated event).",
            discussion: """
                Takes effect on the user's next request: every request resolves its principal from canonical state, and a \
                command decided on the old rights cannot commit. Refused while the user is assigned an open case the changed \
                user could not take (another team, too little clearance, no longer an investigator): reassign those first.
                """)

        @OptionGroup var data: DataOptions
        @Option(name: .long, help: "The user's id.") var id: String
        @Option(name: .long, help: "New display name.") var name: String?
        @Option(name: .long, help: "New role: investigator, supervisor, analyst, legal or admin.") var role: String?
        @Option(name: .long, help: "New team.") var team: String?
        @Flag(name: .long, help: "Take the user out of any team (legal and admin only).") var noTeam = false
        @Option(name: .long, help: "New clearance, 1 to 3.") var clearance: Int?

        func validate() throws {
            if let role, Role(rawValue: role) == nil {
                throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", ")); got \(role)")
            }
            if team != nil && noTeam { throw ValidationError("--team and --no-team exclude each other") }
            guard name != nil || role != nil || team != nil || noTeam || clearance != nil else {
                throw ValidationError("nothing to change: give --name, --role, --team, --no-team or --clearance")
            }
        }

        func run() async throws {
            let store = try await data.openStores(create: false, semantic: false).canonical
            let outcome = try await UserCommand.refusals {
                try await CaseCommands(store: store).updateUser(id) { current in
                    var user = current
                    if let name { user.displayName = name }
                    if let role { user.role = Role(rawValue: role)! }
                    if let team { user.team = team }
                    if noTeam { user.team = nil }
                    if let clearance { user.clearance = clearance }
                    return user
                }
            }
            say("updated \(id) at position \(outcome.position)")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a user (a user.removed event): their tokens stop working at once.",
            discussion: "What they did stays recorded under their id, which is not registered again. Refused while they are assigned an open case.")

        @OptionGroup var data: DataOptions
        @Option(name: .long, help: "The user's id.") var id: String

        func run() async throws {
            let store = try await data.openStores(create: false, semantic: false).canonical
            let outcome = try await UserCommand.refusals { try await CaseCommands(store: store).removeUser(id) }
            say("removed \(id) at position \(outcome.position)")
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
