import CanonServer
import Foundation
import Logging
import Synchronization
import Testing

/// `canon`'s log lines are `StreamLogHandler`'s: the same line for the same event, metadata
/// (the logger's, the event's, an error's) sorted by key.
@Suite("Log lines")
struct LogHandlerTests {
    final class Lines: TextOutputStream, @unchecked Sendable {
        let lines = Mutex<[String]>([])
        func write(_ string: String) { lines.withLock { $0.append(string) } }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String { "the disk is full" }
    }

    @Test func aLineIsWhatStreamLogHandlerWrites() {
        let ours = Lines()
        let theirs = Lines()
        var canon = Logger(label: "canon") { label in CanonLogHandler(label: label, write: { ours.write($0) }) }
        var stream = Logger(label: "canon") { label in StreamLogHandler(label: label, stream: theirs, metadataProvider: nil) }
        for index in 0..<2 {
            var logger = index == 0 ? canon : stream
            logger[metadataKey: "principal.id"] = "ivan"
            logger[metadataKey: "hb.request.id"] = "7"
            logger.warning("apply failed; retrying", metadata: ["attempt": "2", "outbox.position": "12"])
            logger.info("no metadata of its own")
            logger.error("write failed", error: Failure())
            logger.debug("below the level: not written")
            if index == 0 { canon = logger } else { stream = logger }
        }
        // The timestamps (to the second) may differ: the rest must not.
        func rest(_ line: String) -> Substring { line.drop { $0 != " " } }
        let mine = ours.lines.withLock { $0 }, reference = theirs.lines.withLock { $0 }
        #expect(mine.count == 3)
        #expect(mine.map(rest) == reference.map(rest))
        #expect(mine.first?.contains(" warning canon: attempt=2 hb.request.id=7 outbox.position=12 principal.id=ivan [CanonServerTests] apply failed; retrying") == true)
    }
}
