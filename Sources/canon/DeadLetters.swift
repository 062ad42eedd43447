import ArgumentParser
import Canon
import Foundation

struct DeadLetters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "List, retry or skip dead letters of a projection.", subcommands: [List.self, Retry.self, Skip.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the dead letters of a projection.")
        @OptionGroup var data: DataOptions
        @Argument(help: "The projection, e.g. case-search.") var name: String

        func run() async throws {
            let store = try await data.openStores(create: false).projection(named: name)
            let letters = try await store.deadLetters()
            if letters.isEmpty { say("\(store.identity) has no dead letters") }
            for letter in letters {
                say("\(letter.position)\t\(letter.state.rawValue)\t\(letter.type)\t\(letter.streamID)\tattempts \(letter.attempts)\t\(letter.error)")
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-apply a parked event (its whole stream is refolded once).")
        @OptionGroup var data: DataOptions
        @Argument(help: "The projection, e.g. case-search.") var name: String
        @Option(name: .long, help: "The outbox position of the dead letter.") var position: Int64

        func run() async throws {
            let stores = try await data.openStores(create: false)
            let letter = try await DeadLetterOperations.retry(
                position: OutboxPosition(position), in: try stores.projection(named: name), source: stores.canonical)
            say("retried \(letter.type) at position \(letter.position): applied")
        }
    }

    struct Skip: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Leave a parked event unapplied, on purpose.")
        @OptionGroup var data: DataOptions
        @Argument(help: "The projection, e.g. case-search.") var name: String
        @Option(name: .long, help: "The outbox position of the dead letter.") var position: Int64

        func run() async throws {
            let letter = try await DeadLetterOperations.skip(
                position: OutboxPosition(position), in: try await data.openStores(create: false).projection(named: name))
            say("skipped \(letter.type) at position \(letter.position)")
        }
    }
}

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply a projection's events again from a position (idempotently).",
        discussion: "Moves the checkpoint back; a running agent notices at its next batch and re-applies from there.")

    @OptionGroup var data: DataOptions
    @Argument(help: "The projection, e.g. case-timeline.") var name: String
    @Option(name: .long, help: "Replay the events after this position.") var from: Int64

    func run() async throws {
        let store = try await data.openStores(create: false).projection(named: name)
        try await store.rewind(to: OutboxPosition(from))
        say("\(store.identity) will re-apply the events after position \(from)")
    }
}
