import Canon
@testable import CanonPostgres
import Testing

/// The payloads processes send each other over LISTEN/NOTIFY name a projection; a name may hold
/// colons, so the numbers are read from the right.
@Suite("Notification payloads")
struct NotificationPayloadTests {
    @Test func appliedPayloadsParseWithColonsInTheName() throws {
        let (plain, at) = try #require(PostgresNotifications.parseApplied("case-search:3:1200"))
        #expect(plain == ProjectionIdentity(name: "case-search", version: 3) && at == OutboxPosition(1200))
        let (colons, position) = try #require(PostgresNotifications.parseApplied("tenant:a:case-search:2:7"))
        #expect(colons == ProjectionIdentity(name: "tenant:a:case-search", version: 2) && position == OutboxPosition(7))
        for bad in ["", "case-search", "case-search:3", ":3:4", "case-search:x:4", "case-search:3:y"] {
            #expect(PostgresNotifications.parseApplied(bad) == nil, "\(bad)")
        }
    }

    @Test func resumePayloadsParseWithColonsInTheName() {
        #expect(PostgresNotifications.parseResume("resume:case-search:2") == ProjectionIdentity(name: "case-search", version: 2))
        #expect(PostgresNotifications.parseResume("resume:tenant:a:timeline:1") == ProjectionIdentity(name: "tenant:a:timeline", version: 1))
        for bad in ["", "resume:", "resume:case-search", "resume::2", "pause:case-search:2", "resume:case-search:two"] {
            #expect(PostgresNotifications.parseResume(bad) == nil, "\(bad)")
        }
    }
}
