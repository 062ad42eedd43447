import Foundation
import Synchronization

/// Identifiers that sort by the time they were made: UUID version 7 (RFC 9562 §5.7), as
/// lowercase text.
///
/// A random (version 4) key lands anywhere in every index that holds it, so each transaction
/// that inserts a few thousand keys rewrites nearly every page of the index: the canonical
/// tables' primary keys, and the key index of every derived store a catch-up fills. A key that
/// starts with its creation time lands at the end, beside the one before it. The same reason
/// made Marten default to sequential ("comb") GUIDs and PostgreSQL 18 add `uuidv7()`.
///
/// Layout: 48 bits of Unix time in milliseconds, the version (7), 12 bits of `rand_a`, the
/// variant (`10`), 62 bits of `rand_b`. The 74 bits after the time start random in each new
/// millisecond (top bit clear, so a counter has room) and, within one millisecond, grow by a
/// random step of 1 to 2³², so the identifiers made in one millisecond increase too (RFC 9562
/// §6.2, method 2) and are not guessable from the one before. In a `Sequence`, a time earlier
/// than the previous one (a back-dated seed) starts afresh at that time: identifiers follow the
/// times they are given, and stay unique by their random bits. The process-wide `next()` reads
/// the clock under its lock and never goes back: if the clock steps back it goes on counting in
/// the last millisecond it saw, so its identifiers always increase.
///
/// ```swift
/// let id = TimeOrderedID.next()            // "0192f1a4-9c3e-7a81-8c2d-5e6f7a8b9c0d"
/// var ids = TimeOrderedID.Sequence()
/// let seeded = ids.next(at: date, using: &generator)
/// ```
public enum TimeOrderedID {
    /// A monotonic run of identifiers, fed with the random generator the caller chooses (a
    /// seeded one makes the same identifiers on every machine).
    public struct Sequence: Sendable {
        private var started = false
        private var milliseconds: UInt64 = 0
        private var high: UInt64 = 0  // rand_a: 12 bits
        private var low: UInt64 = 0  // rand_b: 62 bits
        private let monotonic: Bool

        /// - Parameter monotonic: treat a time earlier than the previous one as the previous one
        ///   (a clock that stepped back), so that the identifiers always increase.
        public init(monotonic: Bool = false) { self.monotonic = monotonic }

        /// A sequence whose last identifier had these fields (tests of the counter's carries).
        init(milliseconds: UInt64, high: UInt64, low: UInt64) {
            self.init()
            started = true
            self.milliseconds = milliseconds
            self.high = high
            self.low = low
        }

        /// The next identifier for `date` (before 1970, or not a finite time: 1970; past the
        /// year 10889: that year). Draws exactly two values from `random`.
        public mutating func next<R: RandomNumberGenerator>(at date: Date, using random: inout R) -> String {
            let first = random.next(), second = random.next()
            let seconds = date.timeIntervalSince1970
            var time = seconds.isFinite ? UInt64(min(max(0, seconds * 1_000), Double(Self.timeMask)).rounded(.down)) : 0
            if monotonic, started, time < milliseconds { time = milliseconds }
            if started, time == milliseconds {
                low += (first & 0xFFFF_FFFF) + 1
                if low > Self.lowMask {
                    low &= Self.lowMask
                    high += 1
                }
                if high > 0xFFF {
                    // The 74 bits after the time ran out in this millisecond: borrow the next.
                    milliseconds = min(milliseconds + 1, Self.timeMask)
                    high = second & 0x7FF
                    low = first & Self.lowMask
                }
            } else {
                started = true
                milliseconds = time
                high = second & 0x7FF
                low = first & Self.lowMask
            }
            return Self.text(milliseconds: milliseconds, high: high, low: low)
        }

        private static let timeMask: UInt64 = (1 << 48) - 1
        private static let lowMask: UInt64 = (1 << 62) - 1

        static func text(milliseconds: UInt64, high: UInt64, low: UInt64) -> String {
            let upper = milliseconds << 16 | 0x7000 | high
            let lower = 0x8000_0000_0000_0000 | low
            return String(unsafeUninitializedCapacity: 36) { buffer in
                let digits: StaticString = "0123456789abcdef"
                var index = 0
                func put(_ value: UInt64, nibbles: Int) {
                    for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
                        buffer[index] = digits.utf8Start[Int((value >> UInt64(shift)) & 0xF)]
                        index += 1
                    }
                }
                func dash() {
                    buffer[index] = UInt8(ascii: "-")
                    index += 1
                }
                put(upper >> 32, nibbles: 8); dash()
                put(upper >> 16, nibbles: 4); dash()
                put(upper, nibbles: 4); dash()
                put(lower >> 48, nibbles: 4); dash()
                put(lower, nibbles: 12)
                return 36
            }
        }
    }

    /// The next identifier from the process-wide sequence: for the time now (read under its
    /// lock, so that no caller stamps an older time after a newer one), with the system's random
    /// generator. Every identifier it makes is greater than the ones it made before.
    public static func next() -> String {
        shared.withLock { sequence in
            var random = SystemRandomNumberGenerator()
            return sequence.next(at: Date(), using: &random)
        }
    }

    /// The time an identifier made here carries, to the millisecond; nil for text that is not
    /// a version 7 UUID.
    public static func time(of id: String) -> Date? {
        guard let uuid = UUID(uuidString: id) else { return nil }
        let bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
        guard bytes[6] >> 4 == 7, bytes[8] >> 6 == 0b10 else { return nil }
        let milliseconds = bytes[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Date(timeIntervalSince1970: Double(milliseconds) / 1_000)
    }

    private static let shared = Mutex(Sequence(monotonic: true))
}
