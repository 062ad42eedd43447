/// A position in the canonical store's outbox.
///
/// Positions are assigned at commit, start at 1, are gap-free and strictly increase in commit
/// order. `OutboxPosition.start` (0) means "before the first event".
public struct OutboxPosition: RawRepresentable, Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public var rawValue: Int64

    public init(rawValue: Int64) { self.rawValue = rawValue }
    public init(_ value: Int64) { self.rawValue = value }

    /// The position before any event.
    public static let start = OutboxPosition(0)

    /// The position right after this one.
    public var next: OutboxPosition { OutboxPosition(rawValue + 1) }

    public static func < (lhs: OutboxPosition, rhs: OutboxPosition) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        self.rawValue = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { String(rawValue) }
}
