import Foundation

/// The data directory of an embedded installation: one database file per store.
///
/// Stores stay separate engines with separate failure and rebuild boundaries, so each has its
/// own file and nothing joins across them.
public struct DataDirectory: Hashable, Sendable {
    public var url: URL

    public init(_ path: String) {
        self.url = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
    }

    /// The file of the store named `store` (e.g. `canonical` → `canonical.sqlite`).
    public func databaseFile(for store: String) -> URL {
        url.appendingPathComponent("\(store).sqlite")
    }

    /// Creates the directory (and its parents) when it does not exist.
    ///
    /// - Throws: `CocoaError` when it cannot be created, e.g. a file stands at that path.
    public func create() throws {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
}
