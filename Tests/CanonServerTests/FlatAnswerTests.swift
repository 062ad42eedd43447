import Canon
@testable import CanonServer
import CasePlatform
import Foundation
import Testing

/// Every command answers with `WriteAnswer`, written by the flat writer: byte for byte what the
/// server's `JSONEncoder` (sorted keys, unescaped slashes) writes.
@Suite("Flat write answers")
struct FlatAnswerTests {
    @Test(arguments: [
        CaseRoutes.WriteAnswer(id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", version: 1, status: .intake, position: OutboxPosition(1)),
        CaseRoutes.WriteAnswer(id: "a/b \"quoted\" \\ tab\t é 🙂 \u{1}", version: .max, status: nil, position: OutboxPosition(0)),
        CaseRoutes.WriteAnswer(id: "", version: -1, status: .closed, position: OutboxPosition(.max)),
    ])
    func aWriteAnswerIsWhatTheEncoderWrites(_ answer: CaseRoutes.WriteAnswer) throws {
        var writer = FlatJSONWriter(capacity: 16, escapingSlashes: false)
        answer.encode(into: &writer)
        let flat = writer.finish()
        let expected = try JSONBody.encoder.encode(answer)
        #expect(flat == expected, "\(String(decoding: flat, as: UTF8.self)) != \(String(decoding: expected, as: UTF8.self))")
        let response = try JSONBody.response(answer, status: .created)
        #expect(response.headers[.contentType] == "application/json")
    }
}
