import Foundation

/// A canonical store held in memory: for tests of logic, not of an engine.
///
/// It keeps the same contract as the real engines (atomic units of work, unique keys,
/// append-only tables, gap-free positions) and passes the same conformance suite.
public actor InMemoryCanonicalStore: CanonicalStore {
    public struct Configuration: Sendable {
        public var faults: FaultInjector?
        public var clock: @Sendable () -> Date

        public init(faults: FaultInjector? = nil, clock: @escaping @Sendable () -> Date = { Date() }) {
            self.faults = faults
            self.clock = clock
        }
    }

    private var state: State
    private let configuration: Configuration

    /// Creates an empty store with the tables that `migrations` declare.
    public init(migrations: [SchemaMigration], configuration: Configuration = Configuration()) throws {
        var state = State()
        for migration in migrations {
            for step in migration.steps {
                try state.apply(step)
            }
        }
        self.state = state
        self.configuration = configuration
    }

    public func commit(_ work: UnitOfWork) async throws -> CommitResult {
        try commit(batch: [work])[0]
    }

    public func commit(batch: [UnitOfWork]) throws -> [CommitResult] {
        var draft = state
        let results = try OutboxWriter.write(batch, in: &draft, now: configuration.clock(), faults: configuration.faults)
        state = draft
        return results
    }

    public func fetchOne(_ query: RowQuery) throws -> Row? {
        var limited = query
        limited.limit = 1
        return try fetchAll(limited).first
    }

    public func fetchAll(_ query: RowQuery) throws -> [Row] {
        guard let table = state.tables[query.table] else { throw CanonicalStoreError.unknownTable(query.table) }
        for column in query.filter.columns + query.order.map(\.column) where table.schema.column(named: column) == nil {
            throw CanonicalStoreError.constraintViolation("\(query.table) has no column \(column)")
        }
        if let anyOf = query.anyOf, table.schema.column(named: anyOf.column) == nil {
            throw CanonicalStoreError.constraintViolation("\(query.table) has no column \(anyOf.column)")
        }
        if let after = query.after, table.schema.column(named: after.column) == nil {
            throw CanonicalStoreError.constraintViolation("\(query.table) has no column \(after.column)")
        }
        var rows = table.rows.filter { row in
            row.matches(query.filter) && (query.anyOf.map { $0.values.contains(row[$0.column]) } ?? true)
                && (query.after.map { $0.value.sortsBefore(row[$0.column]) } ?? true)
        }
        if !query.order.isEmpty {
            rows.sort { lhs, rhs in
                for ordering in query.order {
                    let left = lhs[ordering.column], right = rhs[ordering.column]
                    if left == right { continue }
                    return left.sortsBefore(right) == ordering.ascending
                }
                return false
            }
        }
        if let offset = query.offset { rows = Array(rows.dropFirst(max(offset, 0))) }
        if let limit = query.limit { rows = Array(rows.prefix(limit)) }
        if let columns = query.columns {
            for column in columns where table.schema.column(named: column) == nil {
                throw CanonicalStoreError.constraintViolation("\(query.table) has no column \(column)")
            }
            rows = rows.map { row in Row(Dictionary(uniqueKeysWithValues: columns.map { ($0, row[$0]) })) }
        }
        return rows
    }

    public func count(_ table: String, filter: Row) throws -> Int {
        try fetchAll(RowQuery(table: table, filter: filter)).count
    }

    public func streamVersion(_ stream: StreamID) -> Int64? { state.streams[stream] }

    public func events(after position: OutboxPosition, limit: Int) -> [EventEnvelope] {
        // Positions are 1-based and gap-free, so the event at position p sits at index p - 1.
        let start = Int(max(position.rawValue, 0))
        guard start < state.outbox.count else { return [] }
        return Array(state.outbox[start..<min(state.outbox.count, start + max(limit, 0))])
    }

    public func events(in stream: StreamID, through position: OutboxPosition) -> [EventEnvelope] {
        state.outbox.filter { $0.streamID == stream && $0.position <= position }
    }

    public func headPosition() -> OutboxPosition { state.outbox.last?.position ?? .start }

    public func checkHealth() {}

    // MARK: - State

    struct Table {
        var schema: TableSchema
        var rows: [Row] = []
    }

    struct State: OutboxTransaction {
        var tables: [String: Table] = [:]
        var streams: [StreamID: Int64] = [:]
        var outbox: [EventEnvelope] = []

        mutating func apply(_ step: SchemaMigration.Step) throws {
            switch step {
            case .createTable(let schema):
                tables[schema.name] = Table(schema: schema)
            case .addColumn(let table, let column, let defaultValue):
                guard var existing = tables[table] else { throw CanonicalStoreError.unknownTable(table) }
                existing.schema.columns.append(column)
                for index in existing.rows.indices { existing.rows[index][column.name] = defaultValue }
                tables[table] = existing
            case .createIndex:
                break
            }
        }

        mutating func currentVersion(of stream: StreamID) -> Int64? { streams[stream] }

        mutating func setVersion(_ version: Int64, of stream: StreamID) { streams[stream] = version }

        mutating func lastCommitted() -> (position: OutboxPosition, committedAt: Date)? {
            outbox.last.map { ($0.position, $0.committedAt) }
        }

        mutating func append(_ event: EventEnvelope) { outbox.append(event) }

        mutating func apply(_ mutation: RowMutation) throws {
            guard var table = tables[mutation.table] else { throw CanonicalStoreError.unknownTable(mutation.table) }
            switch mutation {
            case .insert(_, let row):
                try table.check(row)
                try table.checkUnique(row, ignoring: nil)
                table.rows.append(row)
            case .update(_, let key, let values):
                guard !table.schema.appendOnly else { throw CanonicalStoreError.appendOnlyViolation(table: table.schema.name) }
                guard let index = table.rows.firstIndex(where: { $0.matches(key) }) else {
                    throw CanonicalStoreError.rowNotFound(table: table.schema.name, key: key)
                }
                var updated = table.rows[index]
                for (column, value) in values.values { updated[column] = value }
                try table.check(updated)
                try table.checkUnique(updated, ignoring: index)
                table.rows[index] = updated
            case .delete(_, let key):
                guard !table.schema.appendOnly else { throw CanonicalStoreError.appendOnlyViolation(table: table.schema.name) }
                table.rows.removeAll { $0.matches(key) }
            case .require(_, let row):
                guard table.rows.contains(where: { $0.matches(row) }) else {
                    throw CanonicalStoreError.requirementFailed(table: table.schema.name, row: row)
                }
            }
            tables[mutation.table] = table
        }
    }
}

extension InMemoryCanonicalStore.Table {
    func check(_ row: Row) throws {
        for column in row.values.keys where schema.column(named: column) == nil {
            throw CanonicalStoreError.constraintViolation("\(schema.name) has no column \(column)")
        }
        for column in schema.columns where !column.nullable && row[column.name].isNull {
            throw CanonicalStoreError.constraintViolation("NOT NULL constraint failed: \(schema.name).\(column.name)")
        }
    }

    func checkUnique(_ row: Row, ignoring skipped: Int?) throws {
        for key in [schema.primaryKey] + schema.unique where !key.isEmpty {
            let probe = Row(Dictionary(uniqueKeysWithValues: key.map { ($0, row[$0]) }))
            for (index, existing) in rows.enumerated() where index != skipped && existing.matches(probe) {
                throw CanonicalStoreError.uniqueViolation(table: schema.name, detail: key.joined(separator: ", "))
            }
        }
    }
}

extension Row {
    func matches(_ filter: Row) -> Bool {
        filter.values.allSatisfy { self[$0.key] == $0.value }
    }
}

extension CanonValue {
    /// Engine-like ordering: NULL first, numbers before text before blobs.
    func sortsBefore(_ other: CanonValue) -> Bool {
        switch (self, other) {
        case (.integer(let a), .integer(let b)): a < b
        case (.real(let a), .real(let b)): a < b
        case (.integer(let a), .real(let b)): Double(a) < b
        case (.real(let a), .integer(let b)): a < Double(b)
        case (.text(let a), .text(let b)): a < b
        case (.blob(let a), .blob(let b)): a.lexicographicallyPrecedes(b)
        default: rank < other.rank
        }
    }

    private var rank: Int {
        switch self {
        case .null: 0
        case .integer, .real: 1
        case .text: 2
        case .blob: 3
        }
    }
}
