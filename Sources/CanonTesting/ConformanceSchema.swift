import Canon

/// The small schema the conformance suite runs on: an account table and an append-only ledger.
public enum ConformanceSchema {
    public static let accounts = TableSchema(
        name: "accounts",
        columns: [
            .init("id", .text), .init("owner", .text), .init("balance", .integer),
            .init("closed", .boolean), .init("opened_at", .timestamp), .init("note", .text, nullable: true),
        ],
        primaryKey: ["id"],
        unique: [["owner"]],
        indexes: [.init("accounts_balance", on: ["balance"])])

    public static let ledger = TableSchema(
        name: "ledger",
        columns: [.init("account_id", .text), .init("seq", .integer), .init("amount", .integer)],
        primaryKey: ["account_id", "seq"],
        appendOnly: true)

    /// Every column type, each nullable: values written and read back as they were.
    public static let samples = TableSchema(
        name: "samples",
        columns: [
            .init("id", .text), .init("label", .text, nullable: true), .init("count", .integer, nullable: true),
            .init("ratio", .real, nullable: true), .init("bytes", .blob, nullable: true), .init("at", .timestamp, nullable: true),
            .init("flag", .boolean, nullable: true),
        ],
        primaryKey: ["id"])

    public static let migrations = [
        SchemaMigration("conformance.v1", steps: [.createTable(accounts), .createTable(ledger)]),
        SchemaMigration("conformance.v2", steps: [
            .addColumn(table: "accounts", column: .init("tier", .text), default: .text("standard"))
        ]),
        SchemaMigration("conformance.v3", steps: [.createTable(samples)]),
    ]
}
