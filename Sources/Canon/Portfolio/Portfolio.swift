/// The portfolio: every store of a system with its role, owner, freshness contract, authority,
/// rebuild path, security and lifecycle; which store owns each fact; the consistency contracts
/// between stores; and each operation's staleness policy. `canon check` lints it and the runtime
/// obeys it. The file format is described field by field in `docs/portfolio.md`.
///
/// ```swift
/// let result = Portfolio.load(yaml: text, file: "portfolio.yaml")
/// let findings = result.findings            // schema findings and rule findings together
/// let portfolio = try result.requireValid() // throws PortfolioError when any finding is an error
/// ```
public struct Portfolio: Sendable {
    public var name: String
    public var description: String?
    public var stores: [StoreDeclaration]
    public var responsibilities: [Responsibility]
    public var contracts: [ConsistencyContract]
    public var operations: [OperationDeclaration]

    public init(name: String, description: String? = nil, stores: [StoreDeclaration], responsibilities: [Responsibility] = [],
                contracts: [ConsistencyContract] = [], operations: [OperationDeclaration] = []) {
        self.name = name
        self.description = description
        self.stores = stores
        self.responsibilities = responsibilities
        self.contracts = contracts
        self.operations = operations
    }

    public func store(named name: String) -> StoreDeclaration? { stores.first { $0.name.value == name } }
    public func operation(named name: String) -> OperationDeclaration? { operations.first { $0.name.value == name } }
}

/// What a store is for. Canonical and asset stores are authoritative; the others are derived and
/// must be rebuildable from the canonical source.
public enum StoreRole: String, CaseIterable, Codable, Sendable {
    case canonical, projection, cache, analytics, integration, archive, asset

    /// Derived stores hold copies that can be rebuilt; they never own a fact.
    public var isDerived: Bool {
        switch self {
        case .canonical, .asset: false
        case .projection, .cache, .analytics, .integration, .archive: true
        }
    }
}

/// Whether a declared store exists yet.
public enum StoreStatus: String, CaseIterable, Codable, Sendable {
    case planned, live
}

/// The shape of the data a store keeps.
public enum DataModel: String, CaseIterable, Codable, Sendable {
    case relational, document, search, timeline, timeseries, graph, vector, keyValue = "key-value", blob
}

/// How stale an operation may read.
public enum StalenessPolicy: String, CaseIterable, Codable, Sendable {
    /// Any derived store may answer.
    case allowed
    /// A derived store may answer, and the answer shows how fresh it is.
    case allowedWithFreshness = "allowed-with-freshness"
    /// Only canonical state may answer (read it, or rehydrate from it).
    case never
}

/// The consistency a contract between two stores promises.
public enum ConsistencyModel: String, CaseIterable, Codable, Sendable {
    case strong, eventual, readYourWrites = "read-your-writes"
}

/// A length of time in a contract, written `500ms`, `5s`, `2m`, `1h` or `7d`.
public struct ContractDuration: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var milliseconds: Int64
    public var text: String

    public init?(_ text: String) {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let (suffix, factor) = units.first(where: { unit in
            trimmed.hasSuffix(unit.0) && Double(trimmed.dropLast(unit.0.count)) != nil
        }), let amount = Double(trimmed.dropLast(suffix.count)), amount >= 0 else { return nil }
        // Finite and at most about 292 million years (Int64 milliseconds): `1e19ms` or `infs`
        // is not a duration, and converting it would trap.
        let milliseconds = amount * Double(factor)
        guard milliseconds.isFinite, milliseconds < 9.2e18 else { return nil }
        self.milliseconds = Int64(milliseconds)
        self.text = trimmed
    }

    public var description: String { text }
    public var duration: Duration { .milliseconds(milliseconds) }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.milliseconds < rhs.milliseconds }
}

/// One store of the portfolio.
public struct StoreDeclaration: Sendable {
    public var name: Located<String>
    public var location: FilePosition
    public var status: Located<StoreStatus>?
    public var role: Located<StoreRole>?
    public var engine: Located<String>?
    /// The engine of the same store when Canon runs scaled out.
    public var scaleOutEngine: Located<String>?
    public var dataModel: Located<DataModel>?
    public var owner: Located<String>?
    public var description: Located<String>?
    public var useCases: [Located<String>] = []
    /// What else was considered for this store, for its architecture decision record.
    public var alternatives: [Located<String>] = []
    public var source: Source?
    public var freshness: FreshnessContract?
    public var authority: Authority?
    public var rebuild: RebuildPath?
    public var security: Security?
    public var schemaEvolution: SchemaEvolution?
    public var lifecycle: Lifecycle?
    public var observability: Observability?
    public var backup: Backup?
    public var runbook: Located<String>?
    public var exitPlan: Located<String>?
    public var cost: Located<String>?
    /// Analytics only: answers carry the position and time they are true as of.
    public var asOf: Located<Bool>?
    /// Vector stores only: the model that made the vectors.
    public var embedding: Embedding?

    public var isLive: Bool { status?.value == .live }
    public var isDerived: Bool { role?.value.isDerived ?? false }

    /// Where a derived store's data comes from, and by which path.
    public struct Source: Sendable {
        public var store: Located<String>?
        /// `outbox` is the only path that is not a dual write.
        public var via: Located<String>?
        public var location: FilePosition
    }

    public struct FreshnessContract: Sendable {
        /// Normal lag at the 95th percentile.
        public var p95: Located<ContractDuration>?
        /// Lag past which the store is degraded and an alert fires.
        public var alertAfter: Located<ContractDuration>?
        /// The metric that measures the lag.
        public var metric: Located<String>?
        /// How long the store's agent may wait after a partial batch to gather more events into
        /// one write: lag spent on throughput, declared rather than hidden. Absent means none.
        public var batchWindow: Located<ContractDuration>?
        public var location: FilePosition
    }

    public struct Authority: Sendable {
        public var executesCommands: Located<Bool>?
        public var rehydrateBeforeSensitiveAction: Located<Bool>?
        public var location: FilePosition
    }

    public struct RebuildPath: Sendable {
        public var supported: Located<Bool>?
        public var source: Located<String>?
        public var estimatedDuration: Located<ContractDuration>?
        public var cutover: Located<String>?
        public var location: FilePosition
    }

    public struct Security: Sendable {
        public var pii: Located<Bool>?
        public var authorizationFilter: Located<Bool>?
        public var fieldMasking: Located<Bool>?
        public var maskedFields: [Located<String>] = []
        /// The personal data fields the store holds (`party.name`): with them, rule P007 asks a
        /// derived store to mask exactly those its source masks, no more.
        public var piiFields: [Located<String>] = []
        public var encryption: Located<String>?
        public var location: FilePosition
    }

    public struct SchemaEvolution: Sendable {
        public var versionedDocuments: Located<Bool>?
        public var version: Located<Int>?
        public var location: FilePosition
    }

    /// What delete, restrict, retention and legal hold do in this store.
    public struct Lifecycle: Sendable {
        public var delete: Located<String>?
        public var restrict: Located<String>?
        public var retention: Located<String>?
        /// How long a record is kept once it may go (a closed case, for the canonical store):
        /// within it a purge is refused, past it the retention job purges.
        public var retentionPeriod: Located<ContractDuration>?
        public var legalHold: Located<String>?
        public var location: FilePosition
    }

    public struct Observability: Sendable {
        public var metrics: [Located<String>] = []
        public var location: FilePosition
    }

    public struct Backup: Sendable {
        public var method: Located<String>?
        public var restore: Located<String>?
        public var location: FilePosition
    }

    public struct Embedding: Sendable {
        public var model: Located<String>?
        public var version: Located<String>?
        public var dimensions: Located<Int>?
        public var location: FilePosition
    }
}

/// One fact, its single canonical write owner, and the derived stores where it appears.
public struct Responsibility: Sendable {
    public var fact: Located<String>
    public var owners: [Located<String>]
    public var appearsIn: [Located<String>]
    public var location: FilePosition
}

/// What one store promises about its consistency with another.
public struct ConsistencyContract: Sendable {
    public var from: Located<String>?
    public var to: Located<String>?
    public var model: Located<ConsistencyModel>?
    /// How far behind `to` may be: required for eventual consistency.
    public var bound: Located<ContractDuration>?
    public var mechanism: Located<String>?
    public var location: FilePosition
}

/// An operation of the system, the stores it may read, and how stale they may be.
public struct OperationDeclaration: Sendable {
    public var name: Located<String>
    public var staleness: Located<StalenessPolicy>?
    public var reads: [Located<String>]
    /// A sensitive operation acts on what it reads (assign, disclose, enforce).
    public var sensitive: Located<Bool>?
    public var description: Located<String>?
    public var location: FilePosition
}
