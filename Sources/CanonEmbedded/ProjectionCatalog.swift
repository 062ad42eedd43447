import Canon
import Foundation

/// Which version of each projection is live, in `DATA/projections.json`.
///
/// A blue-green switch is one atomic rename of this file; servers watch it and move readers and
/// agents to the new version. The previous version stays for rollback until pruned.
public struct ProjectionCatalog: Codable, Hashable, Sendable {
    public struct Entry: Codable, Hashable, Sendable {
        public var live: Int
        public var previous: Int?
        /// A rebuild in progress (its file resumes from its checkpoint after a crash).
        public var building: Int?
        /// Vector projections: the embedding model directory of each version, by version number,
        /// when it is not the process's default. A model change is a rebuild into a new version.
        public var models: [String: String]?
        /// How long the rebuild that made the live version took, in seconds (nil when it was not
        /// rebuilt): `canon_rebuild_duration_seconds` at each scrape.
        public var lastRebuildSeconds: Double?

        public init(live: Int, previous: Int? = nil, building: Int? = nil, models: [String: String]? = nil, lastRebuildSeconds: Double? = nil) {
            self.live = live
            self.previous = previous
            self.building = building
            self.models = models
            self.lastRebuildSeconds = lastRebuildSeconds
        }

        /// The model directory recorded for `version`, if any.
        public func model(for version: Int) -> String? { models?[String(version)] }
    }

    public var projections: [String: Entry]

    public init(projections: [String: Entry] = [:]) { self.projections = projections }

    public func liveVersion(_ name: String) -> Int { projections[name]?.live ?? 1 }

    static func file(in directory: DataDirectory) -> URL { directory.url.appendingPathComponent("projections.json") }

    /// The catalog in `directory`, or an empty one (every projection at version 1) when there is
    /// no catalog file.
    ///
    /// - Throws: `EmbeddedPlatformError` when the file exists but cannot be read (a directory,
    ///   no permission, an I/O error) or is not a catalog. (An unreadable catalog read as empty
    ///   opened every projection at version 1, and the next rebuild saved that, losing which
    ///   versions were live.)
    public static func load(from directory: DataDirectory) throws -> ProjectionCatalog {
        let url = file(in: directory)
        guard FileManager.default.fileExists(atPath: url.path) else { return ProjectionCatalog() }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw EmbeddedPlatformError(message: "\(url.path) cannot be read (\(error.localizedDescription)); fix its permissions or restore it")
        }
        do {
            return try JSONDecoder().decode(ProjectionCatalog.self, from: data)
        } catch {
            throw EmbeddedPlatformError(message: "\(url.path) is not a projection catalog (\(error)); fix or remove it")
        }
    }

    /// Writes the catalog atomically (temporary file, then rename).
    public func save(to directory: DataDirectory) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(encoder.encode(self), to: Self.file(in: directory))
    }
}
