import ArgumentParser
import Canon
import CanonEmbedded
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

    var directory: DataDirectory { DataDirectory(data) }

    /// Opens the embedded platform, creating the directory and files when `create` is set.
    /// - Parameter semantic: open the semantic store too (loads the embedding model); commands that
    ///   only touch the canonical store (token, user, audit) leave it off.
    func openPlatform(create: Bool, semantic: Bool = true, logger: Logger = Logger(label: "canon")) throws -> EmbeddedPlatform {
        try Self.openPlatform(in: directory, create: create, portfolio: PortfolioSource.load(portfolio), semantic: semantic, logger: logger)
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
        guard driftInterval >= 1 else { throw ValidationError("--drift-interval must be at least 1 second; got \(driftInterval)") }
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
