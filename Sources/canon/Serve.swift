import ArgumentParser
import Canon
import CanonEmbedded
import CanonServer
import Foundation
import Logging
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the platform from a data directory (no generated data).",
        discussion: "Runs the HTTP API and the projection agents. Stops cleanly on SIGTERM or SIGINT. Create users with `canon user add`, then get tokens with `canon token`.")

    @OptionGroup var data: DataOptions
    @OptionGroup var server: ServerOptions

    @Flag(name: .long, help: "With --database: serve reads and writes only, and leave the projection agents to `canon worker` processes.")
    var noAgents = false

    /// Read by `ConfigFile` before parsing (the file's settings become flags); declared for `--help`.
    @Option(name: .long, help: "A YAML file of these settings, keys as the flags with underscores (data, database, port, log_level, no_agents, …); a flag given on the command line wins.")
    var config: String?

    @OptionGroup var loops: EventLoopOptions
    @OptionGroup var follow: VersionFollowOptions

    func run() async throws {
        // Before any metric object exists, so every one reports to Prometheus.
        CanonMetrics.bootstrap()
        if let url = try data.postgres {
            let threads = loops.adopt()
            let platform = try await data.openPostgres(url, runAgents: !noAgents, versionPoll: follow.interval, logger: server.logger())
            let services = try await platform.services()
            let users = try await services.queries.users()
            do {
                // Continuous drift sampling, as on the embedded engine: a sample of keys per store each
                // `--drift-interval` (every server samples; a sample is read-only and small).
                let sampler = DriftSampler(interval: .seconds(server.driftInterval), logger: server.logger()) {
                    services.driftChecks(options: .init(sampleSize: 100))
                }
                let background = platform.backgroundServices + [loops.delayMonitor(logger: server.logger()), sampler]
                try await ServerRunner.run(services: services, background: background, options: server) { address in
                    var text = "canon is serving \(url) at \(address) on \(threads)\(noAgents ? " (agents run in canon worker processes)" : "")\n"
                    if users.isEmpty {
                        text += "No users yet: add one with `canon user add --database \(url) --id ada --name \"Ada Okafor\" --role admin`\n"
                    }
                    return text
                }
            } catch {
                // The lease connection is closed on every path, so its locks go at once.
                await platform.leases.close()
                throw error
            }
            await platform.leases.close()
            return
        }
        try loops.rejectEmbedded()
        try follow.rejectEmbedded()
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
    /// The embedded platform: its agents, its catalog watcher (blue-green switches made by
    /// `canon rebuild` in another process) and continuous drift sampling.
    static func run(
        platform: EmbeddedPlatform, services: PlatformServices, options: ServerOptions, stop: StopSignals? = nil,
        announce: @escaping @Sendable (String) -> String
    ) async throws {
        let logger = options.logger()
        // Continuous drift sampling, rate-limited: a sample of keys per store each minute.
        let sampler = DriftSampler(interval: .seconds(options.driftInterval), logger: logger) { services.driftChecks(options: .init(sampleSize: 100)) }
        try await run(
            services: services, background: [platform.coordinator, platform.catalogWatcher(logger: logger), sampler], options: options,
            stop: stop, announce: announce)
    }

    /// - Parameters:
    ///   - background: what runs beside the HTTP server and stops with it.
    ///   - stop: the process's signal handling, when a command installed it before the server
    ///     (else the group handles SIGTERM and SIGINT itself).
    ///   - announce: what to print once the server listens, given its URL.
    static func run(
        services: PlatformServices, background: [any Service], options: ServerOptions, stop: StopSignals? = nil,
        announce: @escaping @Sendable (String) -> String
    ) async throws {
        CanonMetrics.bootstrap()
        let logger = options.logger()
        let application = CanonServer.application(
            services: services, configuration: .init(host: options.host, port: options.port), logger: logger,
            onServerRunning: { port in
                FileHandle.standardOutput.write(Data(announce("http://\(options.host):\(port)").utf8))
            })
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: application)] + background.map { .init(service: $0) },
            gracefulShutdownSignals: stop == nil ? [.sigterm, .sigint] : [], logger: logger))
        stop?.shutDownGracefully(group)
        try await group.run()
        say("canon stopped cleanly")
    }
}

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run projection agents against a PostgreSQL database (scale-out), without serving HTTP.",
        discussion: """
            Start as many workers as you like, on as many machines: each projection has exactly one active agent across \
            all of them (a lease held as a PostgreSQL advisory lock). When the worker holding a lease dies, another takes \
            over within about a second. Stops cleanly on SIGTERM or SIGINT.
            """)

    @OptionGroup var data: DataOptions

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @OptionGroup var loops: EventLoopOptions
    @OptionGroup var follow: VersionFollowOptions

    /// Read by `ConfigFile` before parsing (the file's settings become flags); declared for `--help`.
    @Option(name: .long, help: "A YAML file of these settings, keys as the flags with underscores (database, portfolio, log_level, event_loops, version_poll_interval); a flag given on the command line wins.")
    var config: String?

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")); got \(logLevel)")
        }
        guard data.database != nil || ProcessInfo.processInfo.environment["CANON_DATABASE"] != nil else {
            throw ValidationError("canon worker runs against PostgreSQL: pass --database postgres://user@host:port/database")
        }
    }

    func run() async throws {
        let threads = loops.adopt()
        CanonMetrics.bootstrap()
        var logger = Logger(label: "canon")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        guard let url = try data.postgres else { throw ValidationError("--database is required") }
        let platform = try await data.openPostgres(url, versionPoll: follow.interval, logger: logger)
        say("canon worker \(ProjectionAgent.defaultOwner) is running projections on \(url) on \(threads)")
        let group = ServiceGroup(configuration: .init(
            services: (platform.backgroundServices + [loops.delayMonitor(logger: logger)]).map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await platform.leases.close()
            throw error
        }
        await platform.leases.close()
        say("canon worker stopped cleanly")
    }
}
