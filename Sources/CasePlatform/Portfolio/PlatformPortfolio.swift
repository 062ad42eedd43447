import Canon

/// The reference platform's portfolio (`portfolio.yaml`, compiled into the binary) and the names
/// the code uses for its stores and operations, which the portfolio must declare.
public enum PlatformPortfolio {
    /// The shipped portfolio's text.
    public static var yaml: String { String(decoding: PackageResources.portfolio_yaml, as: UTF8.self) }

    /// Reads and checks the shipped portfolio.
    public static func load() -> Portfolio.CheckResult {
        Portfolio.load(yaml: yaml, file: "portfolio.yaml")
    }

    /// The store names the platform opens.
    public enum Store {
        public static let canonical = "canonical"
        public static let caseSearch = "case-search"
        public static let caseTimeline = "case-timeline"
        public static let evidenceSemantic = "evidence-semantic"
        public static let evidenceBinaries = "evidence-binaries"
    }
}

extension RetentionPolicy {
    /// The canonical store's declared `lifecycle.retention_period` (none when it declares none).
    public init(_ portfolio: Portfolio) {
        self.init(period: portfolio.store(named: PlatformPortfolio.Store.canonical)?.lifecycle?.retentionPeriod?.value.duration)
    }
}

/// The platform's operations, named as in the portfolio. Every HTTP route serves one, and reads
/// only through a `ReadPolicy`, so an operation declared never-stale cannot read a derived store.
public enum PlatformOperation: String, CaseIterable, Sendable {
    case openCase = "open-case"
    case viewCase = "view-case"
    case viewCaseHistory = "view-case-history"
    case transitionCase = "transition-case"
    case assignInvestigator = "assign-investigator"
    case restrictCase = "restrict-case"
    case purgeCase = "purge-case"
    case placeLegalHold = "place-legal-hold"
    case releaseLegalHold = "release-legal-hold"
    case viewLegalHold = "view-legal-hold"
    case changeTeam = "change-team"
    case linkParty = "link-party"
    case viewCaseParties = "view-case-parties"
    case registerParty = "register-party"
    case viewParty = "view-party"
    case addEvidence = "add-evidence"
    case viewRestrictedEvidence = "view-restricted-evidence"
    case generateEnforcementNotice = "generate-enforcement-notice"
    case searchCases = "search-cases"
    case viewCaseTimeline = "view-case-timeline"
    case findSimilarEvidence = "find-similar-evidence"

    /// The stores the code of this operation reads. Validated against the portfolio at start-up.
    public var reads: [String] {
        switch self {
        // Results come from the search store and are re-authorized in one batch on canonical state.
        case .searchCases: [PlatformPortfolio.Store.caseSearch, PlatformPortfolio.Store.canonical]
        case .viewCaseTimeline: [PlatformPortfolio.Store.canonical, PlatformPortfolio.Store.caseTimeline]
        // Candidates come from the vectors; each is re-authorized and titled from canonical state.
        case .findSimilarEvidence: [PlatformPortfolio.Store.evidenceSemantic, PlatformPortfolio.Store.canonical]
        default: [PlatformPortfolio.Store.canonical]
        }
    }

    /// Every operation's reads, for `ReadPolicy.validate`.
    public static var wiring: [String: [String]] {
        Dictionary(uniqueKeysWithValues: allCases.map { ($0.rawValue, $0.reads) })
    }
}

extension ReadPolicy {
    /// Lets `operation` read `store`, or throws `ReadPolicyViolation`.
    public func admit(_ operation: PlatformOperation, reads store: String) throws(ReadPolicyViolation) {
        try admit(operation.rawValue, reads: store)
    }
}
