import Canon
import Synchronization

/// A fault injector a test arms for the next commit that reaches a point; it fires once.
public final class FaultSwitch: Sendable {
    private let armed = Mutex<Set<FaultPoint>>([])

    public init() {}

    /// Fails the next commit that reaches `point`.
    public func arm(_ point: FaultPoint) { armed.withLock { _ = $0.insert(point) } }

    public var injector: FaultInjector {
        { [self] point in
            let fire = self.armed.withLock { $0.remove(point) != nil }
            if fire { throw CanonicalStoreError.injectedFault(point) }
        }
    }
}
