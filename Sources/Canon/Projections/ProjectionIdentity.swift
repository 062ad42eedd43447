/// A projection's identity: its name and version. The version is what makes blue-green rebuilds
/// possible: `case-search@2` is built beside the live `case-search@1`.
public struct ProjectionIdentity: Hashable, Codable, Sendable, CustomStringConvertible {
    public var name: String
    public var version: Int

    public init(name: String, version: Int) {
        self.name = name
        self.version = version
    }

    public var description: String { "\(name)@\(version)" }

    /// The store name of this version, e.g. `case-search.v1` (its file is `case-search.v1.sqlite`).
    public var storeName: String { "\(name).v\(version)" }
}
