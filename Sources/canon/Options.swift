import ArgumentParser
import Canon
import CanonEmbedded
import CanonPostgres
import CanonSQLite
import CasePlatform
import Foundation
import Logging

/// Where the embedded stores live.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: "The data directory: one SQLite file per store.")
    var data: String = "canon-data"

    @Option(name: .long, help: "The portfolio the runtime obeys (default: ./portfolio.yaml, else the built-in one). A portfolio with errors, or one that does not declare a store the platform opens, stops the start.")
    var portfolio: String?

    @Option(name: .long, help: "Run on PostgreSQL instead of the data directory: postgres://user[:password]@host[:port]/database (default: $CANON_DATABASE).")
    var database: String?

    var directory: DataDirectory { DataDirectory(data) }

    /// The PostgreSQL database the command runs on, when one is given.
    var postgres: PostgresURL? {
        get throws {
            guard let text = database ?? ProcessInfo.processInfo.environment["CANON_DATABASE"], !text.isEmpty else { return nil }
            do {
                return try PostgresURL(text)
            } catch {
                throw ValidationError("--database: \(error)")
            }
        }
    }

    /// Opens the embedded platform, creating the directory and files when `create` is set.
    /// - Parameter semantic: open the semantic store too (loads the embedding model); commands that
    ///   only touch the canonical store (token, user, audit) leave it off.
    func openPlatform(create: Bool, semantic: Bool = true, logger: Logger = Logger(label: "canon")) throws -> EmbeddedPlatform {
        if try postgres != nil {
            throw ValidationError("this command runs on the embedded engine only (--data DIR); with --database use serve, worker, status, dlq, replay, drift, repair, rebuild, lifecycle, backfill, user, token or audit")
        }
        return try Self.openPlatform(in: directory, create: create, portfolio: PortfolioSource.load(portfolio), semantic: semantic, logger: logger)
    }

    /// Opens the PostgreSQL platform at `url`.
    func openPostgres(
        _ url: PostgresURL, runAgents: Bool = true, versionPoll: Duration? = nil, logger: Logger = Logger(label: "canon")
    ) async throws -> PostgresPlatform {
        do {
            var configuration = PostgresPlatform.Configuration(portfolio: try PortfolioSource.load(portfolio), runAgents: runAgents)
            if let versionPoll { configuration.versionPollInterval = versionPoll }
            return try await PostgresPlatform.open(url: url, configuration: configuration, logger: logger)
        } catch let error as PortfolioError {
            throw ValidationError("refusing to start: \(error.message)")
        } catch let error as CanonicalStoreError {
            throw ValidationError(error.message)
        } catch let error as ProjectionError {
            throw ValidationError(error.message)
        }
    }

    /// The canonical store and the live projection stores, on whichever engine the options name:
    /// what operating commands (status, dlq, replay, drift, repair, lifecycle audit, user, token,
    /// audit) need.
    /// - Parameter semantic: open the semantic store too (loads the embedding model).
    func openStores(create: Bool, semantic: Bool = true) async throws -> OpenedStores {
        if let url = try postgres {
            let platform = try await openPostgres(url, runAgents: false)
            return OpenedStores(
                canonical: platform.canonical, projections: platform.coordinator.agents.map(\.store), portfolio: platform.portfolio, scaledOut: true,
                unavailable: [PlatformPortfolio.Store.evidenceSemantic: PostgresPlatform.semanticUnavailable])
        }
        let platform = try openPlatform(create: create, semantic: semantic)
        return OpenedStores(canonical: platform.canonical, projections: platform.projectionStores, portfolio: platform.portfolio)
    }

    static func openPlatform(
        in directory: DataDirectory, create: Bool, portfolio: Portfolio? = nil, semantic: Bool = true, logger: Logger = Logger(label: "canon")
    ) throws -> EmbeddedPlatform {
        do {
            return try EmbeddedPlatform.open(
                directory, create: create, configuration: .init(portfolio: portfolio, semantic: semantic), logger: logger)
        } catch let error as PortfolioError {
            throw ValidationError("refusing to start: \(error.message)")
        } catch let error as EmbeddedPlatformError {
            throw ValidationError(error.message)
        } catch let error as CocoaError {
            throw ValidationError("cannot create the data directory \(directory.url.path): \(error.localizedDescription)")
        }
    }
}

/// The stores an operating command works on.
struct OpenedStores {
    let canonical: any CanonicalStore
    let projections: [any ProjectionStore]
    let portfolio: Portfolio
    /// On PostgreSQL: the stores show their scale-out engines.
    var scaledOut = false
    /// Live stores this engine does not run, and why.
    var unavailable: [String: String] = [:]

    func projection(named name: String) throws -> any ProjectionStore {
        guard let store = projections.first(where: { $0.identity.name == name }) else {
            throw ProjectionError.unknownProjection(name, known: projections.map(\.identity.name))
        }
        return store
    }
}

/// Where the server listens.
struct ServerOptions: ParsableArguments {
    @Option(name: .long, help: "The address to listen on.")
    var host: String = "127.0.0.1"

    @Option(name: .long, help: "The port to listen on (0 picks a free one).")
    var port: Int = 8080

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Seconds between continuous drift samples of each derived store.")
    var driftInterval: Int = 60

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be between 0 and 65535; got \(port)") }
        guard (1...31_536_000).contains(driftInterval) else {
            throw ValidationError("--drift-interval must be between 1 second and 31536000 (a year); got \(driftInterval)")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")); got \(logLevel)")
        }
    }

    func logger() -> Logger {
        var logger = Logger(label: "canon")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }
}

/// How results are printed.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// How a long-running process on PostgreSQL (`canon serve`, `canon worker`) learns of blue-green
/// switches made by `canon rebuild --database` in another process.
struct VersionFollowOptions: ParsableArguments {
    @Option(name: .long, help: "With --database: how often, in seconds, this process reads which projection versions are live, besides at once when a rebuild announces a switch over LISTEN/NOTIFY (default 5).")
    var versionPollInterval: Double?

    func validate() throws {
        if let versionPollInterval, !(versionPollInterval >= 0.001 && versionPollInterval <= 86_400) {
            throw ValidationError("--version-poll-interval must be between 0.001 and 86400 seconds; got \(versionPollInterval)")
        }
    }

    /// The embedded engine follows its data directory's `projections.json`: the option is an error there, not ignored.
    func rejectEmbedded() throws {
        if versionPollInterval != nil { throw ValidationError("--version-poll-interval applies with --database only") }
    }

    var interval: Duration? { versionPollInterval.map { .milliseconds(Int(($0 * 1000).rounded())) } }
}
