import Canon
@testable import CanonPostgres
import CanonTesting
import Logging
import PostgresNIO
import Synchronization
import Testing

/// Commit notifications are coalesced per process: at most one per interval, and every commit is
/// still announced, by its own notification or by one at most an interval later.
@Suite("Commit announcements")
struct CommitAnnouncementTests {
    let t0 = ContinuousClock.now

    @Test func aZeroIntervalAnnouncesEveryCommit() {
        let announcements = CommitAnnouncements(interval: .zero)
        #expect(announcements.claim(at: t0))
        #expect(announcements.claim(at: t0))
    }

    @Test func oneCommitPerWindowAnnouncesItself() {
        let announcements = CommitAnnouncements(interval: .milliseconds(10))
        #expect(announcements.claim(at: t0), "an idle store's commit is announced at once")
        #expect(!announcements.claim(at: t0 + .milliseconds(9)))
        #expect(announcements.claim(at: t0 + .milliseconds(10)))
        #expect(!announcements.claim(at: t0 + .milliseconds(15)))
    }

    @Test func quietCommitsAreAnnouncedWhenTheWindowEnds() {
        let announcements = CommitAnnouncements(interval: .milliseconds(10))
        #expect(announcements.claim(at: t0))
        #expect(!announcements.claim(at: t0 + .milliseconds(2)))
        // The first quiet commit schedules the trailing announcement for the window's end; the
        // next ones join it.
        #expect(announcements.unannounced(7, at: t0 + .milliseconds(3)) == t0 + .milliseconds(10))
        #expect(announcements.unannounced(9, at: t0 + .milliseconds(4)) == nil)
        #expect(announcements.unannounced(8, at: t0 + .milliseconds(5)) == nil)
        #expect(announcements.takeTrailing(at: t0 + .milliseconds(10)) == 9, "the newest quiet position")
        // Sending it started a window of its own.
        #expect(!announcements.claim(at: t0 + .milliseconds(12)))
        // A quiet commit after the trailing announcement schedules another.
        #expect(announcements.unannounced(10, at: t0 + .milliseconds(13)) == t0 + .milliseconds(20))
        #expect(announcements.takeTrailing(at: t0 + .milliseconds(20)) == 10)
        #expect(announcements.takeTrailing(at: t0 + .milliseconds(21)) == nil, "nothing is announced twice")
    }

    @Test func aLaterAnnouncedCommitCoversTheQuietOnes() {
        let announcements = CommitAnnouncements(interval: .milliseconds(10))
        #expect(announcements.claim(at: t0))
        let due = announcements.unannounced(5, at: t0 + .milliseconds(1))
        #expect(due == t0 + .milliseconds(10))
        announcements.announced(4)
        #expect(announcements.unannounced(6, at: t0 + .milliseconds(2)) == nil, "still scheduled")
        announcements.announced(6)
        #expect(announcements.takeTrailing(at: t0 + .milliseconds(10)) == nil, "position 6 was announced")
        // A quiet commit after a trailing one found nothing to send is scheduled again, for when
        // the window ends (the last window started at t0; it has ended).
        #expect(announcements.unannounced(7, at: t0 + .milliseconds(11)) == t0 + .milliseconds(11))
    }

    @Test func aQuietCommitOfUnknownOutcomeIsCoveredOnlyByTheTrailingAnnouncement() {
        let announcements = CommitAnnouncements(interval: .milliseconds(10))
        #expect(announcements.claim(at: t0))
        #expect(announcements.unannounced(Int64.max, at: t0 + .milliseconds(1)) == t0 + .milliseconds(10))
        announcements.announced(1_000)
        #expect(announcements.takeTrailing(at: t0 + .milliseconds(10)) != nil, "no position proves it was covered")
    }
}

/// The same on a real server: a burst of commits from one store sends far fewer notifications
/// than commits, and the last commit's position is always announced.
@Suite("Commit announcements on PostgreSQL", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipMessage)))
struct CommitAnnouncementPostgresTests {
    final class Heard: Sendable {
        let positions = PositionWaiters()
        let count = Mutex(0)
    }

    @Test(.timeLimit(.minutes(1)))
    func aBurstOfCommitsIsAnnouncedByFewNotificationsEndingAtItsLastPosition() async throws {
        let url = try await PostgresTestServer.createDatabase()
        // A long window: every commit of the burst but the first falls inside it.
        let store = try await PostgresCanonicalStore(
            url: url, migrations: ConformanceSchema.migrations, configuration: .init(groupCommit: nil, announceInterval: .seconds(2)))
        let connection = try await PostgresConnection.connect(
            configuration: .init(host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: .disable),
            id: 1, logger: Logger(label: "test"))
        let heard = Heard()
        let listening = PositionWaiters()
        let listener = Task {
            try await connection.listen(on: PostgresCanonicalStore.notificationChannel) { notifications in
                listening.advance(to: OutboxPosition(1))
                for try await notification in notifications {
                    heard.count.withLock { $0 += 1 }
                    if let position = Int64(notification.payload) { heard.positions.advance(to: OutboxPosition(position)) }
                }
            }
        }
        defer { listener.cancel() }
        #expect(await listening.wait(until: OutboxPosition(1), timeout: .seconds(30)), "listening")
        var last = OutboxPosition(0)
        for index in 0..<20 {
            last = try await store.commit(try CanonicalStoreConformance.openAccount("a\(index)")).position
        }
        #expect(last == OutboxPosition(20))
        #expect(await heard.positions.wait(until: last, timeout: .seconds(30)), "the last commit is announced")
        let notifications = heard.count.withLock { $0 }
        #expect(notifications >= 2 && notifications < 20, "\(notifications) notifications for 20 commits")
        try? await connection.close()
    }
}
