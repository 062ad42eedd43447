/// The discipline rules, applied to a portfolio that was read (schema findings come from reading).
/// Each finding points at the field that breaks the rule, or at the store when the field is absent.
enum PortfolioRules {
    static func check(_ portfolio: Portfolio) -> [PortfolioFinding] {
        var findings: [PortfolioFinding] = []
        func add(_ rule: PortfolioRule, _ message: String, store: String? = nil, field: String? = nil, at location: FilePosition) {
            findings.append(PortfolioFinding(rule: rule, message: message, store: store, field: field, location: location))
        }
        let stores = Dictionary(portfolio.stores.map { ($0.name.value, $0) }, uniquingKeysWith: { first, _ in first })

        // Store names are unique; there is a canonical store.
        var seen: Set<String> = []
        for store in portfolio.stores where !seen.insert(store.name.value).inserted {
            add(.duplicateStore, "store \"\(store.name.value)\" is declared more than once", store: store.name.value, field: "name", at: store.name.location)
        }
        if !portfolio.stores.contains(where: { $0.role?.value == .canonical }) {
            // With no store at all, the finding points at the top of the file.
            add(.noCanonicalStore, portfolio.stores.isEmpty ? "the portfolio declares no store, so no store owns the facts"
                    : "no store has `role: canonical`, so no store owns the facts",
                field: portfolio.stores.isEmpty ? "stores" : "role", at: portfolio.stores.first?.location ?? FilePosition(line: 1, column: 1))
        }

        for store in portfolio.stores {
            findings += check(store, in: stores)
        }

        // Responsibilities: one canonical write owner per fact.
        var ownersByFact: [String: [(owner: Located<String>, fact: Located<String>)]] = [:]
        for responsibility in portfolio.responsibilities {
            for owner in responsibility.owners { ownersByFact[responsibility.fact.value, default: []].append((owner, responsibility.fact)) }
            for owner in responsibility.owners {
                if let store = stores[owner.value] {
                    if let role = store.role?.value, role.isDerived {
                        add(.ownerNotCanonical, "fact \(responsibility.fact.value) is owned by \(owner.value), a derived (\(role.rawValue)) store",
                            store: owner.value, field: "responsibilities.owner", at: owner.location)
                    }
                } else {
                    add(.undeclaredStore, "fact \(responsibility.fact.value) names owner \"\(owner.value)\", which is not declared",
                        store: owner.value, field: "responsibilities.owner", at: owner.location)
                }
            }
            for place in responsibility.appearsIn where stores[place.value] == nil {
                add(.undeclaredStore, "fact \(responsibility.fact.value) appears in \"\(place.value)\", which is not declared",
                    store: place.value, field: "responsibilities.appears_in", at: place.location)
            }
        }
        for (fact, owners) in ownersByFact.sorted(by: { $0.key < $1.key }) {
            let distinct = Set(owners.map(\.owner.value))
            if distinct.count > 1, let second = owners.first(where: { $0.owner.value != owners[0].owner.value }) {
                add(.multipleWriteOwners, "fact \(fact) has \(distinct.count) write owners: \(distinct.sorted().joined(separator: ", "))",
                    store: second.owner.value, field: "responsibilities.owner", at: second.owner.location)
            }
        }

        // Consistency contracts: declared stores, bounded eventual consistency.
        for contract in portfolio.contracts {
            for end in [contract.from, contract.to].compactMap({ $0 }) where stores[end.value] == nil {
                add(.undeclaredStore, "a consistency contract names \"\(end.value)\", which is not declared", store: end.value, field: "consistency", at: end.location)
            }
            if let model = contract.model, model.value == .eventual, contract.bound == nil {
                add(.unboundedEventual, "the contract \(contract.from?.value ?? "?") → \(contract.to?.value ?? "?") is eventual with no bound",
                    store: contract.to?.value, field: "consistency.bound", at: model.location)
            }
        }

        // Operations: staleness policy, and what never-stale and sensitive operations may read.
        for operation in portfolio.operations {
            guard let staleness = operation.staleness else {
                add(.operationWithoutStaleness, "operation \(operation.name.value) declares no staleness policy",
                    field: "operations.staleness", at: operation.name.location)
                continue
            }
            let sensitive = operation.sensitive?.value == true || staleness.value == .never
            for read in operation.reads {
                guard let store = stores[read.value] else {
                    add(.undeclaredStore, "operation \(operation.name.value) reads \"\(read.value)\", which is not declared",
                        store: read.value, field: "operations.reads", at: read.location)
                    continue
                }
                if sensitive && store.role?.value == .cache {
                    add(.cacheFeedsSensitiveOperation, "sensitive operation \(operation.name.value) reads the cache \(read.value)",
                        store: read.value, field: "operations.reads", at: read.location)
                } else if staleness.value == .never && store.isDerived {
                    add(.neverStaleReadsDerived,
                        "operation \(operation.name.value) must never read stale data but reads \(read.value), a \(store.role!.value.rawValue) store",
                        store: read.value, field: "operations.reads", at: read.location)
                }
            }
        }
        return findings
    }

    private static func check(_ store: StoreDeclaration, in stores: [String: StoreDeclaration]) -> [PortfolioFinding] {
        var findings: [PortfolioFinding] = []
        let name = store.name.value
        func add(_ rule: PortfolioRule, _ message: String, field: String, at location: FilePosition) {
            findings.append(PortfolioFinding(rule: rule, message: "store \(name): \(message)", store: name, field: field, location: location))
        }

        guard let role = store.role?.value else {
            add(.storeWithoutRole, "no role is declared", field: "role", at: store.name.location)
            return findings
        }
        if store.owner == nil { add(.ownerMissing, "no owner is declared", field: "owner", at: store.name.location) }
        if store.runbook == nil { add(.runbookMissing, "no runbook is declared", field: "runbook", at: store.name.location) }
        if store.exitPlan == nil { add(.exitPlanMissing, "no exit plan is declared", field: "exit_plan", at: store.name.location) }
        if store.backup?.method == nil || store.backup?.restore == nil {
            add(.backupRestoreMissing, "backup and restore are not both declared", field: "backup", at: store.backup?.location ?? store.name.location)
        }
        if let lifecycle = store.lifecycle {
            let missing = [("delete", lifecycle.delete), ("restrict", lifecycle.restrict), ("retention", lifecycle.retention), ("legal_hold", lifecycle.legalHold)]
                .filter { $0.1 == nil }.map(\.0)
            if !missing.isEmpty {
                add(.lifecycleIncomplete, "the lifecycle does not say what \(missing.joined(separator: ", ")) do", field: "lifecycle", at: lifecycle.location)
            }
        } else {
            add(.lifecycleIncomplete, "no lifecycle is declared (delete, restrict, retention, legal hold)", field: "lifecycle", at: store.name.location)
        }

        if let executes = store.authority?.executesCommands, executes.value, role != .canonical {
            add(.derivedExecutesCommands, "a \(role.rawValue) store may not execute commands", field: "authority.executes_commands", at: executes.location)
        }

        if role.isDerived {
            if store.rebuild?.supported?.value != true {
                add(.derivedWithoutRebuild, "a \(role.rawValue) store without a rebuild path cannot be recovered from canonical data",
                    field: "rebuild.supported", at: store.rebuild?.supported?.location ?? store.rebuild?.location ?? store.name.location)
            }
            if let source = store.source {
                if let via = source.via, via.value != "outbox" {
                    add(.dualWrite, "it is fed via \"\(via.value)\", not the outbox: that is a dual write", field: "source.via", at: via.location)
                }
                if let origin = source.store, stores[origin.value] == nil {
                    findings.append(PortfolioFinding(
                        rule: .undeclaredStore, message: "store \(name) is fed from \"\(origin.value)\", which is not declared",
                        store: name, field: "source.store", location: origin.location))
                }
            } else {
                add(.dualWrite, "no source is declared, so nothing shows it is fed from the outbox", field: "source", at: store.name.location)
            }
            if let freshness = store.freshness {
                if freshness.p95 == nil || freshness.alertAfter == nil {
                    add(.freshnessContractMissing, "the freshness contract needs both p95 and alert_after", field: "freshness", at: freshness.location)
                }
                if freshness.metric == nil {
                    add(.freshnessMetricMissing, "no metric measures its freshness", field: "freshness.metric", at: freshness.location)
                }
                if let p95 = freshness.p95, let alert = freshness.alertAfter, alert.value <= p95.value {
                    add(.freshnessThresholdsInverted, "alert_after \(alert.value) is not above p95 \(p95.value)", field: "freshness.alert_after", at: alert.location)
                }
                if let window = freshness.batchWindow, let p95 = freshness.p95, window.value >= p95.value {
                    add(.batchWindowTooLong, "batch_window \(window.value) is not below p95 \(p95.value)", field: "freshness.batch_window", at: window.location)
                }
            } else {
                add(.freshnessContractMissing, "no freshness contract is declared", field: "freshness", at: store.name.location)
            }
            if let security = store.security, security.pii?.value == true {
                if security.authorizationFilter?.value != true {
                    add(.piiUnprotected, "it holds PII without an authorization filter", field: "security.authorization_filter",
                        at: security.authorizationFilter?.location ?? security.pii!.location)
                }
                // The masked fields of the store it is fed from; unknown when that store or its
                // security is not declared, and then every PII store masks, as without pii_fields.
                let sourceSecurity = store.source?.store.flatMap { stores[$0.value] }?.security
                if security.piiFields.isEmpty || sourceSecurity == nil {
                    if security.fieldMasking?.value != true || security.maskedFields.isEmpty {
                        add(.piiUnprotected, "it holds PII without field masking (and masked_fields), and does not say which PII fields it holds (pii_fields)",
                            field: "security.field_masking", at: security.fieldMasking?.location ?? security.pii!.location)
                    }
                } else {
                    // It holds these fields: each one its source masks, it must mask too.
                    let sourceMasked = Set(sourceSecurity?.maskedFields.map(\.value) ?? [])
                    let masked = security.fieldMasking?.value == true ? Set(security.maskedFields.map(\.value)) : []
                    for field in security.piiFields where sourceMasked.contains(field.value) && !masked.contains(field.value) {
                        add(.piiUnprotected, "it holds \(field.value), which its source masks, without masking it", field: "security.pii_fields", at: field.location)
                    }
                }
            }
            if let security = store.security, security.pii?.value != true, let first = security.piiFields.first {
                add(.piiUnprotected, "it lists pii_fields but declares pii: false", field: "security.pii", at: security.pii?.location ?? first.location)
            }
        }
        if let security = store.security, let pii = security.pii, pii.value, security.encryption == nil {
            add(.piiWithoutEncryption, "it holds PII and declares no encryption", field: "security.encryption", at: pii.location)
        }
        if role == .analytics && store.asOf?.value != true {
            add(.analyticsWithoutAsOf, "an analytics store must answer as of a position and time", field: "as_of",
                at: store.asOf?.location ?? store.name.location)
        }
        if store.dataModel?.value == .vector && (store.embedding?.model == nil || store.embedding?.version == nil) {
            add(.vectorWithoutModelVersion, "a vector store must name its embedding model and version", field: "embedding",
                at: store.embedding?.location ?? store.dataModel!.location)
        }
        return findings
    }
}
