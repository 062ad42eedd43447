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
        public static let evidenceBinaries = "evidence-binaries"
    }
}

/// The platform's operations, named as in the portfolio. Each reads through a `ReadPolicy`, so an
/// operation declared never-stale cannot be wired to a derived store.
public enum PlatformOperation: String, CaseIterable, Sendable {
    case searchCases = "search-cases"
    case viewCaseTimeline = "view-case-timeline"
    case viewCase = "view-case"
    case transitionCase = "transition-case"
    case restrictCase = "restrict-case"
    case assignInvestigator = "assign-investigator"
    case viewRestrictedEvidence = "view-restricted-evidence"
    case generateEnforcementNotice = "generate-enforcement-notice"
}
