import CBLAS
import Foundation

/// The 6-layer BERT encoder of all-MiniLM-L6-v2 (hidden 384, 12 heads, intermediate 1536, GELU,
/// LayerNorm eps 1e-12), run in float32 with matrix products through OpenBLAS's `cblas_sgemm`.
///
/// Weights are copied out of the safetensors mapping once; a forward pass allocates its own
/// scratch, so one encoder serves concurrent callers.
struct BertEncoder: Sendable {
    struct Configuration: Sendable {
        var hidden = 384
        var heads = 12
        var intermediate = 1536
        var layers = 6
        var vocabulary = 30522
        var positions = 512
        var epsilon: Float = 1e-12
        var headSize: Int { hidden / heads }
    }

    struct Linear: Sendable {
        /// Row-major `[out, in]`, as PyTorch stores it.
        var weight: [Float]
        var bias: [Float]
        var input: Int
        var output: Int
    }

    struct LayerNorm: Sendable {
        var weight: [Float]
        var bias: [Float]
    }

    struct Layer: Sendable {
        var query: Linear
        var key: Linear
        var value: Linear
        var attentionOutput: Linear
        var attentionNorm: LayerNorm
        var intermediate: Linear
        var output: Linear
        var outputNorm: LayerNorm
    }

    let configuration: Configuration
    let wordEmbeddings: [Float]
    let positionEmbeddings: [Float]
    let tokenTypeEmbeddings: [Float]
    let embeddingNorm: LayerNorm
    let layers: [Layer]

    init(weights file: SafeTensors, configuration: Configuration = Configuration()) throws(EmbeddingError) {
        let h = configuration.hidden
        func linear(_ prefix: String, input: Int, output: Int) throws(EmbeddingError) -> Linear {
            Linear(
                weight: try file.floats("\(prefix).weight", shape: [output, input]), bias: try file.floats("\(prefix).bias", shape: [output]),
                input: input, output: output)
        }
        func norm(_ prefix: String) throws(EmbeddingError) -> LayerNorm {
            LayerNorm(weight: try file.floats("\(prefix).weight", shape: [h]), bias: try file.floats("\(prefix).bias", shape: [h]))
        }
        self.configuration = configuration
        wordEmbeddings = try file.floats("embeddings.word_embeddings.weight", shape: [configuration.vocabulary, h])
        positionEmbeddings = try file.floats("embeddings.position_embeddings.weight", shape: [configuration.positions, h])
        tokenTypeEmbeddings = try file.floats("embeddings.token_type_embeddings.weight", shape: [2, h])
        embeddingNorm = try norm("embeddings.LayerNorm")
        var layers: [Layer] = []
        for index in 0..<configuration.layers {
            let p = "encoder.layer.\(index)"
            layers.append(Layer(
                query: try linear("\(p).attention.self.query", input: h, output: h),
                key: try linear("\(p).attention.self.key", input: h, output: h),
                value: try linear("\(p).attention.self.value", input: h, output: h),
                attentionOutput: try linear("\(p).attention.output.dense", input: h, output: h),
                attentionNorm: try norm("\(p).attention.output.LayerNorm"),
                intermediate: try linear("\(p).intermediate.dense", input: h, output: configuration.intermediate),
                output: try linear("\(p).output.dense", input: configuration.intermediate, output: h),
                outputNorm: try norm("\(p).output.LayerNorm")))
        }
        self.layers = layers
    }

    /// Mean-pooled, L2-normalised sentence embeddings for a batch of token-id sequences.
    /// Sequences are padded to the longest; padding is masked out of attention and pooling.
    func embed(_ batch: [[Int32]]) -> [[Float]] {
        guard !batch.isEmpty else { return [] }
        let h = configuration.hidden
        let length = batch.map(\.count).max()!
        let rows = batch.count * length
        // Embeddings: word + position + token type 0, then LayerNorm.
        var states = [Float](repeating: 0, count: rows * h)
        for (b, ids) in batch.enumerated() {
            for t in 0..<length {
                let row = (b * length + t) * h
                let id = t < ids.count ? Int(ids[t]) : 0
                for i in 0..<h {
                    states[row + i] = wordEmbeddings[id * h + i] + positionEmbeddings[t * h + i] + tokenTypeEmbeddings[i]
                }
            }
        }
        layerNorm(&states, rows: rows, embeddingNorm)
        var query = [Float](repeating: 0, count: rows * h)
        var key = [Float](repeating: 0, count: rows * h)
        var value = [Float](repeating: 0, count: rows * h)
        var context = [Float](repeating: 0, count: rows * h)
        var projected = [Float](repeating: 0, count: rows * h)
        var intermediate = [Float](repeating: 0, count: rows * configuration.intermediate)
        var scores = [Float](repeating: 0, count: length * length)
        let lengths = batch.map(\.count)
        for layer in layers {
            apply(layer.query, states, rows: rows, into: &query)
            apply(layer.key, states, rows: rows, into: &key)
            apply(layer.value, states, rows: rows, into: &value)
            attention(query: query, key: key, value: value, lengths: lengths, length: length, scores: &scores, into: &context)
            apply(layer.attentionOutput, context, rows: rows, into: &projected)
            for i in 0..<(rows * h) { projected[i] += states[i] }
            layerNorm(&projected, rows: rows, layer.attentionNorm)
            swap(&states, &projected)
            apply(layer.intermediate, states, rows: rows, into: &intermediate)
            gelu(&intermediate)
            apply(layer.output, intermediate, rows: rows, into: &projected)
            for i in 0..<(rows * h) { projected[i] += states[i] }
            layerNorm(&projected, rows: rows, layer.outputNorm)
            swap(&states, &projected)
        }
        // Mean pooling over real tokens, then L2 normalisation.
        return batch.indices.map { b in
            var pooled = [Float](repeating: 0, count: h)
            for t in 0..<lengths[b] {
                let row = (b * length + t) * h
                for i in 0..<h { pooled[i] += states[row + i] }
            }
            let count = Float(max(1, lengths[b]))
            var norm: Float = 0
            for i in 0..<h {
                pooled[i] /= count
                norm += pooled[i] * pooled[i]
            }
            let scale = 1 / max(norm.squareRoot(), 1e-12)
            return pooled.map { $0 * scale }
        }
    }

    /// `output = input · Wᵀ + b` for `rows` rows.
    private func apply(_ linear: Linear, _ input: [Float], rows: Int, into output: inout [Float]) {
        let n = linear.output, k = linear.input
        output.withUnsafeMutableBufferPointer { out in
            for r in 0..<rows { for c in 0..<n { out[r * n + c] = linear.bias[c] } }
            input.withUnsafeBufferPointer { a in
                linear.weight.withUnsafeBufferPointer { w in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(k), 1, a.baseAddress, Int32(k),
                                w.baseAddress, Int32(k), 1, out.baseAddress, Int32(n))
                }
            }
        }
    }

    /// Multi-head self-attention per sequence: softmax(QKᵀ/√d + mask)·V, heads side by side.
    private func attention(
        query: [Float], key: [Float], value: [Float], lengths: [Int], length: Int, scores: inout [Float], into context: inout [Float]
    ) {
        let h = configuration.hidden, d = configuration.headSize
        let scale = 1 / Float(d).squareRoot()
        query.withUnsafeBufferPointer { q in
        key.withUnsafeBufferPointer { k in
        value.withUnsafeBufferPointer { v in
        scores.withUnsafeMutableBufferPointer { s in
        context.withUnsafeMutableBufferPointer { c in
            for b in lengths.indices {
                let base = b * length * h
                let valid = lengths[b]
                for head in 0..<configuration.heads {
                    let offset = base + head * d
                    // scores[L, L] = Q_h · K_hᵀ · scale
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(length), Int32(length), Int32(d), scale,
                                q.baseAddress! + offset, Int32(h), k.baseAddress! + offset, Int32(h), 0, s.baseAddress, Int32(length))
                    for row in 0..<length {
                        let r = row * length
                        var maximum = -Float.infinity
                        for col in 0..<valid { maximum = max(maximum, s[r + col]) }
                        var sum: Float = 0
                        for col in 0..<length {
                            let e = col < valid ? expf(s[r + col] - maximum) : 0
                            s[r + col] = e
                            sum += e
                        }
                        let inverse = 1 / sum
                        for col in 0..<valid { s[r + col] *= inverse }
                    }
                    // context_h[L, d] = scores · V_h
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(length), Int32(d), Int32(length), 1,
                                s.baseAddress, Int32(length), v.baseAddress! + offset, Int32(h), 0, c.baseAddress! + offset, Int32(h))
                }
            }
        }}}}}
    }

    private func layerNorm(_ x: inout [Float], rows: Int, _ norm: LayerNorm) {
        let h = configuration.hidden
        let epsilon = configuration.epsilon
        x.withUnsafeMutableBufferPointer { x in
            for r in 0..<rows {
                let row = r * h
                var mean: Float = 0
                for i in 0..<h { mean += x[row + i] }
                mean /= Float(h)
                var variance: Float = 0
                for i in 0..<h {
                    let centered = x[row + i] - mean
                    variance += centered * centered
                }
                variance /= Float(h)
                let inverse = 1 / (variance + epsilon).squareRoot()
                for i in 0..<h { x[row + i] = (x[row + i] - mean) * inverse * norm.weight[i] + norm.bias[i] }
            }
        }
    }

    /// The exact (erf) GELU BERT uses: x·Φ(x) = 0.5·x·(1 + erf(x/√2)), with erf from
    /// Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, under float32's own rounding at
    /// these magnitudes) instead of libm's `erff`, which was a tenth of the encoder's time.
    private func gelu(_ x: inout [Float]) {
        x.withUnsafeMutableBufferPointer { x in
            for i in x.indices {
                let v = x[i]
                let z = abs(v) * 0.70710678118654752
                let t = 1 / (1 + 0.3275911 * z)
                let polynomial = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
                let erf = 1 - polynomial * expf(-z * z)
                x[i] = 0.5 * v * (1 + (v < 0 ? -erf : erf))
            }
        }
    }
}
