/// An order-sensitive 128-bit FNV-1a style digest of rows: cheap, stable across processes and
/// versions (unlike `Hasher`), and enough to tell two stores apart.
public struct ContentHasher: Sendable {
    public init() {}

    private var high: UInt64 = 0xcbf2_9ce4_8422_2325
    private var low: UInt64 = 0x8422_2325_cbf2_9ce4

    public mutating func add(_ text: String) {
        for byte in text.utf8 {
            high = (high ^ UInt64(byte)) &* 0x100_0000_01b3
            low = (low ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 &+ 0x9e37_79b9
        }
        high = (high ^ 0x1f) &* 0x100_0000_01b3
        low = (low ^ 0x1e) &* 0x0000_0100_0000_01b3
    }

    public var hexDigest: String {
        String(high, radix: 16).leftPadded(16) + String(low, radix: 16).leftPadded(16)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
