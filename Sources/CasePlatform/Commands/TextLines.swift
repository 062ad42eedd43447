import Foundation
import Synchronization

/// The lines of a regular text file, read a chunk at a time (a legacy export can be larger than
/// memory should hold), for `canon backfill`: `\n` or `\r\n` endings, a last line without an
/// ending counted, and each line's bytes checked to be UTF-8 rather than repaired.
public struct TextLines: Sequence, Sendable {
    public let path: String
    /// How many lines the file has.
    public let count: Int
    let chunkSize: Int
    /// Why reading stopped before the end of the file, if it did: the lines then look finished,
    /// so the caller must ask.
    public let failure = ReadFailure()

    public enum OpenError: Error, CustomStringConvertible {
        case unreadable(String, String)
        case notARegularFile(String)

        public var description: String {
            switch self {
            case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
            case .notARegularFile(let path):
                "\(path) is not a regular file (a pipe or a device can be read only once, and it is read twice: to count, then to import); write it to a file first"
            }
        }
    }

    /// Opens `path` and counts its lines.
    /// - Throws: `OpenError` when it cannot be read or is not a regular file.
    public init(path: String, chunkSize: Int = 1 << 20) throws {
        self.path = path
        self.chunkSize = Swift.max(1, chunkSize)
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw OpenError.unreadable(path, (error as NSError).localizedDescription)
        }
        guard attributes[.type] as? FileAttributeType == .typeRegular else { throw OpenError.notARegularFile(path) }
        var count = 0
        var last: UInt8 = 0x0A
        do {
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            while let chunk = try handle.read(upToCount: self.chunkSize), !chunk.isEmpty {
                chunk.withUnsafeBytes { bytes in
                    for byte in bytes where byte == 0x0A { count += 1 }
                }
                last = chunk.last!
            }
        } catch {
            throw OpenError.unreadable(path, (error as NSError).localizedDescription)
        }
        self.count = count + (last == 0x0A ? 0 : 1)
    }

    public func makeIterator() -> Iterator {
        do {
            return Iterator(handle: try FileHandle(forReadingFrom: URL(fileURLWithPath: path)), chunkSize: chunkSize, failure: failure)
        } catch {
            failure.record(error)
            return Iterator(handle: nil, chunkSize: chunkSize, failure: failure, finished: true)
        }
    }

    public final class ReadFailure: Sendable {
        private let error = Mutex<(any Error)?>(nil)
        public var value: (any Error)? { error.withLock { $0 } }
        func record(_ error: any Error) { self.error.withLock { $0 = error } }
    }

    public struct Iterator: IteratorProtocol {
        let handle: FileHandle?
        let chunkSize: Int
        let failure: ReadFailure
        var buffer: [UInt8] = []
        var start = 0
        /// Where the search for the next newline goes on (bytes before it, from `start`, hold none).
        var scanned = 0
        var finished = false
        /// Inside a line longer than `maximumLineBytes`: its bytes are dropped up to its end.
        var discarding = false

        /// Longer lines are not held: each is yielded as a short marker that fails to parse.
        static let maximumLineBytes = 16 << 20

        public mutating func next() -> CaseBackfill.InputLine? {
            while true {
                if let end = buffer[Swift.max(start, scanned)...].firstIndex(of: 0x0A) {
                    var line = buffer[start..<end]
                    if line.last == 0x0D { line = line.dropLast() }
                    start = end + 1
                    scanned = start
                    if discarding || line.count > Self.maximumLineBytes {
                        discarding = false
                        return Self.tooLong
                    }
                    return Self.line(line)
                }
                scanned = buffer.count
                if finished {
                    guard start < buffer.count || discarding else { return nil }
                    defer { start = buffer.count; scanned = start }
                    if discarding {
                        discarding = false
                        return Self.tooLong
                    }
                    var line = buffer[start...]
                    if line.last == 0x0D { line = line.dropLast() }
                    return line.count > Self.maximumLineBytes ? Self.tooLong : Self.line(line)
                }
                // (+1: a line's "\r" may wait here for its "\n".)
                if discarding || buffer.count - start > Self.maximumLineBytes + 1 {
                    discarding = true
                    start = buffer.count
                }
                buffer.removeFirst(start)
                scanned -= start
                start = 0
                do {
                    if let chunk = try handle?.read(upToCount: chunkSize), !chunk.isEmpty {
                        buffer.append(contentsOf: chunk)
                        continue
                    }
                } catch {
                    failure.record(error)
                }
                finished = true
                try? handle?.close()
            }
        }

        /// What a line over the limit is read as: not JSON, so it is rejected with its number.
        static let tooLong = CaseBackfill.InputLine(text: "the line is longer than \(maximumLineBytes >> 20) MiB and was not read", isTooLong: true)

        static func line(_ bytes: ArraySlice<UInt8>) -> CaseBackfill.InputLine {
            if let text = String(validating: bytes, as: UTF8.self) { return .init(text: text) }
            return .init(text: String(decoding: bytes, as: UTF8.self), isValidUTF8: false)
        }
    }
}
