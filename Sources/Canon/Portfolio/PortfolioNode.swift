import Yams

/// A place in a portfolio file: 1-based line and column, as editors and SARIF count them.
public struct FilePosition: Hashable, Codable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public static let start = FilePosition(line: 1, column: 1)
    public var description: String { "\(line):\(column)" }
}

/// A value read from the portfolio with where it was written (the key's position).
public struct Located<Value: Sendable & Hashable>: Hashable, Sendable {
    public var value: Value
    public var location: FilePosition

    public init(_ value: Value, at location: FilePosition) {
        self.value = value
        self.location = location
    }
}

/// The YAML tree with positions, before any meaning is given to it.
indirect enum PortfolioNode: Sendable {
    case scalar(String, isNull: Bool, FilePosition)
    case sequence([PortfolioNode], FilePosition)
    case mapping([(key: String, keyLocation: FilePosition, value: PortfolioNode)], FilePosition)

    var location: FilePosition {
        switch self {
        case .scalar(_, _, let location), .sequence(_, let location), .mapping(_, let location): location
        }
    }

    var kindName: String {
        switch self {
        case .scalar(_, let isNull, _): isNull ? "null" : "a scalar"
        case .sequence: "a list"
        case .mapping: "a mapping"
        }
    }

    /// Parses YAML text; a syntax error becomes a finding with its position.
    static func parse(_ text: String) -> Result<PortfolioNode?, PortfolioFinding> {
        do {
            guard let node = try Yams.compose(yaml: text) else { return .success(nil) }
            var budget = maximumNodes
            guard let converted = PortfolioNode(node, budget: &budget) else {
                return .failure(PortfolioFinding(
                    rule: .yamlSyntax, message: "the file expands to more than \(maximumNodes) YAML nodes (aliases repeated within aliases?); a portfolio is far smaller",
                    location: .start))
            }
            return .success(converted)
        } catch let error as YamlError {
            return .failure(Self.finding(for: error))
        } catch {
            return .failure(PortfolioFinding(rule: .yamlSyntax, message: "the file is not valid YAML: \(error)", location: .start))
        }
    }

    private static func finding(for error: YamlError) -> PortfolioFinding {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let detail = context.map { "\($0.text) (\($0.mark)): " } ?? ""
            return PortfolioFinding(rule: .yamlSyntax, message: "YAML syntax error: \(detail)\(problem)", location: FilePosition(line: mark.line, column: mark.column))
        case let .duplicatedKeysInMapping(duplicates, context):
            return PortfolioFinding(
                rule: .yamlSyntax, message: "duplicate keys in one mapping: \(duplicates.joined(separator: ", "))",
                location: FilePosition(line: context.mark.line, column: context.mark.column))
        default:
            return PortfolioFinding(rule: .yamlSyntax, message: "the file is not valid YAML: \(error)", location: .start)
        }
    }

    /// The most nodes a portfolio may expand to. YAML aliases are expanded in full, so nine
    /// levels of ten aliases each (a "billion laughs") would be a billion nodes.
    static let maximumNodes = 100_000

    /// Nil once more than `budget` nodes have been converted.
    private init?(_ node: Node, budget: inout Int) {
        budget -= 1
        guard budget >= 0 else { return nil }
        let location = node.mark.map { FilePosition(line: $0.line, column: $0.column) } ?? .start
        switch node {
        case .scalar(let scalar):
            let isNull = scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
            self = .scalar(scalar.string, isNull: isNull, location)
        case .sequence(let sequence):
            var items: [PortfolioNode] = []
            for item in sequence {
                guard let converted = PortfolioNode(item, budget: &budget) else { return nil }
                items.append(converted)
            }
            self = .sequence(items, location)
        case .mapping(let mapping):
            var entries: [(key: String, keyLocation: FilePosition, value: PortfolioNode)] = []
            for pair in mapping {
                let keyLocation = pair.key.mark.map { FilePosition(line: $0.line, column: $0.column) } ?? location
                guard let value = PortfolioNode(pair.value, budget: &budget) else { return nil }
                entries.append((key: pair.key.string ?? "\(pair.key)", keyLocation: keyLocation, value: value))
            }
            self = .mapping(entries, location)
        case .alias:
            self = .scalar("", isNull: true, location)
        }
    }
}

/// Reads one YAML mapping field by field, recording wrong types, bad values and unknown keys as
/// findings instead of failing, so one `canon check` run reports every problem at once.
struct MappingReader {
    let path: String
    let location: FilePosition
    private let entries: [(key: String, keyLocation: FilePosition, value: PortfolioNode)]
    private var read: Set<String> = []
    let sink: FindingSink

    init?(_ node: PortfolioNode, path: String, sink: FindingSink, store: String? = nil) {
        guard case .mapping(let entries, let location) = node else {
            if case .scalar(_, true, _) = node { return nil }
            sink.add(PortfolioFinding(rule: .wrongType, message: "\(path) must be a mapping; found \(node.kindName)", store: store, field: path, location: node.location))
            return nil
        }
        self.path = path
        self.location = location
        self.entries = entries
        self.sink = sink
    }

    var store: String? { sink.currentStore }

    private func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The raw node of `key`, or nil when absent or null.
    mutating func node(_ key: String) -> (PortfolioNode, FilePosition)? {
        read.insert(key)
        guard let entry = entries.first(where: { $0.key == key }) else { return nil }
        if case .scalar(_, true, _) = entry.value { return nil }
        return (entry.value, entry.keyLocation)
    }

    func keyLocation(_ key: String) -> FilePosition? { entries.first(where: { $0.key == key })?.keyLocation }

    mutating func string(_ key: String, required: Bool = false) -> Located<String>? {
        guard let (node, at) = node(key) else {
            if required { missing(key) }
            return nil
        }
        guard case .scalar(let text, _, _) = node else {
            wrongType(key, expected: "a string", found: node)
            return nil
        }
        return Located(text, at: at)
    }

    mutating func bool(_ key: String) -> Located<Bool>? {
        guard let (node, at) = node(key) else { return nil }
        guard case .scalar(let text, _, _) = node, let value = ["true": true, "false": false][text] else {
            wrongType(key, expected: "true or false", found: node)
            return nil
        }
        return Located(value, at: at)
    }

    mutating func integer(_ key: String) -> Located<Int>? {
        guard let (node, at) = node(key) else { return nil }
        guard case .scalar(let text, _, _) = node, let value = Int(text) else {
            wrongType(key, expected: "an integer", found: node)
            return nil
        }
        return Located(value, at: at)
    }

    mutating func duration(_ key: String) -> Located<ContractDuration>? {
        guard let located = string(key) else { return nil }
        guard let duration = ContractDuration(located.value) else {
            sink.add(PortfolioFinding(
                rule: .wrongType, message: "\(field(key)) must be a duration such as 500ms, 5s, 2m, 1h or 7d; got \"\(located.value)\"",
                store: store, field: field(key), location: located.location))
            return nil
        }
        return Located(duration, at: located.location)
    }

    mutating func enumeration<Value: RawRepresentable & CaseIterable & Sendable & Hashable>(
        _ key: String, _ type: Value.Type, required: Bool = false
    ) -> Located<Value>? where Value.RawValue == String {
        guard let located = string(key, required: required) else { return nil }
        guard let value = Value(rawValue: located.value) else {
            let allowed = Value.allCases.map(\.rawValue).joined(separator: ", ")
            sink.add(PortfolioFinding(
                rule: .invalidValue, message: "\(field(key)) is \"\(located.value)\"; allowed: \(allowed)",
                store: store, field: field(key), location: located.location))
            return nil
        }
        return Located(value, at: located.location)
    }

    /// A list of strings; a single string is accepted as a list of one.
    mutating func strings(_ key: String) -> [Located<String>] {
        guard let (node, at) = node(key) else { return [] }
        switch node {
        case .scalar(let text, _, _):
            return [Located(text, at: at)]
        case .sequence(let items, _):
            return items.compactMap { item in
                guard case .scalar(let text, false, let location) = item else {
                    sink.add(PortfolioFinding(rule: .wrongType, message: "\(field(key)) must list strings; found \(item.kindName)", store: store, field: field(key), location: item.location))
                    return nil
                }
                return Located(text, at: location)
            }
        case .mapping:
            wrongType(key, expected: "a list of strings", found: node)
            return []
        }
    }

    mutating func mapping(_ key: String) -> MappingReader? {
        guard let (node, _) = node(key) else { return nil }
        return MappingReader(node, path: field(key), sink: sink, store: store)
    }

    /// The entries of a list of mappings.
    mutating func list(_ key: String) -> [MappingReader] {
        guard let (node, _) = node(key) else { return [] }
        guard case .sequence(let items, _) = node else {
            wrongType(key, expected: "a list", found: node)
            return []
        }
        return items.enumerated().compactMap { index, item in MappingReader(item, path: "\(field(key))[\(index)]", sink: sink) }
    }

    /// Reports every key that was never asked for: a typo must not silently drop a declaration.
    func finish() {
        for entry in entries where !read.contains(entry.key) {
            let known = read.sorted().joined(separator: ", ")
            sink.add(PortfolioFinding(
                rule: .unknownKey, message: "unknown key \"\(entry.key)\" in \(path.isEmpty ? "the top level" : path); known keys: \(known)",
                store: store, field: field(entry.key), location: entry.keyLocation,
                hint: "fix the spelling or remove the key; unknown keys are never ignored silently"))
        }
    }

    func missing(_ key: String) {
        sink.add(PortfolioFinding(
            rule: .missingField, message: "\(field(key)) is required", store: store, field: field(key), location: location))
    }

    private func wrongType(_ key: String, expected: String, found: PortfolioNode) {
        sink.add(PortfolioFinding(
            rule: .wrongType, message: "\(field(key)) must be \(expected); found \(found.kindName)",
            store: store, field: field(key), location: found.location))
    }
}

/// Collects findings while a portfolio is read and checked.
final class FindingSink: @unchecked Sendable {
    private(set) var findings: [PortfolioFinding] = []
    /// The store being read, named in the findings raised meanwhile.
    var currentStore: String?

    func add(_ finding: PortfolioFinding) {
        var finding = finding
        if finding.store == nil { finding.store = currentStore }
        findings.append(finding)
    }
}
