import Foundation

/// How much a finding matters. `canon check` exits non-zero when any finding is an error.
public enum FindingSeverity: String, Codable, Sendable, Comparable {
    case error, warning, note

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
    private var rank: Int { switch self { case .error: 0; case .warning: 1; case .note: 2 } }
}

/// One problem in a portfolio: which rule, how bad, which store and field, where, and how to fix it.
public struct PortfolioFinding: Error, Hashable, Sendable {
    public var rule: PortfolioRule
    public var severity: FindingSeverity
    public var message: String
    public var store: String?
    public var field: String?
    public var location: FilePosition
    public var hint: String

    public init(
        rule: PortfolioRule, message: String, store: String? = nil, field: String? = nil, location: FilePosition,
        hint: String? = nil, severity: FindingSeverity? = nil
    ) {
        self.rule = rule
        self.severity = severity ?? rule.severity
        self.message = message
        self.store = store
        self.field = field
        self.location = location
        self.hint = hint ?? rule.hint
    }
}

/// The rules `canon check` applies, from the source article's production checklist and design
/// smells, plus the schema rules that make a malformed file a finding instead of a crash.
public enum PortfolioRule: String, CaseIterable, Codable, Sendable {
    // Schema: the file itself.
    case yamlSyntax = "yaml-syntax"
    case unknownKey = "unknown-key"
    case wrongType = "wrong-type"
    case missingField = "missing-field"
    case invalidValue = "invalid-value"
    // Discipline: what the file says.
    case storeWithoutRole = "store-without-role"
    case duplicateStore = "duplicate-store"
    case noCanonicalStore = "no-canonical-store"
    case multipleWriteOwners = "multiple-write-owners"
    case ownerNotCanonical = "write-owner-not-canonical"
    case derivedWithoutRebuild = "derived-without-rebuild"
    case piiUnprotected = "pii-unprotected"
    case cacheFeedsSensitiveOperation = "cache-feeds-sensitive-operation"
    case derivedExecutesCommands = "derived-executes-commands"
    case unboundedEventual = "unbounded-eventual-consistency"
    case freshnessContractMissing = "freshness-contract-missing"
    case freshnessMetricMissing = "freshness-metric-missing"
    case freshnessThresholdsInverted = "freshness-thresholds-inverted"
    case ownerMissing = "owner-missing"
    case runbookMissing = "runbook-missing"
    case backupRestoreMissing = "backup-restore-missing"
    case exitPlanMissing = "exit-plan-missing"
    case analyticsWithoutAsOf = "analytics-without-as-of"
    case vectorWithoutModelVersion = "vector-without-model-version"
    case dualWrite = "dual-write"
    case neverStaleReadsDerived = "never-stale-reads-derived"
    case undeclaredStore = "undeclared-store"
    case lifecycleIncomplete = "lifecycle-incomplete"
    case operationWithoutStaleness = "operation-without-staleness-policy"
    case piiWithoutEncryption = "pii-without-encryption"
    case batchWindowTooLong = "batch-window-too-long"

    /// A stable id for SARIF and scripts: `CANON-S…` for schema rules, `CANON-P…` for discipline.
    public var id: String {
        let index = Self.allCases.firstIndex(of: self)!
        let schemaCount = 5
        return index < schemaCount
            ? "CANON-S\(String(format: "%03d", index + 1))"
            : "CANON-P\(String(format: "%03d", index - schemaCount + 1))"
    }

    public var severity: FindingSeverity {
        switch self {
        case .freshnessMetricMissing, .freshnessThresholdsInverted, .runbookMissing, .backupRestoreMissing, .exitPlanMissing,
             .lifecycleIncomplete, .piiWithoutEncryption:
            .warning
        default:
            .error
        }
    }

    /// One line saying what the rule wants.
    public var summary: String {
        switch self {
        case .yamlSyntax: "The portfolio must be valid YAML."
        case .unknownKey: "Every key must be one the portfolio format defines."
        case .wrongType: "Every field must have the type the format defines."
        case .missingField: "Required fields must be present."
        case .invalidValue: "Enumerated fields must use one of their allowed values."
        case .storeWithoutRole: "Every store declares its role."
        case .duplicateStore: "Store names are unique."
        case .noCanonicalStore: "A portfolio has at least one canonical store."
        case .multipleWriteOwners: "Each fact has exactly one canonical write owner."
        case .ownerNotCanonical: "A fact's write owner is an authoritative store (canonical, or asset for binaries), never a derived one."
        case .derivedWithoutRebuild: "A derived store has a rebuild path, or it is not derived."
        case .piiUnprotected: "A derived store holding PII filters by authorization and masks every field its source masks."
        case .cacheFeedsSensitiveOperation: "A cache is never the source of a sensitive or never-stale operation."
        case .derivedExecutesCommands: "Derived stores never execute commands."
        case .unboundedEventual: "Eventual consistency states its bound."
        case .freshnessContractMissing: "A derived store declares its normal p95 lag and its alert threshold."
        case .freshnessMetricMissing: "A derived store names the metric that measures its freshness."
        case .freshnessThresholdsInverted: "The alert threshold is above the normal p95 lag."
        case .ownerMissing: "Every store has an owner."
        case .runbookMissing: "Every store has a runbook."
        case .backupRestoreMissing: "Every store says how it is backed up and restored."
        case .exitPlanMissing: "Every store has an exit plan."
        case .analyticsWithoutAsOf: "An analytics store answers with as-of semantics."
        case .vectorWithoutModelVersion: "A vector store names its embedding model and version."
        case .dualWrite: "A derived store is fed only from the outbox."
        case .neverStaleReadsDerived: "An operation that must not read stale data reads only canonical stores."
        case .undeclaredStore: "Every store referenced anywhere is declared."
        case .lifecycleIncomplete: "Every store says what delete, restrict, retention and legal hold do in it."
        case .operationWithoutStaleness: "Every operation declares its staleness policy."
        case .piiWithoutEncryption: "A store holding PII states its encryption."
        case .batchWindowTooLong: "A store's batch window is shorter than its normal p95 lag."
        }
    }

    /// How to fix a finding of this rule.
    public var hint: String {
        switch self {
        case .yamlSyntax: "fix the YAML at the position shown (indentation, a missing colon or quote)"
        case .unknownKey: "fix the spelling or remove the key"
        case .wrongType: "write the value with the expected type"
        case .missingField: "add the field"
        case .invalidValue: "use one of the allowed values"
        case .storeWithoutRole: "add `role:` (canonical, projection, cache, analytics, integration, archive or asset)"
        case .duplicateStore: "rename one of the stores; names identify stores everywhere"
        case .noCanonicalStore: "declare the store that owns the facts with `role: canonical`"
        case .multipleWriteOwners: "keep one canonical owner; list the other stores under `appears_in`"
        case .ownerNotCanonical: "make the owner the canonical store; derived stores only show the fact"
        case .derivedWithoutRebuild: "add `rebuild: {supported: true, source: outbox, cutover: blue-green}`, or declare the store canonical and back it up"
        case .piiUnprotected: "set `security.authorization_filter: true`, list the PII the store holds in `pii_fields`, and mask (`field_masking: true`, `masked_fields`) each one its source masks"
        case .cacheFeedsSensitiveOperation: "read canonical state for this operation; a cache may only speed up non-sensitive reads"
        case .derivedExecutesCommands: "set `authority.executes_commands: false`; send commands to the canonical store"
        case .unboundedEventual: "add `bound:` (such as 5s) and measure it"
        case .freshnessContractMissing: "add `freshness: {p95: …, alert_after: …, metric: …}`"
        case .freshnessMetricMissing: "add `freshness.metric:` naming the lag metric"
        case .freshnessThresholdsInverted: "make `alert_after` larger than `p95`"
        case .ownerMissing: "add `owner:` naming the team that answers for the store"
        case .runbookMissing: "add `runbook:` pointing at the runbook"
        case .backupRestoreMissing: "add `backup: {method: …, restore: …}`; for a derived store, restore can be `rebuild`"
        case .exitPlanMissing: "add `exit_plan:` saying how the store would be retired or replaced"
        case .analyticsWithoutAsOf: "set `as_of: true` and return the position and time each answer is true as of"
        case .vectorWithoutModelVersion: "add `embedding: {model: …, version: …}`; a model change is a rebuild"
        case .dualWrite: "feed the store from the outbox: `source: {store: <canonical>, via: outbox}`"
        case .neverStaleReadsDerived: "read (or rehydrate from) the canonical store in this operation"
        case .undeclaredStore: "declare the store under `stores`, or fix the name"
        case .lifecycleIncomplete: "add `lifecycle: {delete: …, restrict: …, retention: …, legal_hold: …}`"
        case .operationWithoutStaleness: "add `staleness:` (allowed, allowed-with-freshness or never)"
        case .piiWithoutEncryption: "add `security.encryption:` (such as at-rest)"
        case .batchWindowTooLong: "shorten `freshness.batch_window` (a few percent of `p95`), or remove it"
        }
    }
}
