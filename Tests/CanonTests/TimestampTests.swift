import Canon
import Foundation
import Testing

@Suite("Timestamps")
struct TimestampTests {
    @Test(arguments: [0.0, 1_700_000_000.25, 1_793_491_200.123456, -86_400.5, 951_782_400, 4_102_444_799.999999])
    func formattingAgreesWithFoundationAndRoundTrips(_ seconds: Double) throws {
        let date = Timestamp.stored(Date(timeIntervalSince1970: seconds))
        let text = Timestamp.iso8601(date)
        #expect(text.count == 27)
        let whole = Date(timeIntervalSince1970: (date.timeIntervalSince1970).rounded(.down))
        #expect(text.prefix(19) == whole.formatted(.iso8601).prefix(19), "calendar fields agree with Foundation")
        #expect(Timestamp.parseISO8601(text) == date)
    }

    @Test func aYearPastFourDigitsIsWrittenWhole() {
        // 10000-01-01: 2,932,897 days after 1970-01-01.
        #expect(Timestamp.iso8601(Date(timeIntervalSince1970: 253_402_300_800)) == "10000-01-01T00:00:00.000000Z")
        #expect(Timestamp.iso8601(Date(timeIntervalSince1970: 253_402_300_799)) == "9999-12-31T23:59:59.000000Z")
    }

    @Test func parsesWithoutFractionAndWithOffsets() throws {
        #expect(Timestamp.parseISO8601("2026-11-25T14:00:00Z") == Date(timeIntervalSince1970: 1_795_615_200))
        #expect(Timestamp.parseISO8601("2026-11-25T15:00:00+01:00") == Date(timeIntervalSince1970: 1_795_615_200))
        #expect(Timestamp.parseISO8601("2026-11-25T14:00:00.5Z") == Date(timeIntervalSince1970: 1_795_615_200.5))
    }

    @Test(arguments: ["", "2026-11-25", "2026-13-01T00:00:00Z", "2026-11-25T14:00:00", "2026-11-25T14:00:00.Z", "yesterday", "2026-11-25T14:00:00Zjunk"])
    func rejectsMalformedText(_ text: String) {
        #expect(Timestamp.parseISO8601(text) == nil)
    }
}
