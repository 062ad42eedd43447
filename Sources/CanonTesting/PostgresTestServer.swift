import Canon
import CanonPostgres
import Foundation

/// The throwaway PostgreSQL 15 server the test command starts (`scripts/test` exports its
/// address as `CANON_TEST_POSTGRES_URL`). Each test gets a database of its own.
///
/// Run by hand without it, PostgreSQL tests skip with `PostgresTestServer.skipMessage`. When
/// `CANON_REQUIRE_POSTGRES` is set (CI sets it through `scripts/test`), they run and fail instead.
public enum PostgresTestServer {
    public static let skipMessage =
        "PostgreSQL tests need a server: run scripts/test (it starts a throwaway PostgreSQL 15), or set CANON_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres"

    /// The server's address, or nil when none was given.
    public static var url: PostgresURL? {
        ProcessInfo.processInfo.environment["CANON_TEST_POSTGRES_URL"].flatMap { try? PostgresURL($0) }
    }

    /// Whether PostgreSQL tests run: a server is given, or one is required (then they fail).
    public static var enabled: Bool {
        url != nil || ProcessInfo.processInfo.environment["CANON_REQUIRE_POSTGRES"] != nil
    }

    /// Creates a new empty database (byte-order collation) and returns its address.
    public static func createDatabase(prefix: String = "canon_test") async throws -> PostgresURL {
        guard let url else { throw CanonicalStoreError.storage(skipMessage) }
        let name = "\(prefix)_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16))"
        let admin = PostgresDatabase(url: url, maximumConnections: 1)
        defer { admin.close() }
        try await admin.execute("CREATE DATABASE \(name) TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
        return url.database(name)
    }
}
