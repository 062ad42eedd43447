import Foundation

/// A safetensors file, memory-mapped: an 8-byte little-endian header length, a JSON header that
/// names each tensor's dtype, shape and byte range, then the raw tensor bytes.
///
/// ```swift
/// let file = try SafeTensors(path: "model.safetensors")
/// let weights = try file.floats("embeddings.word_embeddings.weight", shape: [30522, 384])
/// ```
public final class SafeTensors: @unchecked Sendable {
    public struct TensorInfo: Sendable, Hashable {
        public var dtype: String
        public var shape: [Int]
        /// Byte range within the data section (after the header).
        public var range: Range<Int>
    }

    public let path: String
    public let tensors: [String: TensorInfo]
    /// The mapped file; immutable, so it can be shared across threads.
    private let data: Data
    private let dataStart: Int

    /// Maps the file and reads its header.
    ///
    /// - Throws: `EmbeddingError.modelMissing` when the file does not exist,
    ///   `EmbeddingError.corrupt` when the header or a tensor's range is invalid.
    public init(path: String) throws(EmbeddingError) {
        guard FileManager.default.fileExists(atPath: path) else { throw .modelMissing(path) }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw .corrupt(path, "it cannot be read (\(error.localizedDescription))")
        }
        guard data.count >= 8 else { throw .corrupt(path, "it is \(data.count) bytes, shorter than the 8-byte header length") }
        let headerLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) }
        guard headerLength > 1, headerLength <= UInt64(min(data.count - 8, 100 * 1024 * 1024)) else {
            throw .corrupt(path, "the header length \(headerLength) does not fit a file of \(data.count) bytes")
        }
        let headerEnd = 8 + Int(headerLength)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<headerEnd)) as? [String: Any] else {
            throw .corrupt(path, "the header is not a JSON object")
        }
        var tensors: [String: TensorInfo] = [:]
        let available = data.count - headerEnd
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2,
                  offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= available else {
                throw .corrupt(path, "tensor \(name) has an invalid entry or lies outside the file")
            }
            tensors[name] = TensorInfo(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        self.path = path
        self.tensors = tensors
        self.data = data
        self.dataStart = headerEnd
    }

    /// A float32 tensor, copied out of the mapping, checked against `shape`.
    ///
    /// - Throws: `EmbeddingError` when the tensor is missing, not F32, or has another shape.
    public func floats(_ name: String, shape: [Int]) throws(EmbeddingError) -> [Float] {
        guard let info = tensors[name] else { throw .missingTensor(name, in: path) }
        guard info.dtype == "F32" else { throw .corrupt(path, "tensor \(name) is \(info.dtype), expected F32") }
        guard info.shape == shape else { throw .badShape(name, expected: shape, actual: info.shape) }
        let count = shape.reduce(1, *)
        guard info.range.count == count * MemoryLayout<Float>.size else {
            throw .corrupt(path, "tensor \(name) holds \(info.range.count) bytes, expected \(count * 4)")
        }
        let start = dataStart + info.range.lowerBound
        return data.withUnsafeBytes { raw in
            [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                let source = UnsafeRawBufferPointer(rebasing: raw[start..<(start + count * 4)])
                for index in 0..<count {
                    buffer[index] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
                }
                initialized = count
            }
        }
    }
}
