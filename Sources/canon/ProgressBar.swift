import Foundation
import Synchronization

/// A progress line on standard error: redrawn in place on a terminal, one line per 10% otherwise.
final class ProgressBar: Sendable {
    let label: String
    let total: Int
    private let started = Date()
    private let interactive = isatty(2) != 0
    private let lastDecile = Mutex(-1)

    init(label: String, total: Int) {
        self.label = label
        self.total = total
    }

    func update(_ done: Int, detail: String = "") {
        let fraction = total == 0 ? 1 : min(1, Double(done) / Double(total))
        let elapsed = Date().timeIntervalSince(started)
        let remaining = fraction > 0 ? elapsed / fraction - elapsed : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = "\(label) [\(bar)] \(Int(fraction * 100))%  \(done)/\(total)  \(detail)  eta \(Int(max(0, remaining).rounded()))s"
        if interactive {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (done >= total ? "\n" : "")).utf8))
        } else {
            let decile = Int(fraction * 10)
            let changed = lastDecile.withLock { last in
                defer { last = max(last, decile) }
                return decile > last
            }
            if changed { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        }
    }
}
