import Canon
import Foundation
import Testing

@Suite("Content checksums")
struct ContentHasherTests {
    static func digest(_ rows: [String]) -> String {
        var hasher = ContentHasher()
        for row in rows { hasher.add(row) }
        return hasher.hexDigest
    }

    @Test func theSameRowsInAnyOrderGiveTheSameChecksum() {
        let rows = (0..<50).map { "case-\($0)\u{1F}title \($0)\u{1F}open" }
        #expect(Self.digest(rows) == Self.digest(rows.reversed()))
        #expect(Self.digest(rows) == Self.digest(rows.shuffled()))
        #expect(Self.digest(rows).count == 32)
    }

    @Test func anyChangeToTheRowsChangesTheChecksum() {
        let rows = (0..<50).map { "case-\($0)\u{1F}title \($0)\u{1F}open" }
        let base = Self.digest(rows)
        var changed = rows
        changed[17] = "case-17\u{1F}title 17\u{1F}closed"
        #expect(Self.digest(changed) != base)
        #expect(Self.digest(Array(rows.dropLast())) != base, "a missing row")
        #expect(Self.digest(rows + [rows[3]]) != base, "a duplicated row")
        // Rows cannot run together: the boundary is part of each row's hash.
        #expect(Self.digest(["abcdefgh", "ij"]) != Self.digest(["abcdefghi", "j"]))
        #expect(Self.digest(["", "a"]) != Self.digest(["a"]))
        // Every byte counts, in the eight-byte words and in the tail.
        #expect(Self.digest(["0123456789abcdef!"]) != Self.digest(["0123456789abcdeg!"]))
        #expect(Self.digest(["0123456789abcdef!"]) != Self.digest(["0123456789abcdef?"]))
    }
}

@Suite("Atomic file replacement")
struct AtomicFileTests {
    @Test func replacingAFileLeavesOnlyTheNewContentAndNoTemporaryFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("canon-atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("projections.json")
        try AtomicFile.write(Data("one".utf8), to: file)
        try AtomicFile.write(Data("two".utf8), to: file)
        #expect(try String(contentsOf: file, encoding: .utf8) == "two")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["projections.json"])
        // A target that cannot be replaced is an error, and the temporary file goes.
        let blocked = directory.appendingPathComponent("a-directory")
        try FileManager.default.createDirectory(at: blocked.appendingPathComponent("inside"), withIntermediateDirectories: true)
        #expect(throws: (any Error).self) { try AtomicFile.write(Data("x".utf8), to: blocked) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["a-directory", "projections.json"])
    }
}
