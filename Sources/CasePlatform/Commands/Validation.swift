import Canon

/// Input checks shared by the decisions (and the HTTP routes' filters); each failure names its field.
public enum Validation {
    /// `value` trimmed, checked to be 1…`max` characters (or empty when allowed) and free of
    /// control characters other than newlines and tabs.
    static func text(_ value: String, field: String, max: Int, allowEmpty: Bool = false) throws(DomainError) -> String {
        let trimmed = value.trimmingWhiteSpace()
        if trimmed.isEmpty && !allowEmpty { throw DomainError.invalid(field: field, "must not be empty") }
        // Printable ASCII with newlines and tabs, as most text is: a character per byte, no
        // control character. (Not carriage returns: "\r\n" is one character.)
        let printableASCII = trimmed.utf8.allSatisfy { (0x20...0x7E).contains($0) || $0 == 0x0A || $0 == 0x09 }
        let count = printableASCII ? trimmed.utf8.count : trimmed.count
        if count > max { throw DomainError.invalid(field: field, "must be at most \(max) characters; got \(count)") }
        if !printableASCII, trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && !["\n", "\t", "\r"].contains($0) }) {
            throw DomainError.invalid(field: field, "must not contain control characters")
        }
        return trimmed
    }

    /// A lower-case identifier: letters, digits and dashes, 1…64 characters.
    public static func slug(_ value: String, field: String) throws(DomainError) -> String {
        let allowed = value.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        guard !value.isEmpty, value.count <= 64, allowed else {
            throw DomainError.invalid(field: field, "must be 1 to 64 lower-case letters, digits or dashes; got \"\(value)\"")
        }
        return value
    }

    static func email(_ value: String, field: String) throws(DomainError) -> String {
        let trimmed = try text(value, field: field, max: 254)
        let parts = trimmed.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !trimmed.contains(" ") else {
            throw DomainError.invalid(field: field, "must be an email address like name@example.org; got \"\(trimmed)\"")
        }
        return trimmed
    }

    static func sha256(_ value: String, field: String) throws(DomainError) -> String {
        let hex = value.lowercased()
        guard hex.count == 64, hex.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) || ("a"..."f").contains($0) }) else {
            throw DomainError.invalid(field: field, "must be 64 hexadecimal characters (a SHA-256 digest)")
        }
        return hex
    }

    static func mediaType(_ value: String, field: String) throws(DomainError) -> String {
        let trimmed = value.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false)
        let token: (Substring) -> Bool = { part in
            !part.isEmpty && part.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || "!#$&^_.+-".unicodeScalars.contains($0) }
        }
        guard trimmed.count <= 127, parts.count == 2, token(parts[0]), token(parts[1]) else {
            throw DomainError.invalid(field: field, "must be a media type like application/pdf; got \"\(value)\"")
        }
        return trimmed
    }

    /// Case, party and evidence ids are lower-case UUIDs.
    static func isIdentifier(_ value: String) -> Bool {
        value.count == 36 && value.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) || $0 == "-" }
    }
}
