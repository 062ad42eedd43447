import Canon
import CanonPostgres
import CanonSQLite
import CasePlatform
import Foundation
import Testing

/// How the shared projection-runtime and search suites get stores of one engine: a canonical
/// store with the case platform's schema, and projection stores by slot (the same slot opens the
/// same store again, as a restarted process would).
public struct ProjectionEngine: Sendable, CustomTestStringConvertible {
    public let name: String
    private let makeCanonical: @Sendable (TemporaryDirectory) async throws -> any CanonicalStore
    private let makeTimeline: @Sendable (TemporaryDirectory, String, any TimelineProjection, FaultInjector?) async throws -> any TimelineStore
    private let makeSearch: @Sendable (TemporaryDirectory, String, any DocumentProjection, FaultInjector?) async throws -> any SearchStore

    public var testDescription: String { name }

    /// A canonical store kept in `scratch` (a new one the first time, the same one after).
    public func canonical(in scratch: TemporaryDirectory) async throws -> any CanonicalStore { try await makeCanonical(scratch) }

    public func timeline(
        in scratch: TemporaryDirectory, slot: String = UUID().uuidString, _ projection: any TimelineProjection = CaseTimelineProjection(),
        faults: FaultInjector? = nil
    ) async throws -> any TimelineStore {
        try await makeTimeline(scratch, slot, projection, faults)
    }

    public func search(
        in scratch: TemporaryDirectory, slot: String = UUID().uuidString, _ projection: any DocumentProjection = CaseSearchProjection(),
        faults: FaultInjector? = nil
    ) async throws -> any SearchStore {
        try await makeSearch(scratch, slot, projection, faults)
    }

    /// Real SQLite files in the scratch directory.
    public static let sqlite = ProjectionEngine(
        name: "sqlite",
        makeCanonical: { scratch in try SQLiteCanonicalStore(path: scratch.file("canonical.sqlite"), migrations: CasePlatformSchema.migrations) },
        makeTimeline: { scratch, slot, projection, faults in
            try SQLiteTimelineStore(path: scratch.file("timeline-\(slot).sqlite"), projection: projection, faults: faults)
        },
        makeSearch: { scratch, slot, projection, faults in
            try SQLiteSearchStore(path: scratch.file("search-\(slot).sqlite"), projection: projection, faults: faults)
        })

    /// Real SQLite files, searched through FTS5 alone: `sqlite` answers from the store's memory
    /// index, and both must pass the same search suite.
    public static let sqliteFTS5 = ProjectionEngine(
        name: "sqlite-fts5",
        makeCanonical: sqlite.makeCanonical,
        makeTimeline: sqlite.makeTimeline,
        makeSearch: { scratch, slot, projection, faults in
            try SQLiteSearchStore(path: scratch.file("search-\(slot).sqlite"), projection: projection, faults: faults, memoryIndex: .off)
        })

    /// A real PostgreSQL server (`PostgresTestServer`): the canonical store and each projection
    /// slot in a database of its own, whose address is kept in the scratch directory.
    public static let postgres = ProjectionEngine(
        name: "postgres",
        makeCanonical: { scratch in
            try await PostgresCanonicalStore(url: try await database(scratch, "canonical"), migrations: CasePlatformSchema.migrations)
        },
        makeTimeline: { scratch, slot, projection, faults in
            try await PostgresTimelineStore.open(url: try await database(scratch, "timeline-\(slot)"), projection: projection, faults: faults)
        },
        makeSearch: { scratch, slot, projection, faults in
            try await PostgresSearchStore.open(url: try await database(scratch, "search-\(slot)"), projection: projection, faults: faults)
        })

    /// The database of `slot` in `scratch`, created the first time.
    private static func database(_ scratch: TemporaryDirectory, _ slot: String) async throws -> PostgresURL {
        let file = scratch.file("postgres-\(slot).url")
        if let text = try? String(contentsOfFile: file, encoding: .utf8) { return try PostgresURL(text) }
        let url = try await PostgresTestServer.createDatabase()
        try AtomicFile.write(url.description, toFile: file)
        return url
    }

    /// The engines the shared suites run on: SQLite always; PostgreSQL when a server is given
    /// (or required, when its tests must fail rather than skip).
    public static var all: [ProjectionEngine] { PostgresTestServer.enabled ? [.sqlite, .postgres] : [.sqlite] }

    /// The engines the search suite runs on: those of `all`, and SQLite without its memory index.
    public static var searchEngines: [ProjectionEngine] { PostgresTestServer.enabled ? [.sqlite, .sqliteFTS5, .postgres] : [.sqlite, .sqliteFTS5] }
}
