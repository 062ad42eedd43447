import Canon
import Foundation

/// A small, fast, deterministic random number generator (SplitMix64): the same seed gives the
/// same demo platform on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    private var ids = TimeOrderedID.Sequence()

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A time-ordered identifier (UUID version 7) for `date`, its random bits drawn from this
    /// generator: identifiers made for one time increase, as `TimeOrderedID.next()` makes them.
    public mutating func id(at date: Date) -> String {
        var sequence = ids
        defer { ids = sequence }
        return sequence.next(at: date, using: &self)
    }

    /// A version-4-shaped UUID string drawn from this generator.
    public mutating func uuid() -> String {
        let high = next(), low = next()
        let hex = String(high, radix: 16).leftPadded(16) + String(low, radix: 16).leftPadded(16)
        let chars = Array(hex)
        let variant = "89ab"[("89ab".index("89ab".startIndex, offsetBy: Int(low % 4)))]
        return String(chars[0..<8]) + "-" + String(chars[8..<12]) + "-4" + String(chars[13..<16]) + "-" + String(variant)
            + String(chars[17..<20]) + "-" + String(chars[20..<32])
    }

    public mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }

    /// A value from `weights.keys`, each drawn in proportion to its weight.
    public mutating func weighted<T>(_ choices: [(T, Int)]) -> T {
        let total = choices.reduce(0) { $0 + $1.1 }
        var roll = Int(next() % UInt64(total))
        for (value, weight) in choices {
            if roll < weight { return value }
            roll -= weight
        }
        return choices[choices.count - 1].0
    }

    public mutating func chance(_ probability: Double) -> Bool {
        Double(next() % 1_000_000) / 1_000_000 < probability
    }

    public mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
