import ArgumentParser
import Canon
import CanonEmbedded
import CanonServer
import Foundation
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the platform from a data directory (no generated data).",
        discussion: "Runs the HTTP API and the projection agents. Stops cleanly on SIGTERM or SIGINT. Create users with `canon user add`, then get tokens with `canon token`.")

    @OptionGroup var data: DataOptions
    @OptionGroup var server: ServerOptions

    func run() async throws {
        // Before any metric object exists, so every one reports to Prometheus.
        CanonMetrics.bootstrap()
        let platform = try data.openPlatform(create: true, logger: server.logger())
        let services = try await platform.services()
        let users = try await services.queries.users()
        let directory = data.directory.url.path, dataOption = data.data
        try await ServerRunner.run(platform: platform, services: services, options: server) { url in
            var text = "canon is serving \(directory) at \(url)\n"
            if users.isEmpty {
                text += "No users yet: add one with `canon user add --data \(dataOption) --id ada --name \"Ada Okafor\" --role admin`\n"
            }
            return text
        }
    }
}

/// Runs the HTTP server and the projection agents until SIGTERM or SIGINT.
enum ServerRunner {
    /// - Parameter announce: what to print once the server listens, given its URL.
    static func run(
        platform: EmbeddedPlatform, services: PlatformServices, options: ServerOptions,
        announce: @escaping @Sendable (String) -> String
    ) async throws {
        CanonMetrics.bootstrap()
        let logger = options.logger()
        let application = CanonServer.application(
            services: services, configuration: .init(host: options.host, port: options.port), logger: logger,
            onServerRunning: { port in
                FileHandle.standardOutput.write(Data(announce("http://\(options.host):\(port)").utf8))
            })
        // Continuous drift sampling, rate-limited: a sample of keys per store each minute.
        let sampler = DriftSampler(interval: .seconds(options.driftInterval), logger: logger) { services.driftChecks(options: .init(sampleSize: 100)) }
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: application), .init(service: platform.coordinator), .init(service: platform.catalogWatcher(logger: logger)),
                .init(service: sampler),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        say("canon stopped cleanly")
    }
}
