import CBLAS
import Foundation

/// Plain OpenBLAS kernels, timed beside Canon's own work in benchmarks as the machine's limit.
public enum BLASKernels {
    /// GFLOP/s of `cblas_sgemm` on the feed-forward shape `[rows × inner] · [inner × outer]`,
    /// one single-threaded loop per core for about 0.5 s: the machine's limit for the encoder.
    public static func sgemmGflops(rows: Int, inner: Int, outer: Int) -> Double {
        openblas_set_num_threads(1)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let runs = Counter()
        let start = ContinuousClock.now
        DispatchQueue.concurrentPerform(iterations: cores) { _ in
            let a = [Float](repeating: 0.01, count: rows * inner)
            let b = [Float](repeating: 0.02, count: outer * inner)
            var c = [Float](repeating: 0, count: rows * outer)
            while ContinuousClock.now - start < .milliseconds(500) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outer), Int32(inner), 1, a, Int32(inner), b, Int32(inner), 0, &c, Int32(outer))
                runs.add()
            }
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return 2.0 * Double(rows * inner * outer) * Double(runs.value) / seconds / 1e9
    }

    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        func add() { lock.lock(); count += 1; lock.unlock() }
        var value: Int { lock.lock(); defer { lock.unlock() }; return count }
    }

    /// Every row's dot product with `query` by `cblas_sgemv`: an exact scan with nothing else.
    @discardableResult
    public static func scan(matrix: [Float], rows: Int, query: [Float]) -> [Float] {
        var scores = [Float](repeating: 0, count: rows)
        guard rows > 0 else { return scores }
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(query.count), 1, matrix, Int32(query.count), query, 1, 0, &scores, 1)
        return scores
    }
}
