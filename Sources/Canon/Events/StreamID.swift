/// The identity of an event stream: one aggregate, such as one case (`case-<uuid>`).
///
/// Events of one stream are numbered 1, 2, 3, … by their stream version, and a projection
/// applies them in that order.
public struct StreamID: RawRepresentable, Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ value: String) { self.rawValue = value }

    /// A stream named by its aggregate's category and id, e.g. `StreamID(category: "case", id: "42")`
    /// is `case-42`.
    public init(category: String, id: String) { self.rawValue = "\(category)-\(id)" }

    public static func < (lhs: StreamID, rhs: StreamID) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        self.rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }
}
