/// Why the embedding model cannot be used. Every case names the file and what to do.
public struct EmbeddingError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case modelMissing, corruptModel, checksumMismatch, missingTensor, badShape, vocabulary
    }

    public let code: Code
    public let message: String

    public var description: String { message }

    /// The command that installs the model, quoted in every "missing" error.
    public static let setupCommand = "scripts/setup-model (or scripts/test / scripts/demo, which run it)"

    public static func modelMissing(_ path: String) -> Self {
        Self(code: .modelMissing, message: "the embedding model is not installed: \(path) is missing; run \(setupCommand)")
    }

    public static func corrupt(_ path: String, _ reason: String) -> Self {
        Self(code: .corruptModel, message: "the model file \(path) is corrupt: \(reason); delete it and run \(setupCommand)")
    }

    public static func checksum(_ path: String, expected: String, actual: String) -> Self {
        Self(code: .checksumMismatch, message: "the model file \(path) has SHA-256 \(actual), expected \(expected); delete it and run \(setupCommand)")
    }

    public static func missingTensor(_ name: String, in path: String) -> Self {
        Self(code: .missingTensor, message: "the model file \(path) has no tensor \(name)")
    }

    public static func badShape(_ name: String, expected: [Int], actual: [Int]) -> Self {
        Self(code: .badShape, message: "tensor \(name) has shape \(actual), expected \(expected)")
    }
}
