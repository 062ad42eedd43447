import Foundation

/// The outbox events a projection applies, as it declares them. The others still move its
/// checkpoint, but are never handed to it, and the source skips them as it reads: a case search
/// reads no party's payload, an evidence index reads only evidence.
///
/// An event is included when its stream starts with one of `streamPrefixes` and its type is one
/// of `types` (either left nil includes every stream, or every type). Both are compared as UTF-8
/// bytes, whichever way the event is held (a String, or a column where SQLite holds it).
public struct EventSelection: Hashable, Sendable {
    public var streamPrefixes: [String]?
    public var types: Set<String>?

    public init(streamPrefixes: [String]? = nil, types: Set<String>? = nil) {
        self.streamPrefixes = streamPrefixes
        self.types = types
    }

    /// Every event.
    public static let all = EventSelection()

    public var includesAll: Bool { streamPrefixes == nil && types == nil }

    public func includes(_ event: EventEnvelope) -> Bool { includes(stream: event.streamID.rawValue, type: event.type) }

    public func includes(stream: String, type: String) -> Bool {
        if includesAll { return true }
        var stream = stream, type = type
        return stream.withUTF8 { stream in type.withUTF8 { type in includes(stream: UnsafeRawBufferPointer(stream), type: UnsafeRawBufferPointer(type)) } }
    }

    /// The test on UTF-8 bytes where a reader holds them (no String made for a skipped event).
    public func includes(stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer) -> Bool {
        if let streamPrefixes, !streamPrefixes.contains(where: { Self.starts(stream, with: $0) }) { return false }
        if let types, !types.contains(where: { Self.equals(type, $0) }) { return false }
        return true
    }

    private static func starts(_ bytes: UnsafeRawBufferPointer, with prefix: String) -> Bool {
        var prefix = prefix
        return prefix.withUTF8 { wanted in
            wanted.count <= bytes.count && (wanted.isEmpty || memcmp(bytes.baseAddress!, wanted.baseAddress!, wanted.count) == 0)
        }
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ text: String) -> Bool {
        var text = text
        return text.withUTF8 { wanted in
            wanted.count == bytes.count && (wanted.isEmpty || memcmp(bytes.baseAddress!, wanted.baseAddress!, wanted.count) == 0)
        }
    }
}

/// A range of the outbox read for a selection: the events it includes, and where the range
/// ends, whichever events were there.
public struct OutboxRange: Sendable {
    /// The included events of the range, in position order.
    public var events: [EventEnvelope]
    /// The last event read, included or not (nil when the range is empty): a checkpoint moves to
    /// it once the included events are applied.
    public var through: Checkpoint?
    /// How many events the range holds, included or not.
    public var count: Int

    public init(events: [EventEnvelope], through: Checkpoint?, count: Int) {
        self.events = events
        self.through = through
        self.count = count
    }

    /// `events`, all of them included.
    public init(_ events: [EventEnvelope], selecting selection: EventSelection) {
        self.init(
            events: selection.includesAll ? events : events.filter(selection.includes),
            through: events.last.map { Checkpoint(position: $0.position, committedAt: $0.committedAt) }, count: events.count)
    }

    /// The range cut to about its first `limit` events (what a prefetch that read ahead of a
    /// batch keeps), ending at an event whose commit time is known: the last included one within
    /// the first `limit` positions (positions are gap-free), or, when there is none, the whole
    /// range. The events after the cut are read again with the next batch.
    public func prefix(_ limit: Int, after position: OutboxPosition) -> OutboxRange {
        guard count > limit else { return self }
        if events.count == count { return OutboxRange(Array(events.prefix(limit)), selecting: .all) }
        let cut = OutboxPosition(position.rawValue + Int64(limit))
        let kept = Array(events.prefix { $0.position <= cut })
        guard let last = kept.last else { return self }
        return OutboxRange(events: kept, through: Checkpoint(position: last.position, committedAt: last.committedAt), count: limit)
    }
}
