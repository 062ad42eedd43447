/// A 128-bit digest of a set of rows, in any order: cheap, stable across processes and machines
/// (unlike `Hasher`), and enough to tell two stores apart.
///
/// Each row is hashed on its own (eight bytes at a step as `DriftDigest` reads them, in two lanes
/// with different multipliers, each field ending with its length) and the row hashes are added up, so the rows need no sort: a store
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
        high &+= DriftDigest.finalize(row.high)
        low &+= DriftDigest.finalize(row.low ^ row.high)
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
        bytes.littleEndianWords { mix($0) }
        mix(UInt64(bytes.count) | 0x1f00_0000_0000_0000)
    }

    @inline(__always)
    private mutating func mix(_ word: UInt64) {
        high = (high ^ word) &* 0x9e37_79b9_7f4a_7c15
        high ^= high >> 32
        low = (low &+ word) &* 0xc2b2_ae3d_27d4_eb4f
        low ^= low >> 29
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
