import Foundation

// The digest of each read model's content, in the field order its engines store it. An engine's
// SQL digest of stored content feeds the same fields in the same order.

extension SearchDocument {
    /// key, team, restricted, clearance, sort time (µs), each facet of `schema` (missing when
    /// absent), each text field of `schema` (empty when absent), display.
    public func driftDigest(_ schema: SearchSchema) -> UInt64 {
        var digest = DriftDigest()
        digest.add(key)
        digest.add(team)
        digest.add(restricted)
        digest.add(Int64(clearance))
        digest.add(Timestamp.microseconds(sortTime))
        for facet in schema.facetFields { digest.add(facets[facet]) }
        for field in schema.textFields { digest.add(text[field.name] ?? "") }
        digest.add(String(decoding: display, as: UTF8.self))
        return digest.value
    }
}

extension TimelineEntry {
    /// key, position, sequence, time (µs), kind, actor, summary, details as sorted-key JSON.
    /// A key's digest is the wrapping sum of its entries' digests.
    public var driftDigest: UInt64 { driftDigest(detailsJSON: detailsJSON) }

    /// `driftDigest` for a store that has the details' JSON at hand (`detailsJSON`).
    public func driftDigest(detailsJSON: String) -> UInt64 {
        Self.driftDigest(
            key: key, position: position.rawValue, sequence: Int64(sequence), at: Timestamp.microseconds(at), kind: kind, actor: actor,
            summary: summary, detailsJSON: detailsJSON)
    }

    /// `driftDigest` of an entry's stored columns (time in microseconds), for a store that
    /// checks its rows in Swift.
    public static func driftDigest(
        key: String, position: Int64, sequence: Int64, at: Int64, kind: String, actor: String, summary: String, detailsJSON: String
    ) -> UInt64 {
        var digest = DriftDigest()
        digest.add(key)
        digest.add(position)
        digest.add(sequence)
        digest.add(at)
        digest.add(kind)
        digest.add(actor)
        digest.add(summary)
        digest.add(detailsJSON)
        return digest.value
    }

    /// The details as engines store them: JSON with sorted keys, as `JSONEncoder` with
    /// `.sortedKeys` writes them. Written directly when every key is ASCII (the order is then
    /// the keys' byte order, as the encoder's); `JSONEncoder` took a tenth of a scaled-out
    /// worker's CPU here. Any other key goes through the encoder.
    public var detailsJSON: String {
        guard details.keys.allSatisfy({ $0.utf8.allSatisfy { $0 < 0x80 } }) else {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            return String(decoding: (try? encoder.encode(details)) ?? Data("{}".utf8), as: UTF8.self)
        }
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        bytes.reserveCapacity(64)
        for (index, key) in details.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            FlatJSONWriter.appendQuoted(key, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
            FlatJSONWriter.appendQuoted(details[key] ?? "", to: &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The digest of one key's whole timeline.
    public static func driftDigest(of entries: some Sequence<TimelineEntry>) -> UInt64 {
        entries.reduce(0) { $0 &+ $1.driftDigest }
    }
}

extension VectorDocument {
    /// The digest of the text that was (or should be) embedded.
    public var textDigest: Int64 {
        var digest = DriftDigest()
        digest.add(text)
        return digest.stored
    }

    /// key, group, source version, text digest, model weights hash: what the vector was made from.
    public func driftDigest(model: EmbeddingModelDescriptor) -> UInt64 {
        var digest = DriftDigest()
        digest.add(key)
        digest.add(group)
        digest.add(sourceVersion)
        digest.add(textDigest)
        digest.add(model.weightsSHA256)
        return digest.value
    }
}
