import Yams

/// One Open Data Contract Standard (ODCS) v3.1.0 contract per store, for `canon export --odcs`.
///
/// - Canon's own declarations (role, freshness, authority, rebuild, security, lifecycle, …) go
///   under `customProperties`, named `canon…` in camel case.
/// - ODCS `roles` are IAM roles, so the store role is never put there.
/// - A store whose engine has no ODCS server type gets `type: custom`.
public struct ODCSContract: Encodable, Sendable {
    public var apiVersion = "v3.1.0"
    public var kind = "DataContract"
    public var id: String
    public var name: String
    public var version: String
    public var status: String
    public var domain: String
    public var tags: [String]
    public var description: Description
    public var team: Team?
    public var servers: [Server]
    public var slaProperties: [SLAProperty]?
    public var customProperties: [CustomProperty]

    public struct Description: Encodable, Sendable {
        public var purpose: String?
        public var usage: String?
        public var limitations: String?
    }

    public struct Team: Encodable, Sendable { public var name: String }

    public struct Server: Encodable, Sendable {
        public var server: String
        public var type: String
        public var description: String
        public var environment: String
        public var host: String?
        public var port: Int?
        public var database: String?
        public var schema: String?
        public var location: String?
        public var customProperties: [CustomProperty]?
    }

    public struct SLAProperty: Encodable, Sendable {
        public var property: String
        public var value: Int64
        public var unit: String
        public var driver: String?
        public var description: String?
    }

    public struct CustomProperty: Encodable, Sendable {
        public var property: String
        public var value: CustomValue
    }

    /// A custom property's value: ODCS allows any JSON value.
    public enum CustomValue: Encodable, Sendable {
        case string(String)
        case bool(Bool)
        case int(Int64)
        case strings([String])
        case object([String: String])

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let value): try container.encode(value)
            case .bool(let value): try container.encode(value)
            case .int(let value): try container.encode(value)
            case .strings(let value): try container.encode(value)
            case .object(let value): try container.encode(value)
            }
        }
    }

    /// The contract of `store` in `portfolio`.
    public init(_ store: StoreDeclaration, in portfolio: Portfolio) {
        let name = store.name.value
        self.id = "\(portfolio.name).\(name)"
        self.name = name
        self.version = "\(store.schemaEvolution?.version?.value ?? 1).0.0"
        self.status = store.isLive ? "active" : "proposed"
        self.domain = portfolio.name
        self.tags = ["canon", store.role?.value.rawValue, store.dataModel?.value.rawValue].compactMap { $0 }
        let readers = portfolio.operations.filter { $0.reads.contains { $0.value == name } }.map(\.name.value)
        self.description = Description(
            purpose: store.description?.value,
            usage: store.useCases.isEmpty ? nil : store.useCases.map(\.value).joined(separator: "; "),
            limitations: store.isDerived
                ? "Derived from \(store.source?.store?.value ?? "?") via \(store.source?.via?.value ?? "?"); reads may lag (p95 \(store.freshness?.p95?.value.text ?? "?")). Never-stale operations do not read it. Read by: \(readers.joined(separator: ", "))."
                : "Authoritative store; read by: \(readers.joined(separator: ", ")).")
        self.team = store.owner.map { Team(name: $0.value) }
        var servers: [Server] = []
        if let engine = store.engine?.value {
            servers.append(Self.server(name: "\(name)-embedded", engine: engine, environment: "embedded", store: name))
        }
        if let engine = store.scaleOutEngine?.value {
            servers.append(Self.server(name: "\(name)-scale-out", engine: engine, environment: "scale-out", store: name))
        }
        self.servers = servers
        var sla: [SLAProperty] = []
        if let p95 = store.freshness?.p95 {
            sla.append(SLAProperty(property: "latency", value: p95.value.milliseconds, unit: "ms", driver: "operational", description: "normal p95 lag behind the canonical outbox"))
        }
        if let alert = store.freshness?.alertAfter {
            sla.append(SLAProperty(property: "latency", value: alert.value.milliseconds, unit: "ms", driver: "operational", description: "lag past which the store is degraded and alerts"))
        }
        self.slaProperties = sla.isEmpty ? nil : sla
        self.customProperties = Self.customProperties(store)
    }

    private static func server(name: String, engine: String, environment: String, store: String) -> Server {
        let lowered = engine.lowercased()
        var server = Server(server: name, type: "custom", description: engine, environment: environment)
        if lowered.hasPrefix("postgresql") {
            server.type = "postgresql"
            server.host = "localhost"
            server.port = 5432
            server.database = "canon"
            server.schema = store.replacingOccurrences(of: "-", with: "_")
        } else if lowered.hasPrefix("s3") {
            server.type = "s3"
            server.location = "s3://canon-\(store)/"
        } else {
            server.customProperties = [CustomProperty(property: "engine", value: .string(engine))]
        }
        return server
    }

    private static func customProperties(_ store: StoreDeclaration) -> [CustomProperty] {
        var properties: [CustomProperty] = []
        func add(_ property: String, _ value: CustomValue?) {
            if let value { properties.append(CustomProperty(property: property, value: value)) }
        }
        func object(_ pairs: [(String, String?)]) -> CustomValue? {
            let present = pairs.compactMap { key, value in value.map { (key, $0) } }
            return present.isEmpty ? nil : .object(Dictionary(present, uniquingKeysWith: { first, _ in first }))
        }
        add("canonRole", store.role.map { .string($0.value.rawValue) })
        add("canonStatus", store.status.map { .string($0.value.rawValue) })
        add("canonDataModel", store.dataModel.map { .string($0.value.rawValue) })
        add("canonSource", store.source.flatMap { object([("store", $0.store?.value), ("via", $0.via?.value)]) })
        add("canonFreshness", store.freshness.flatMap {
            object([("p95", $0.p95?.value.text), ("alertAfter", $0.alertAfter?.value.text), ("metric", $0.metric?.value), ("batchWindow", $0.batchWindow?.value.text)])
        })
        add("canonExecutesCommands", store.authority?.executesCommands.map { .bool($0.value) })
        add("canonRehydrateBeforeSensitiveAction", store.authority?.rehydrateBeforeSensitiveAction.map { .bool($0.value) })
        add("canonRebuild", store.rebuild.flatMap {
            object([("supported", $0.supported.map { String($0.value) }), ("source", $0.source?.value),
                    ("estimatedDuration", $0.estimatedDuration?.value.text), ("cutover", $0.cutover?.value)])
        })
        if let security = store.security {
            add("canonContainsPii", security.pii.map { .bool($0.value) })
            add("canonAuthorizationFilter", security.authorizationFilter.map { .bool($0.value) })
            add("canonFieldMasking", security.fieldMasking.map { .bool($0.value) })
            add("canonMaskedFields", security.maskedFields.isEmpty ? nil : .strings(security.maskedFields.map(\.value)))
            add("canonPiiFields", security.piiFields.isEmpty ? nil : .strings(security.piiFields.map(\.value)))
            add("canonEncryption", security.encryption.map { .string($0.value) })
        }
        add("canonVersionedDocuments", store.schemaEvolution?.versionedDocuments.map { .bool($0.value) })
        add("canonLifecycle", store.lifecycle.flatMap {
            object([
                ("delete", $0.delete?.value), ("restrict", $0.restrict?.value), ("retention", $0.retention?.value),
                ("retentionPeriod", $0.retentionPeriod?.value.text), ("legalHold", $0.legalHold?.value),
            ])
        })
        add("canonMetrics", store.observability.map { .strings($0.metrics.map(\.value)) })
        add("canonBackup", store.backup.flatMap { object([("method", $0.method?.value), ("restore", $0.restore?.value)]) })
        add("canonRunbook", store.runbook.map { .string($0.value) })
        add("canonExitPlan", store.exitPlan.map { .string($0.value) })
        add("canonCost", store.cost.map { .string($0.value) })
        add("canonAsOf", store.asOf.map { .bool($0.value) })
        add("canonEmbedding", store.embedding.flatMap {
            object([("model", $0.model?.value), ("version", $0.version?.value), ("dimensions", $0.dimensions.map { String($0.value) })])
        })
        return properties
    }

    /// File name → YAML text, one contract per store.
    public static func export(_ portfolio: Portfolio) throws -> [String: String] {
        let encoder = YAMLEncoder()
        encoder.options.sortKeys = false
        var files: [String: String] = [:]
        for store in portfolio.stores {
            let header = "# ODCS v3.1.0 contract for store \(store.name.value), generated by `canon export --odcs` from the portfolio.\n"
            files["\(store.name.value).odcs.yaml"] = header + (try encoder.encode(ODCSContract(store, in: portfolio)))
        }
        return files
    }
}
