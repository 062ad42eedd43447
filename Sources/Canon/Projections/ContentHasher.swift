/// A 128-bit digest of a set of rows, in any order: cheap, stable across processes and machines
/// (unlike `Hasher`), and enough to tell two stores apart.
///
/// Each row is hashed on its own (eight bytes at a step, in two lanes with different multipliers,
/// ending with its length) and the row hashes are added up, so the rows need no sort: a store
/// sums its rows in whatever order its file holds them.
public struct ContentHasher: Sendable {
    public init() {}

    private var high: UInt64 = 0
    private var low: UInt64 = 0

    /// Adds one row.
    public mutating func add(_ text: String) {
        var text = text
        text.withUTF8 { add(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Adds one row, given as its UTF-8 bytes.
    public mutating func add(bytes: UnsafeRawBufferPointer) {
        add(fields: 1) { _ in bytes }
    }

    /// Adds one row of `fields` fields, each given as its bytes (each field ends with its length,
    /// so fields cannot run together either). A row of one field hashes as `add(bytes:)`.
    public mutating func add(fields: Int, _ field: (Int) -> UnsafeRawBufferPointer) {
        var row = RowHash()
        for index in 0..<fields { row.add(field(index)) }
        high &+= RowHash.finalize(row.high)
        low &+= RowHash.finalize(row.low ^ row.high)
    }

    public var hexDigest: String {
        String(high, radix: 16).leftPadded(16) + String(low, radix: 16).leftPadded(16)
    }
}

/// One row's two lanes.
private struct RowHash {
    var high: UInt64 = 0xcbf2_9ce4_8422_2325
    var low: UInt64 = 0x8422_2325_cbf2_9ce4

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        var index = 0
        while index + 8 <= count {
            mix(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)))
            index += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while index < count {
            tail |= UInt64(bytes[index]) << shift
            shift += 8
            index += 1
        }
        // At most seven tail bytes: the top byte is free for the length.
        mix(tail ^ (UInt64(truncatingIfNeeded: count) << 56))
    }

    @inline(__always)
    private mutating func mix(_ word: UInt64) {
        high = (high ^ word) &* 0x9e37_79b9_7f4a_7c15
        high ^= high >> 32
        low = (low &+ word) &* 0xc2b2_ae3d_27d4_eb4f
        low ^= low >> 29
    }

    /// MurmurHash3's finalizer: every input bit moves every output bit.
    static func finalize(_ value: UInt64) -> UInt64 {
        var value = value
        value ^= value >> 33
        value &*= 0xff51_afd7_ed55_8ccd
        value ^= value >> 33
        value &*= 0xc4ce_b9fe_1a85_ec53
        value ^= value >> 33
        return value
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
