import Foundation
import Yams

/// `canon serve --config FILE` and `canon worker --config FILE`: the command's settings in a
/// YAML file instead of flags, one key a flag with underscores for dashes:
///
/// ```yaml
/// database: postgres://canon@db.example:5432/canon   # or data: /var/lib/canon
/// host: 0.0.0.0
/// port: 8080
/// log_level: info
/// no_agents: true
/// ```
///
/// A flag given on the command line wins over the file. A key the command does not take, a
/// value that is not a scalar, or a file that is not a YAML mapping is refused with its line,
/// before anything starts; nothing in the file is ever ignored.
enum ConfigFile {
    /// The keys each command takes from a file, and whether each is a flag without a value.
    static let keys: [String: [String: Bool]] = [
        "serve": [
            "data": false, "database": false, "portfolio": false, "host": false, "port": false, "log_level": false,
            "drift_interval": false, "event_loops": false, "version_poll_interval": false, "no_agents": true,
        ],
        "worker": ["database": false, "portfolio": false, "log_level": false, "event_loops": false, "version_poll_interval": false],
    ]

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// `arguments` (without the program name) with the settings of the `--config` file they
    /// name added as flags, except those the command line gives itself; `arguments` unchanged
    /// when they name no file or the command takes none (the parser then refuses `--config`).
    static func expand(_ arguments: [String]) throws -> [String] {
        guard let command = arguments.first, let known = keys[command] else { return arguments }
        var rest: [String] = []
        var path: String?
        var index = 1
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                // Everything after it is an argument, not an option.
                rest += arguments[index...]
                break
            }
            var named: String?
            if argument == "--config" {
                guard index + 1 < arguments.count else { throw Problem(description: "--config needs a file: canon \(command) --config canon.yaml") }
                named = arguments[index + 1]
                index += 1
            } else if argument.hasPrefix("--config=") {
                named = String(argument.dropFirst("--config=".count))
            } else {
                rest.append(argument)
            }
            if let named {
                if let path, path != named { throw Problem(description: "--config is given twice (\(path), \(named)); give one file") }
                path = named
            }
            index += 1
        }
        guard let path else { return arguments }
        let settings = try read(path, command: command, known: known)
        var given = Set(rest.prefix { $0 != "--" }.filter { $0.hasPrefix("--") }.map { String($0.dropFirst(2).prefix { $0 != "=" }) })
        // --data and --database name one thing, where the data is: the command line's wins whole.
        if !given.isDisjoint(with: ["data", "database"]) { given.formUnion(["data", "database"]) }
        var added: [String] = []
        for (key, value) in settings {
            let flag = key.replacingOccurrences(of: "_", with: "-")
            if given.contains(flag) { continue }
            if known[key] == true {
                if value == "true" { added.append("--\(flag)") }
            } else {
                added.append("--\(flag)=\(value)")
            }
        }
        return [command] + added + rest
    }

    /// The file's settings in file order, checked against what `command` takes.
    static func read(_ path: String, command: String, known: [String: Bool]) throws -> [(String, String)] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Problem(description: "--config: cannot read \(path): \(error.localizedDescription)")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw Problem(description: "\(path): not valid YAML: \(error)")
        }
        guard let root else { return [] }
        guard case .mapping(let mapping) = root else {
            throw Problem(description: "\(path):\(root.mark?.line ?? 1): the file must be a mapping of settings (key: value)")
        }
        var settings: [(String, String)] = []
        for (keyNode, valueNode) in mapping {
            let line = keyNode.mark?.line ?? 1
            guard let key = keyNode.string else { throw Problem(description: "\(path):\(line): a key must be a plain word") }
            guard let isFlag = known[key] else {
                throw Problem(description: """
                    \(path):\(line): unknown key "\(key)" for canon \(command) (misspelt?); known keys: \(known.keys.sorted().joined(separator: ", "))
                    """)
            }
            guard case .scalar(let scalar) = valueNode, !scalar.string.isEmpty else {
                throw Problem(description: "\(path):\(line): \(key) must be a single value")
            }
            if isFlag, !["true", "false"].contains(scalar.string) {
                throw Problem(description: "\(path):\(line): \(key) must be true or false; got \(scalar.string)")
            }
            settings.append((key, scalar.string))
        }
        return settings
    }
}
