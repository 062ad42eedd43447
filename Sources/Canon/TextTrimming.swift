extension String {
    /// The text without leading and trailing white space (Unicode's `White_Space` property:
    /// spaces, tabs, line breaks; and the zero-width space), what
    /// `trimmingCharacters(in: .whitespacesAndNewlines)` removes,
    /// without bridging to `NSString` (which took 3% of a scaled-out server's CPU). Text that
    /// begins and ends with a visible ASCII character comes back as it is, without a copy.
    public func trimmingWhiteSpace() -> String {
        let utf8 = self.utf8
        guard let first = utf8.first, let last = utf8.last else { return self }
        if (0x21...0x7E).contains(first) && (0x21...0x7E).contains(last) { return self }
        let scalars = unicodeScalars
        let kept: (Unicode.Scalar) -> Bool = { !$0.properties.isWhitespace && $0 != "\u{200B}" }
        guard let start = scalars.firstIndex(where: kept), let end = scalars.lastIndex(where: kept) else { return "" }
        return String(scalars[start...end])
    }
}
