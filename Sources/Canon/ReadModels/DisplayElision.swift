import Foundation

/// A search document's display stored without the fields that repeat the document's other parts
/// (`SearchSchema.displayFields`), and put back whole when read.
///
/// A case's display repeats its id, title, status, sector, region, priority, team, assignee and
/// opening time, which the store keeps anyway as the key, the text and the facet columns: about
/// two thirds of the display's bytes, and the display was the largest table of the file. Every
/// byte a catch-up or a rebuild writes goes through the WAL and then the file.
///
/// Stored form: `0x01`, the decimal bitmask of the declared fields left out, `:`, then the
/// display object without them. A field is left out only when its value is exactly the JSON
/// string of the part it repeats, and a display is stored this way only when putting the fields
/// back gives it back byte for byte (keys in byte order, compact); any other display is stored
/// as it is (one that itself begins with `0x01` behind `0x01` `0:`). So the elision can never
/// change what a read returns, and displays stored before it read as they are.
public struct DisplayElision: Sendable {
    /// The declared fields' names (JSON keys), in declaration order: bit `i` of a mask is field `i`.
    let names: [[UInt8]]
    let sources: [SearchSchema.DisplayField.Source]

    public init(_ schema: SearchSchema) {
        precondition(schema.displayFields.count <= 64, "at most 64 display fields can be left out")
        names = schema.displayFields.map { Array($0.name.utf8) }
        sources = schema.displayFields.map(\.source)
    }

    public var isEmpty: Bool { names.isEmpty }

    static let marker: UInt8 = 0x01

    /// The part of `document` that field `field` repeats, as text; nil where it is absent (a
    /// missing facet).
    func part(_ field: Int, of document: SearchDocument) -> String? {
        switch sources[field] {
        case .key: document.key
        case .text(let name): document.text[name] ?? ""
        case .facet(let name): document.facets[name]
        case .sortTime: Timestamp.iso8601(microseconds: Timestamp.microseconds(document.sortTime))
        }
    }

    /// `text` as a JSON string.
    public static func encoded(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + 2)
        FlatJSONWriter.appendString(text, to: &bytes)
        return bytes
    }

    /// What to store for `document`'s display.
    public func stored(_ display: Data, of document: SearchDocument) -> Data {
        guard !names.isEmpty else { return display }
        return Self.stored(display, names: names) { part($0, of: document) }
    }

    /// The whole display from its stored form and the document it belongs to.
    public func restored(_ stored: Data, of document: SearchDocument) -> Data {
        let values = names.indices.map { part($0, of: document).map(Self.encoded) }
        return stored.withUnsafeBytes { raw in
            Self.restored(raw.bindMemory(to: UInt8.self), names: names, values: values).map { Data($0) } ?? stored
        }
    }

    /// Whether `stored` is in the stored form (else it is a display as it was given).
    public static func isElided(_ stored: UnsafeBufferPointer<UInt8>) -> Bool { stored.first == marker }

    /// `stored(_:of:)` for fields named `names`, whose parts `part` gives by field index.
    ///
    /// Runs for every document written, so it checks instead of rebuilding: the display is
    /// compact (`{"key":value,...}` with nothing between), its keys are in strictly increasing
    /// byte order (where `restored` puts the left-out ones back), and a left-out value is the
    /// part's text in quotes with nothing that JSON escapes (so it is exactly what `encoded`
    /// writes back). Anything else is stored as it is.
    public static func stored(_ display: Data, names: [[UInt8]], part: (Int) -> String?) -> Data {
        let asGiven = display.first == marker ? Data([marker, UInt8(ascii: "0"), UInt8(ascii: ":")]) + display : display
        return display.withUnsafeBytes { raw -> Data in
            let bytes = raw.bindMemory(to: UInt8.self)
            guard bytes.count < Int(Int32.max) else { return asGiven }
            var reader = FlatJSON.Reader(bytes: bytes)
            guard let entries = reader.entries(), !entries.isEmpty, bytes[bytes.count - 1] == UInt8(ascii: "}") else { return asGiven }
            var mask: UInt64 = 0
            var residue: [UInt8] = [marker]
            residue.reserveCapacity(bytes.count)
            var expectedKeyStart = 2  // {"
            var previous: Slice<UnsafeBufferPointer<UInt8>>?
            for entry in entries {
                let keyStart = Int(entry.keyStart), keyEnd = Int(entry.keyEnd), valueStart = Int(entry.valueStart), valueEnd = Int(entry.valueEnd)
                let key = bytes[keyStart..<keyEnd]
                guard keyStart == expectedKeyStart, valueStart == keyEnd + 2, previous.map({ $0.lexicographicallyPrecedes(key) }) ?? true else { return asGiven }
                previous = key
                expectedKeyStart = valueEnd + 2  // ,"
                if entry.plainKey, let field = names.firstIndex(where: { $0.elementsEqual(key) }),
                   valueEnd - valueStart >= 2, bytes[valueStart] == UInt8(ascii: "\""),
                   let part = part(field), Self.isPlain(bytes[valueStart + 1..<valueEnd - 1], equalTo: part) {
                    mask |= 1 << field
                    continue
                }
                residue.append(residue.count == 1 ? UInt8(ascii: "{") : UInt8(ascii: ","))
                residue.append(contentsOf: bytes[keyStart - 1..<valueEnd])
            }
            guard mask != 0, expectedKeyStart == bytes.count + 1 else { return asGiven }
            if residue.count == 1 { residue.append(UInt8(ascii: "{")) }
            residue.append(UInt8(ascii: "}"))
            var out: [UInt8] = [marker]
            out.append(contentsOf: String(mask).utf8)
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: residue.dropFirst())
            return Data(out)
        }
    }

    /// Whether `raw`, the bytes between a JSON string's quotes, holds `text` with nothing JSON
    /// escapes (so `encoded(text)` writes exactly these bytes in quotes).
    static func isPlain(_ raw: Slice<UnsafeBufferPointer<UInt8>>, equalTo text: String) -> Bool {
        guard raw.elementsEqual(text.utf8) else { return false }
        return !raw.contains { $0 < 0x20 || $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\"") }
    }

    /// The display `stored` holds, or nil when `stored` is a display as it was given.
    public static func restored(_ stored: UnsafeBufferPointer<UInt8>, names: [[UInt8]], values: [[UInt8]?]) -> [UInt8]? {
        guard isElided(stored) else { return nil }
        var index = 1
        var mask: UInt64 = 0
        while index < stored.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(stored[index]) {
            let (times, overflow1) = mask.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(UInt64(stored[index] - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return Array(stored) }
            mask = sum
            index += 1
        }
        // Anything malformed reads as it is stored (and so differs from its digest: drift).
        guard index > 1, index < stored.count, stored[index] == UInt8(ascii: ":") else { return Array(stored) }
        let residue = UnsafeBufferPointer(rebasing: stored[(index + 1)...])
        guard mask != 0 else { return Array(residue) }
        var reader = FlatJSON.Reader(bytes: residue)
        guard let entries = reader.entries() else { return Array(residue) }
        // The fields left out, by key; the kept entries are in key order already.
        var omitted: [(name: [UInt8], value: [UInt8])] = []
        for field in names.indices where mask & (1 << field) != 0 {
            if let value = values[field] { omitted.append((names[field], value)) }
        }
        omitted.sort { $0.name.lexicographicallyPrecedes($1.name) }
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(residue.count + omitted.reduce(0) { $0 + $1.name.count + $1.value.count + 4 })
        var next = 0
        func appendOmitted(_ item: (name: [UInt8], value: [UInt8])) {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: item.name)
            out.append(UInt8(ascii: "\""))
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: item.value)
        }
        for entry in entries {
            let key = residue[Int(entry.keyStart)..<Int(entry.keyEnd)]
            while next < omitted.count, omitted[next].name.lexicographicallyPrecedes(key) {
                appendOmitted(omitted[next])
                next += 1
            }
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: residue[Int(entry.keyStart) - 1..<Int(entry.valueEnd)])
        }
        while next < omitted.count {
            appendOmitted(omitted[next])
            next += 1
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
