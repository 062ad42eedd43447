/// The 64-bit digest of one key's derived content, the unit drift detection compares.
///
/// Each field is fed as the UTF-8 bytes of its text form (integers in decimal) followed by a unit
/// separator, and a missing value as a distinct marker, through FNV-1a 64. The order of fields is
/// the projection's business; both sides of a check feed the same fields in the same order. Every
/// engine can compute it: Swift here, and each engine's own SQL function for content it stores
/// (SQLite registers `canon_digest(...)` with exactly these rules), so a digest kept when a
/// document was applied can be checked against the content still stored.
///
/// Stable across processes, versions and machines (unlike `Hasher`).
public struct DriftDigest: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    static let prime: UInt64 = 0x100_0000_01b3
    static let separator: UInt8 = 0x1f
    static let missing: UInt8 = 0x1e

    public mutating func add(_ text: String?) {
        guard let text else {
            mix(Self.missing)
            mix(Self.separator)
            return
        }
        var contiguous = text
        contiguous.withUTF8 { bytes in
            var value = self.value
            for byte in bytes { value = (value ^ UInt64(byte)) &* Self.prime }
            self.value = value
        }
        mix(Self.separator)
    }

    public mutating func add(_ bytes: some Sequence<UInt8>) {
        for byte in bytes { mix(byte) }
        mix(Self.separator)
    }

    public mutating func add(_ integer: Int64) { add(String(integer)) }

    public mutating func add(_ integer: Int) { add(String(integer)) }

    public mutating func add(_ flag: Bool) { add(flag ? "1" : "0") }

    @inline(__always) mutating func mix(_ byte: UInt8) {
        value = (value ^ UInt64(byte)) &* Self.prime
    }

    /// The digest as engines store it: the same 64 bits in a signed integer column.
    public var stored: Int64 { Int64(bitPattern: value) }
}
