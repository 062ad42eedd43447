/// An engine-neutral description of one canonical table.
///
/// The domain declares its tables with this type; each engine turns it into its own DDL. An
/// append-only table is enforced by the engine itself (an UPDATE or DELETE fails in the
/// database), not only by the code that writes it.
public struct TableSchema: Hashable, Sendable {
    public var name: String
    public var columns: [Column]
    public var primaryKey: [String]
    public var unique: [[String]]
    public var indexes: [Index]
    public var appendOnly: Bool

    public init(
        name: String, columns: [Column], primaryKey: [String], unique: [[String]] = [],
        indexes: [Index] = [], appendOnly: Bool = false
    ) {
        self.name = name
        self.columns = columns
        self.primaryKey = primaryKey
        self.unique = unique
        self.indexes = indexes
        self.appendOnly = appendOnly
    }

    public struct Column: Hashable, Sendable {
        public var name: String
        public var type: ColumnType
        public var nullable: Bool

        public init(_ name: String, _ type: ColumnType, nullable: Bool = false) {
            self.name = name
            self.type = type
            self.nullable = nullable
        }
    }

    public enum ColumnType: String, Hashable, Sendable {
        case text, integer, real, blob
        /// Stored as integer 0 or 1.
        case boolean
        /// Stored as integer microseconds since 1970.
        case timestamp
    }

    public struct Index: Hashable, Sendable {
        public var name: String
        public var columns: [String]

        public init(_ name: String, on columns: [String]) {
            self.name = name
            self.columns = columns
        }
    }

    public func column(named name: String) -> Column? { columns.first { $0.name == name } }

    /// `names`, after checking that each is a column: names reach an engine's SQL only from the
    /// declared schema.
    ///
    /// - Throws: `CanonicalStoreError.constraintViolation` naming the first unknown column.
    public func checked(_ names: [String]) throws -> [String] {
        for name in names where column(named: name) == nil {
            throw CanonicalStoreError.constraintViolation("\(self.name) has no column \(name)")
        }
        return names
    }
}

/// A versioned step of a canonical schema, registered in order under a unique identifier.
///
/// Migrations are values: an engine records which identifiers it has applied and runs only the
/// new ones, each in its own transaction.
public struct SchemaMigration: Hashable, Sendable {
    public var identifier: String
    public var steps: [Step]

    public init(_ identifier: String, steps: [Step]) {
        self.identifier = identifier
        self.steps = steps
    }

    public enum Step: Hashable, Sendable {
        case createTable(TableSchema)
        case addColumn(table: String, column: TableSchema.Column, default: CanonValue)
        case createIndex(table: String, index: TableSchema.Index)
    }
}

extension SchemaMigration {
    /// The tables `migrations` leave, by name: what an engine checks mutations and queries against.
    public static func tables(after migrations: [SchemaMigration]) -> [String: TableSchema] {
        var tables: [String: TableSchema] = [:]
        for migration in migrations {
            for step in migration.steps {
                switch step {
                case .createTable(let schema): tables[schema.name] = schema
                case .addColumn(let table, let column, _): tables[table]?.columns.append(column)
                case .createIndex: break
                }
            }
        }
        return tables
    }
}
