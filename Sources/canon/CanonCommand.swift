import ArgumentParser
import CanonServer
import Foundation
import Logging

/// `canon`: the command-line tool. Each subcommand parses, calls the library and prints.
@main
struct CanonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "canon",
        abstract: "Polyglot persistence with discipline: the regulatory case platform on Canon.",
        subcommands: [
            Demo.self, Serve.self, Worker.self, Token.self, UserCommand.self, Status.self, DeadLetters.self, Replay.self, Rebuild.self, Bench.self,
            Check.self, Docs.self, Export.self, Embed.self, Audit.self, Drift.self, Repair.self, Lifecycle.self, Backfill.self,
        ])

    static func main() async {
        LoggingSystem.bootstrap { label in CanonLogHandler(label: label) }
        let arguments: [String]
        do {
            arguments = try ConfigFile.expand(Array(CommandLine.arguments.dropFirst()))
        } catch {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        await main(arguments)
    }
}

/// Writes a line to standard output unbuffered, so it interleaves correctly with the server's
/// announcements and logs when stdout is a pipe or a file.
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// Prints `value` as pretty, key-sorted JSON with ISO 8601 dates (every `--format json`).
func sayJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    say(String(decoding: try encoder.encode(value), as: UTF8.self))
}
