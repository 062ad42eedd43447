import Canon

/// The canonical tables of the case platform, as engine-neutral migrations.
///
/// Each engine turns these into its own DDL. `case_transitions` is append-only: the engine
/// refuses any UPDATE or DELETE on it.
public enum CasePlatformSchema {
    public static let users = TableSchema(
        name: "users",
        columns: [
            .init("id", .text), .init("display_name", .text), .init("role", .text), .init("team", .text, nullable: true),
            .init("clearance", .integer), .init("created_at", .timestamp),
        ],
        primaryKey: ["id"])

    public static let cases = TableSchema(
        name: "cases",
        columns: [
            .init("id", .text), .init("title", .text), .init("summary", .text), .init("sector", .text), .init("region", .text),
            .init("priority", .text), .init("status", .text), .init("team", .text), .init("assignee", .text, nullable: true),
            .init("restricted", .boolean), .init("sla_due_at", .timestamp), .init("version", .integer),
            .init("opened_at", .timestamp), .init("opened_by", .text), .init("updated_at", .timestamp),
        ],
        primaryKey: ["id"],
        indexes: [.init("cases_team_status", on: ["team", "status"])])

    public static let caseTransitions = TableSchema(
        name: "case_transitions",
        columns: [
            .init("case_id", .text), .init("case_version", .integer), .init("from_status", .text, nullable: true),
            .init("to_status", .text), .init("reason", .text), .init("actor", .text), .init("at", .timestamp),
        ],
        primaryKey: ["case_id", "case_version"],
        appendOnly: true)

    public static let parties = TableSchema(
        name: "parties",
        columns: [
            .init("id", .text), .init("kind", .text), .init("name", .text), .init("email", .text, nullable: true),
            .init("national_id", .text, nullable: true), .init("created_at", .timestamp), .init("created_by", .text),
        ],
        primaryKey: ["id"])

    public static let caseParties = TableSchema(
        name: "case_parties",
        columns: [
            .init("case_id", .text), .init("party_id", .text), .init("role", .text), .init("linked_at", .timestamp),
            .init("linked_by", .text),
        ],
        primaryKey: ["case_id", "party_id", "role"],
        indexes: [.init("case_parties_party", on: ["party_id"])])

    public static let evidence = TableSchema(
        name: "evidence",
        columns: [
            .init("id", .text), .init("case_id", .text), .init("title", .text), .init("description", .text),
            .init("media_type", .text), .init("size_bytes", .integer), .init("sha256", .text), .init("version", .integer),
            .init("added_at", .timestamp), .init("added_by", .text),
        ],
        primaryKey: ["id"],
        indexes: [.init("evidence_case", on: ["case_id"])])

    /// Keys that sign bearer tokens; shared by every process on the same canonical store.
    public static let authKeys = TableSchema(
        name: "auth_keys",
        columns: [.init("id", .text), .init("secret", .blob), .init("created_at", .timestamp)],
        primaryKey: ["id"])

    /// Every read of restricted data and every sensitive action, allowed or denied. Append-only:
    /// the engine refuses UPDATE and DELETE.
    public static let accessAudit = TableSchema(
        name: "access_audit",
        columns: [
            .init("id", .text), .init("at", .timestamp), .init("principal", .text), .init("role", .text), .init("action", .text),
            .init("target", .text), .init("decision", .text), .init("reason", .text),
        ],
        primaryKey: ["id"],
        indexes: [.init("access_audit_at", on: ["at"]), .init("access_audit_principal", on: ["principal", "at"])],
        appendOnly: true)

    /// What was purged, when, by whom and why: the record a lifecycle audit checks every derived
    /// store against. Append-only: the engine refuses UPDATE and DELETE.
    public static let tombstones = TableSchema(
        name: "tombstones",
        columns: [
            .init("kind", .text), .init("id", .text), .init("case_id", .text), .init("purged_at", .timestamp), .init("purged_by", .text),
            .init("reason", .text),
        ],
        primaryKey: ["kind", "id"],
        indexes: [.init("tombstones_case", on: ["case_id"])],
        appendOnly: true)

    /// Cases under legal hold: one row while a hold stands (placing and lifting it are events on
    /// the case's stream, which keep its history). A hold blocks every purge of the case, by hand
    /// or by the retention job.
    public static let legalHolds = TableSchema(
        name: "legal_holds",
        columns: [.init("case_id", .text), .init("reason", .text), .init("placed_at", .timestamp), .init("placed_by", .text)],
        primaryKey: ["case_id"])

    /// Which case each record of a legacy system was imported as (`canon backfill cases`): what
    /// makes an import idempotent. Append-only, and kept when the case is purged, so that running
    /// an import again never brings a purged case back.
    public static let importedRecords = TableSchema(
        name: "imported_records",
        columns: [
            .init("source", .text), .init("external_id", .text), .init("case_id", .text), .init("imported_at", .timestamp),
            .init("imported_by", .text),
        ],
        primaryKey: ["source", "external_id"],
        indexes: [.init("imported_records_case", on: ["case_id"])],
        appendOnly: true)

    public static let migrations: [SchemaMigration] = [
        SchemaMigration("case-platform.v1", steps: [
            .createTable(users), .createTable(cases), .createTable(caseTransitions), .createTable(parties),
            .createTable(caseParties), .createTable(evidence), .createTable(authKeys),
        ]),
        SchemaMigration("case-platform.v2-access-audit", steps: [.createTable(accessAudit)]),
        // The clearance a team member needs to see a restricted case; existing cases need 1.
        SchemaMigration("case-platform.v3-case-clearance", steps: [
            .addColumn(table: "cases", column: .init("clearance", .integer), default: .integer(1)),
        ]),
        // The case version each party link made: the order of a case's links, which its search
        // document lists parties in (a drift check rebuilds that list from canonical rows).
        SchemaMigration("case-platform.v4-party-link-order", steps: [
            .addColumn(table: "case_parties", column: .init("case_version", .integer), default: .integer(0)),
        ]),
        SchemaMigration("case-platform.v5-tombstones", steps: [.createTable(tombstones)]),
        SchemaMigration("case-platform.v6-legal-holds", steps: [.createTable(legalHolds)]),
        SchemaMigration("case-platform.v7-imported-records", steps: [.createTable(importedRecords)]),
        // The cases assigned to a user, read by every change to the user.
        SchemaMigration("case-platform.v8-case-assignee", steps: [.createIndex(table: "cases", index: .init("cases_assignee", on: ["assignee"]))]),
    ]
}
