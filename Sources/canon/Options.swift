import ArgumentParser
import Canon
import CanonSQLite
import CasePlatform
import Foundation
import Logging

/// Where the embedded stores live.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: "The data directory: one SQLite file per store.")
    var data: String = "canon-data"

    var directory: DataDirectory { DataDirectory(data) }

    /// Opens the canonical store, creating the directory and file when `create` is set.
    func openCanonicalStore(create: Bool) throws -> SQLiteCanonicalStore {
        try Self.openCanonicalStore(in: directory, create: create)
    }

    static func openCanonicalStore(in directory: DataDirectory, create: Bool) throws -> SQLiteCanonicalStore {
        let data = directory.url.path
        let file = directory.databaseFile(for: "canonical")
        if create {
            do {
                try directory.create()
            } catch {
                throw ValidationError("cannot create the data directory \(directory.url.path): \(error.localizedDescription)")
            }
        } else if !FileManager.default.fileExists(atPath: file.path) {
            throw ValidationError("no canonical store at \(file.path); run `canon demo --data \(data)` or `canon serve --data \(data)` first")
        }
        return try SQLiteCanonicalStore(path: file.path, migrations: CasePlatformSchema.migrations)
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

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be between 0 and 65535; got \(port)") }
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
