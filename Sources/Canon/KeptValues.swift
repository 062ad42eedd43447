import Synchronization

/// Values kept by key across requests, at most `capacity` of them: past it, the whole map starts
/// over (for small populations, such as the users tokens name, where an eviction order would
/// cost more than reading a few values again).
public final class KeptValues<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let values = Mutex<[Key: Value]>([:])
    public let capacity: Int

    public init(capacity: Int = 10_000) { self.capacity = max(1, capacity) }

    public subscript(key: Key) -> Value? { values.withLock { $0[key] } }

    public func keep(_ value: Value, for key: Key) {
        values.withLock { values in
            if values.count >= capacity, values[key] == nil { values.removeAll(keepingCapacity: true) }
            values[key] = value
        }
    }

    public func forget(_ key: Key) { _ = values.withLock { $0.removeValue(forKey: key) } }
}
