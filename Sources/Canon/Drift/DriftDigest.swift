/// The 64-bit digest of one key's derived content, the unit drift detection compares.
///
/// Fields are fed in an order the projection fixes; both sides of a check feed the same fields in
/// the same order. Rules, so every engine can compute it (Swift here; SQLite's `canon_digest(...)`
/// with exactly these rules, so a digest kept when a document was applied can be checked against
/// the content still stored):
/// - text and bytes: their bytes as little-endian 64-bit words (the last one zero-padded), then
///   a word holding the byte count with the field marker `0x1f` in its top byte;
/// - an integer: its two's-complement bits as one word, then the marker word `0x1d…08`;
/// - a missing value: the word `0x1e1e…1e`, then the marker word `0x1e…00`.
/// Each word `w` updates the state as `state = (rotl(state, 5) ^ w) &* 0x517cc1b727220a95`,
/// eight bytes per multiply; the value is the state through the MurmurHash3 64-bit finalizer.
///
/// Stable across processes, versions and machines (unlike `Hasher`). Not meant to resist someone
/// crafting collisions: it finds accidents, not attacks.
public struct DriftDigest: Sendable {
    @usableFromInline var state: UInt64 = 0x9E37_79B9_7F4A_7C15

    @inlinable public init() {}

    @inlinable @inline(__always)
    mutating func word(_ word: UInt64) {
        state = (((state << 5) | (state >> 59)) ^ word) &* 0x517c_c1b7_2722_0a95
    }

    @inlinable
    public mutating func add(bytes: UnsafeRawBufferPointer) {
        bytes.littleEndianWords { word($0) }
        word(UInt64(bytes.count) | 0x1f00_0000_0000_0000)
    }

    public mutating func add(_ text: String?) {
        guard let text else {
            addMissing()
            return
        }
        var contiguous = text
        contiguous.withUTF8 { add(bytes: UnsafeRawBufferPointer($0)) }
    }

    public mutating func add(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { add(bytes: $0) }
    }

    @inlinable
    public mutating func add(_ integer: Int64) {
        word(UInt64(bitPattern: integer))
        word(0x1d00_0000_0000_0008)
    }

    public mutating func add(_ integer: Int) { add(Int64(integer)) }

    /// A flag is the integer 0 or 1 (as engines store it).
    public mutating func add(_ flag: Bool) { add(Int64(flag ? 1 : 0)) }

    @inlinable
    public mutating func addMissing() {
        word(0x1e1e_1e1e_1e1e_1e1e)
        word(0x1e00_0000_0000_0000)
    }

    @inlinable
    public var value: UInt64 { Self.finalize(state) }

    /// MurmurHash3's 64-bit finalizer: every input bit moves every output bit.
    @inlinable
    static func finalize(_ state: UInt64) -> UInt64 {
        var mixed = state
        mixed ^= mixed >> 33
        mixed = mixed &* 0xff51_afd7_ed55_8ccd
        mixed ^= mixed >> 33
        mixed = mixed &* 0xc4ce_b9fe_1a85_ec53
        mixed ^= mixed >> 33
        return mixed
    }

    /// The digest as engines store it: the same 64 bits in a signed integer column.
    @inlinable public var stored: Int64 { Int64(bitPattern: value) }
}

extension UnsafeRawBufferPointer {
    /// The bytes as little-endian 64-bit words, the last one zero-padded (always given, zero
    /// when the count is a multiple of eight): what `DriftDigest` and `ContentHasher` hash.
    @inlinable @inline(__always)
    func littleEndianWords(_ body: (UInt64) -> Void) {
        var offset = 0
        while offset + 8 <= count {
            body(UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
            offset += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while offset < count {
            tail |= UInt64(self[offset]) << shift
            shift += 8
            offset += 1
        }
        body(tail)
    }
}
