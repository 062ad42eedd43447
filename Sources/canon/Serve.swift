import ArgumentParser
import CanonServer
import Foundation

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the platform from a data directory (no generated data).",
        discussion: "Stops cleanly on SIGTERM or SIGINT. Create users with `canon user add`, then get tokens with `canon token`.")

    @OptionGroup var data: DataOptions
    @OptionGroup var server: ServerOptions

    func run() async throws {
        let store = try data.openCanonicalStore(create: true)
        let services = try await PlatformServices(store: store)
        let users = try await services.queries.users()
        let directory = data.directory.url.path, dataOption = data.data
        try await ServerRunner.run(services: services, options: server) { url in
            var text = "canon is serving \(directory) at \(url)\n"
            if users.isEmpty {
                text += "No users yet: add one with `canon user add --data \(dataOption) --id ada --name \"Ada Okafor\" --role admin`\n"
            }
            return text
        }
    }
}

/// Runs the HTTP server until SIGTERM or SIGINT.
enum ServerRunner {
    /// - Parameter announce: what to print once the server listens, given its URL.
    static func run(services: PlatformServices, options: ServerOptions, announce: @escaping @Sendable (String) -> String) async throws {
        let application = CanonServer.application(
            services: services, configuration: .init(host: options.host, port: options.port), logger: options.logger(),
            onServerRunning: { port in
                FileHandle.standardOutput.write(Data(announce("http://\(options.host):\(port)").utf8))
            })
        try await application.runService()
        say("canon stopped cleanly")
    }
}
