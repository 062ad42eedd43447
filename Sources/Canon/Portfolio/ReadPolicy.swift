import Synchronization

/// The portfolio's staleness policies, enforced on every read an operation makes.
///
/// Each operation asks before it touches a store: `try policy.admit("assign-investigator", reads: "canonical")`.
/// The policy refuses a read the portfolio does not declare, and, whatever the declaration says,
/// it refuses an operation declared `staleness: never` any derived store: that operation reads
/// (or rehydrates from) canonical state.
///
/// ```swift
/// let policy = ReadPolicy(portfolio)
/// try policy.validate(["assign-investigator": ["canonical"]])  // at start-up: refuse bad wiring
/// try policy.admit("search-cases", reads: "case-search")        // at each read
/// ```
public struct ReadPolicy: Sendable {
    public let portfolio: Portfolio
    private let recorder: ReadRecorder?

    public init(_ portfolio: Portfolio, recorder: ReadRecorder? = nil) {
        self.portfolio = portfolio
        self.recorder = recorder
    }

    /// Lets `operation` read `store`, or says exactly why not.
    ///
    /// - Throws: `ReadPolicyViolation` when the operation or store is undeclared, the operation is
    ///   not declared to read the store, or a never-stale operation would read a derived store.
    public func admit(_ operation: String, reads store: String) throws(ReadPolicyViolation) {
        try check(operation, reads: store)
        recorder?.record(operation: operation, store: store)
    }

    /// Checks the reads each operation is wired to make, so a server with bad wiring does not start.
    public func validate(_ wiring: [String: [String]]) throws(ReadPolicyViolation) {
        for (operation, stores) in wiring.sorted(by: { $0.key < $1.key }) {
            for store in stores { try check(operation, reads: store) }
        }
    }

    private func check(_ operation: String, reads store: String) throws(ReadPolicyViolation) {
        guard let declared = portfolio.operation(named: operation) else {
            throw .undeclaredOperation(operation)
        }
        guard let target = portfolio.store(named: store) else {
            throw .undeclaredStore(store, operation: operation)
        }
        if declared.staleness?.value == .never && target.isDerived {
            throw .neverStaleReadsDerived(operation, store: store, role: target.role!.value)
        }
        guard declared.reads.contains(where: { $0.value == store }) else {
            throw .undeclaredRead(operation, store: store, declared: declared.reads.map(\.value))
        }
    }
}

/// Why an operation may not read a store. The runtime refuses; it never falls back to a stale read.
public struct ReadPolicyViolation: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case undeclaredOperation, undeclaredStore, undeclaredRead, neverStaleReadsDerived
    }

    public let code: Code
    public let operation: String
    public let store: String?
    public let message: String

    public var description: String { message }

    public static func undeclaredOperation(_ operation: String) -> Self {
        Self(code: .undeclaredOperation, operation: operation, store: nil,
             message: "operation \(operation) is not declared in the portfolio; declare it under `operations` with its staleness policy")
    }

    public static func undeclaredStore(_ store: String, operation: String) -> Self {
        Self(code: .undeclaredStore, operation: operation, store: store,
             message: "operation \(operation) reads store \(store), which the portfolio does not declare")
    }

    public static func undeclaredRead(_ operation: String, store: String, declared: [String]) -> Self {
        Self(code: .undeclaredRead, operation: operation, store: store,
             message: "operation \(operation) may read only \(declared.joined(separator: ", ")), not \(store)")
    }

    public static func neverStaleReadsDerived(_ operation: String, store: String, role: StoreRole) -> Self {
        Self(code: .neverStaleReadsDerived, operation: operation, store: store,
             message: "operation \(operation) must never read stale data, so it may not read \(store) (a \(role.rawValue) store); read canonical state")
    }
}

/// Records the reads admitted, so a test can prove what each operation actually read.
public final class ReadRecorder: Sendable {
    public struct Read: Hashable, Sendable {
        public var operation: String
        public var store: String
    }

    private let reads = Mutex<[Read]>([])

    public init() {}

    func record(operation: String, store: String) {
        reads.withLock { $0.append(Read(operation: operation, store: store)) }
    }

    /// Every read admitted so far, in order.
    public var all: [Read] { reads.withLock { $0 } }

    /// The stores `operation` read.
    public func stores(readBy operation: String) -> Set<String> {
        Set(all.filter { $0.operation == operation }.map(\.store))
    }
}

extension Portfolio {
    /// Lets the runtime open a store only when the portfolio declares it live, with this role.
    ///
    /// - Throws: `PortfolioError` naming the store and what the portfolio says instead.
    public func admit(store name: String, role: StoreRole, file: String = "portfolio.yaml") throws(PortfolioError) {
        guard let declared = store(named: name), declared.isLive else {
            throw PortfolioError.undeclaredStore(name, role: role, file: file)
        }
        guard declared.role?.value == role else {
            throw PortfolioError.roleMismatch(name, declared: declared.role?.value, opened: role, file: file)
        }
    }

    /// The batch windows the live stores declare (`freshness.batch_window`), by store name: how
    /// long each store's agent may linger after a partial batch.
    public var batchWindows: [String: Duration] {
        var windows: [String: Duration] = [:]
        for store in stores where store.isLive {
            if let window = store.freshness?.batchWindow?.value { windows[store.name.value] = window.duration }
        }
        return windows
    }

    /// `configuration` with this portfolio's batch windows as lingers, where the configuration
    /// does not set a projection's linger itself.
    public func applyingBatchWindows(to configuration: ProjectionCoordinator.Configuration) -> ProjectionCoordinator.Configuration {
        var configured = configuration
        configured.lingers = batchWindows.merging(configuration.lingers) { _, explicit in explicit }
        return configured
    }
}
