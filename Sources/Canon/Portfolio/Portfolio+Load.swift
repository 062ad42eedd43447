extension Portfolio {
    /// What reading and checking a portfolio file gave: the portfolio (nil when the file could not
    /// be read as one) and every finding, schema and rule findings together, in file order.
    public struct CheckResult: Sendable {
        public var portfolio: Portfolio?
        public var findings: [PortfolioFinding]
        public var file: String

        public var errors: [PortfolioFinding] { findings.filter { $0.severity == .error } }
        public var hasErrors: Bool { !errors.isEmpty }

        /// The portfolio, when it has no error finding.
        ///
        /// - Throws: `PortfolioError.invalid` listing the errors.
        public func requireValid() throws(PortfolioError) -> Portfolio {
            guard let portfolio, !hasErrors else { throw PortfolioError.invalid(file: file, errors: errors) }
            return portfolio
        }
    }

    /// Reads a portfolio from YAML text and runs every rule on it. Never throws: malformed YAML,
    /// unknown keys and wrong types are findings with their positions.
    public static func load(yaml text: String, file: String = "portfolio.yaml") -> CheckResult {
        let sink = FindingSink()
        let root: PortfolioNode?
        switch PortfolioNode.parse(text) {
        case .success(let node): root = node
        case .failure(let finding): return CheckResult(portfolio: nil, findings: [finding], file: file)
        }
        guard let root, var reader = MappingReader(root, path: "", sink: sink) else {
            sink.add(PortfolioFinding(rule: .missingField, message: "the portfolio is empty; it needs at least `stores`", location: .start))
            return CheckResult(portfolio: nil, findings: sink.findings, file: file)
        }
        let portfolio = read(&reader, sink: sink)
        reader.finish()
        sink.currentStore = nil
        let ruleFindings = PortfolioRules.check(portfolio)
        let findings = (sink.findings + ruleFindings).sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }
        return CheckResult(portfolio: portfolio, findings: findings, file: file)
    }

    private static func read(_ reader: inout MappingReader, sink: FindingSink) -> Portfolio {
        var name = "portfolio"
        var description: String?
        if var header = reader.mapping("portfolio") {
            name = header.string("name", required: true)?.value ?? name
            description = header.string("description")?.value
            header.finish()
        } else {
            reader.missing("portfolio")
        }
        if reader.keyLocation("stores") == nil { reader.missing("stores") }
        let stores = reader.list("stores").compactMap { entry in
            var entry = entry
            return readStore(&entry, sink: sink)
        }
        sink.currentStore = nil
        let responsibilities = reader.list("responsibilities").compactMap { entry -> Responsibility? in
            var entry = entry
            defer { entry.finish() }
            guard let fact = entry.string("fact", required: true) else { return nil }
            let owners = entry.strings("owner")
            if owners.isEmpty { entry.missing("owner") }
            return Responsibility(fact: fact, owners: owners, appearsIn: entry.strings("appears_in"), location: entry.location)
        }
        let contracts = reader.list("consistency").map { entry -> ConsistencyContract in
            var entry = entry
            defer { entry.finish() }
            return ConsistencyContract(
                from: entry.string("from", required: true), to: entry.string("to", required: true),
                model: entry.enumeration("model", ConsistencyModel.self, required: true), bound: entry.duration("bound"),
                mechanism: entry.string("mechanism"), location: entry.location)
        }
        let operations = reader.list("operations").compactMap { entry -> OperationDeclaration? in
            var entry = entry
            defer { entry.finish() }
            guard let name = entry.string("name", required: true) else { return nil }
            return OperationDeclaration(
                name: name, staleness: entry.enumeration("staleness", StalenessPolicy.self), reads: entry.strings("reads"),
                sensitive: entry.bool("sensitive"), description: entry.string("description"), location: entry.location)
        }
        return Portfolio(name: name, description: description, stores: stores, responsibilities: responsibilities, contracts: contracts, operations: operations)
    }

    private static func readStore(_ entry: inout MappingReader, sink: FindingSink) -> StoreDeclaration? {
        sink.currentStore = nil
        guard let name = entry.string("name", required: true) else {
            entry.finish()
            return nil
        }
        sink.currentStore = name.value
        var store = StoreDeclaration(name: name, location: entry.location)
        store.status = entry.enumeration("status", StoreStatus.self, required: true)
        store.role = entry.enumeration("role", StoreRole.self)
        store.engine = entry.string("engine")
        store.scaleOutEngine = entry.string("scale_out_engine")
        store.dataModel = entry.enumeration("data_model", DataModel.self)
        store.owner = entry.string("owner")
        store.description = entry.string("description")
        store.useCases = entry.strings("use_cases")
        store.alternatives = entry.strings("alternatives")
        if var source = entry.mapping("source") {
            store.source = .init(store: source.string("store", required: true), via: source.string("via", required: true), location: source.location)
            source.finish()
        }
        if var freshness = entry.mapping("freshness") {
            store.freshness = .init(
                p95: freshness.duration("p95"), alertAfter: freshness.duration("alert_after"), metric: freshness.string("metric"),
                batchWindow: freshness.duration("batch_window"), location: freshness.location)
            freshness.finish()
        }
        if var authority = entry.mapping("authority") {
            store.authority = .init(
                executesCommands: authority.bool("executes_commands"),
                rehydrateBeforeSensitiveAction: authority.bool("rehydrate_before_sensitive_action"), location: authority.location)
            authority.finish()
        }
        if var rebuild = entry.mapping("rebuild") {
            store.rebuild = .init(
                supported: rebuild.bool("supported"), source: rebuild.string("source"),
                estimatedDuration: rebuild.duration("estimated_duration"), cutover: rebuild.string("cutover"), location: rebuild.location)
            rebuild.finish()
        }
        if var security = entry.mapping("security") {
            store.security = .init(
                pii: security.bool("pii"), authorizationFilter: security.bool("authorization_filter"),
                fieldMasking: security.bool("field_masking"), maskedFields: security.strings("masked_fields"),
                piiFields: security.strings("pii_fields"), encryption: security.string("encryption"), location: security.location)
            security.finish()
        }
        if var evolution = entry.mapping("schema_evolution") {
            store.schemaEvolution = .init(
                versionedDocuments: evolution.bool("versioned_documents"), version: evolution.integer("version"), location: evolution.location)
            evolution.finish()
        }
        if var lifecycle = entry.mapping("lifecycle") {
            store.lifecycle = .init(
                delete: lifecycle.string("delete"), restrict: lifecycle.string("restrict"), retention: lifecycle.string("retention"),
                retentionPeriod: lifecycle.duration("retention_period"), legalHold: lifecycle.string("legal_hold"), location: lifecycle.location)
            lifecycle.finish()
        }
        if var observability = entry.mapping("observability") {
            store.observability = .init(metrics: observability.strings("metrics"), location: observability.location)
            observability.finish()
        }
        if var backup = entry.mapping("backup") {
            store.backup = .init(method: backup.string("method"), restore: backup.string("restore"), location: backup.location)
            backup.finish()
        }
        store.runbook = entry.string("runbook")
        store.exitPlan = entry.string("exit_plan")
        store.cost = entry.string("cost")
        store.asOf = entry.bool("as_of")
        if var embedding = entry.mapping("embedding") {
            store.embedding = .init(
                model: embedding.string("model"), version: embedding.string("version"), dimensions: embedding.integer("dimensions"),
                location: embedding.location)
            embedding.finish()
        }
        entry.finish()
        return store
    }
}

/// A portfolio that cannot be used: the runtime refuses to start with one.
public struct PortfolioError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let findings: [PortfolioFinding]

    public var description: String { message }

    public static func invalid(file: String, errors: [PortfolioFinding]) -> PortfolioError {
        let lines = errors.prefix(10).map { "  \(file):\($0.location) \($0.rule.id) \($0.message)" }.joined(separator: "\n")
        return PortfolioError(
            message: "the portfolio \(file) has \(errors.count) error(s); run `canon check \(file)`:\n\(lines)", findings: errors)
    }

    /// The runtime opened a store that the portfolio does not declare (or declares only as planned).
    public static func undeclaredStore(_ name: String, role: StoreRole, file: String) -> PortfolioError {
        PortfolioError(
            message: "store \"\(name)\" (\(role.rawValue)) is not declared live in \(file); declare it under `stores` with `status: live` before opening it",
            findings: [])
    }

    public static func roleMismatch(_ name: String, declared: StoreRole?, opened: StoreRole, file: String) -> PortfolioError {
        PortfolioError(
            message: "store \"\(name)\" is opened as \(opened.rawValue) but \(file) declares it \(declared?.rawValue ?? "without a role")",
            findings: [])
    }
}
