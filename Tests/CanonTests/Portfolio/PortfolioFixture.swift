import Canon

/// A small, complete portfolio with no finding, and a way to break it one rule at a time.
/// A mutation marks the line where the finding must point with `#<`; the finding's column is the
/// first character of that line's key (after any `- `).
enum PortfolioFixture {
    static let valid = """
        portfolio:
          name: fixture
        stores:
          - name: main
            status: live
            role: canonical
            engine: sqlite
            data_model: relational
            owner: team-a
            authority:
              executes_commands: true
            security:
              pii: true
              authorization_filter: true
              field_masking: true
              masked_fields: [party.email]
              encryption: at-rest
            lifecycle:
              delete: purge
              restrict: flag
              retention: 7y
              legal_hold: blocks purge
            backup:
              method: online backup
              restore: restore then rebuild
            runbook: docs/main.md
            exit_plan: dump and load
          - name: search
            status: live
            role: projection
            engine: sqlite-fts5
            data_model: search
            owner: team-a
            source:
              store: main
              via: outbox
            freshness:
              p95: 1s
              alert_after: 30s
              metric: canon_projection_lag_seconds
            authority:
              executes_commands: false
            rebuild:
              supported: true
              source: outbox
              cutover: blue-green
            lifecycle:
              delete: purge event
              restrict: filtered
              retention: follows main
              legal_hold: none
            backup:
              method: none
              restore: rebuild
            runbook: docs/search.md
            exit_plan: rebuild elsewhere
        responsibilities:
          - fact: case.status
            owner: main
            appears_in: [search]
        consistency:
          - from: main
            to: search
            model: eventual
            bound: 30s
        operations:
          - name: search-cases
            staleness: allowed
            reads: [search]
          - name: assign
            staleness: never
            sensitive: true
            reads: [main]
        """

    /// `text` with the first `old` replaced by `new`; fails loudly when `old` is not there.
    static func replacing(_ old: String, with new: String, in text: String = valid) -> String {
        guard let range = text.range(of: old) else { preconditionFailure("fixture does not contain \(old)") }
        return text.replacingCharacters(in: range, with: new)
    }

    /// The valid fixture's canonical store, renamed.
    static func canonicalStore(_ name: String) -> String {
        let start = valid.range(of: "  - name: main\n")!.lowerBound
        let end = valid.range(of: "  - name: search\n")!.lowerBound
        return String(valid[start..<end]).replacingOccurrences(of: "name: main", with: "name: \(name)")
    }

    /// A store appended to the valid portfolio (before `responsibilities:`).
    static func adding(store: String) -> String {
        replacing("responsibilities:\n", with: store + "\nresponsibilities:\n")
    }

    /// Where `#<` marks the expected finding.
    static func markedLocation(in text: String) -> FilePosition? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let index = lines.firstIndex(where: { $0.contains("#<") }) else { return nil }
        let line = lines[index]
        var column = 1
        var rest = Substring(line)
        while rest.first == " " { rest = rest.dropFirst(); column += 1 }
        if rest.hasPrefix("- ") { column += 2 }
        return FilePosition(line: index + 1, column: column)
    }

    /// A complete derived store named `name` whose lines can be altered for one rule.
    static func derivedStore(_ name: String, role: String = "projection", extra: String = "", dataModel: String = "document") -> String {
        """
          - name: \(name)
            status: planned
            role: \(role)
            engine: sqlite
            data_model: \(dataModel)
            owner: team-b
            source:
              store: main
              via: outbox
            freshness:
              p95: 2s
              alert_after: 1m
              metric: canon_projection_lag_seconds
            rebuild:
              supported: true
              source: outbox
              cutover: blue-green
            lifecycle:
              delete: purge event
              restrict: filtered
              retention: follows main
              legal_hold: none
            backup:
              method: none
              restore: rebuild
            runbook: docs/x.md
            exit_plan: drop it\(extra)
        """
    }
}
