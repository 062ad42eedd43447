import Canon
import CanonEmbedded
import CanonSQLite
import CanonTesting
import CasePlatform
import Embeddings
import Foundation
import GRDB
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization
import Testing

/// The `canon` executable end to end: demo seeding, serving, SIGTERM, restart on the same data.
@Suite("canon command line", .serialized)
struct CLITests {
    /// The `canon` binary built next to the test bundle by `swift build --build-tests`.
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("canon")
    }

    @Test func demoSeedsServesStopsOnSIGTERMAndRestartsOnTheSameData() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build canon first: swift build --build-tests")
        let scratch = try TemporaryDirectory(prefix: "canon-cli")
        let data = scratch.file("data")

        let first = try RunningCanon(arguments: ["demo", "--data", data, "--cases", "40", "--port", "0"])
        let url = try await first.waitForURL()
        #expect(first.output.contains("seeded 40 cases"))
        #expect(first.errors.contains("seeding cases"), "progress is shown")
        let token = try #require(first.output.split(separator: "\n").first { $0.contains(" ivan ") }?.split(separator: " ").last.map(String.init))
        let (status, body) = try await get(url + "/v1/me", token: token)
        #expect(status == 200)
        #expect(body.contains("\"role\":\"investigator\""))
        let ready = try await get(url + "/ready", token: nil)
        #expect(ready.0 == 200)

        first.terminate()
        let exit = try await first.waitForExit()
        #expect(exit == 0)
        #expect(first.output.contains("canon stopped cleanly"))

        let statusRun = try RunningCanon(arguments: ["status", "--data", data, "--format", "json"])
        #expect(try await statusRun.waitForExit() == 0)
        let statusJSON = try #require(try JSONSerialization.jsonObject(with: Data(statusRun.output.utf8)) as? [String: Any])
        let projections = try #require(statusJSON["projections"] as? [[String: Any]])
        let stores = try #require(statusJSON["stores"] as? [[String: Any]])
        #expect(stores.count == 8)
        #expect(stores.allSatisfy { ["ok", "lagging", "degraded", "planned"].contains($0["health"] as? String ?? "") })
        #expect(stores.first { $0["name"] as? String == "sla-dashboard" }?["health"] as? String == "planned")
        // Semantic retrieval runs when the model is installed (always in CI: scripts/test installs it).
        let semantic = FileManager.default.fileExists(atPath: SentenceEmbedder.defaultDirectory + "/model.safetensors")
        #expect(projections.compactMap { $0["name"] as? String } == ["case-search", "case-timeline"] + (semantic ? ["evidence-semantic"] : []))

        let rebuild = try RunningCanon(arguments: ["rebuild", "case-search", "--data", data])
        #expect(try await rebuild.waitForExit() == 0, "\(rebuild.errors)")
        #expect(rebuild.output.contains("case-search@2 is live"))
        #expect(rebuild.errors.contains("rebuilding case-search"), "progress is shown")

        let second = try RunningCanon(arguments: ["demo", "--data", data, "--port", "0"])
        let secondURL = try await second.waitForURL()
        #expect(second.output.contains("found 40 cases"))
        let again = try await get(secondURL + "/v1/me", token: token)
        #expect(again.0 == 200, "tokens survive a restart: the key is in the canonical store")
        let search = try await get(secondURL + "/v1/search/cases?limit=3", token: token)
        #expect(search.0 == 200)
        #expect(search.1.contains("\"as_of_position\""), "the restarted server reads the rebuilt version")
        second.interrupt()
        #expect(try await second.waitForExit() == 0)
        // Settings for a first run, given again with other values, are refused, not ignored.
        let reseeded = try RunningCanon(arguments: ["demo", "--data", data, "--cases", "41", "--port", "0"])
        #expect(try await reseeded.waitForExit() != 0)
        #expect(reseeded.errors.contains("was seeded with 40 cases and seed 42"), "\(reseeded.errors)")

        let token2 = try RunningCanon(arguments: ["token", "--data", data, "--user", "ivan"])
        #expect(try await token2.waitForExit() == 0)
        // Signed by the same key, kept in the canonical store; a fresh expiry.
        let store = try SQLiteCanonicalStore(path: data + "/canonical.sqlite", migrations: CasePlatformSchema.migrations)
        let tokens = try await AccessTokens.load(from: store)
        #expect(try tokens.userID(from: token2.output.trimmingCharacters(in: .whitespacesAndNewlines)) == "ivan")
        #expect(try tokens.userID(from: token) == "ivan")
    }

    @Test func sigtermDuringSeedingStopsCleanlyBetweenChunks() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build canon first: swift build --build-tests")
        let scratch = try TemporaryDirectory(prefix: "canon-cli-seed")
        let data = scratch.file("data")
        let seeding = try RunningCanon(arguments: ["demo", "--data", data, "--cases", "2000000", "--port", "0"])
        let file = data + "/canonical.sqlite"
        // The first progress line is printed once the first chunk has committed.
        let started = try await seeding.waitUntil(seconds: 60) { seeding.errors.contains("seeding cases") }
        try #require(started, "seeding began")
        seeding.terminate()
        #expect(try await seeding.waitForExit() == 0)
        #expect(seeding.output.contains("seeding stopped after"), "\(seeding.output) \(seeding.errors)")
        let store = try SQLiteCanonicalStore(path: file, migrations: CasePlatformSchema.migrations)
        let cases = try await store.count("cases", filter: [:])
        #expect(cases > 0 && cases < 2_000_000)
        #expect(cases % 250 == 0, "only whole chunks were committed")
    }

    /// SIGTERM as seeding ends (before the server runs) still stops the demo, cleanly: seeding
    /// used to leave both signals ignored until the server's own handling started, and a server
    /// that started after one ran on.
    @Test func sigtermAsSeedingEndsStillStopsTheDemo() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build canon first: swift build --build-tests")
        let scratch = try TemporaryDirectory(prefix: "canon-cli-seeded")
        let demo = try RunningCanon(arguments: ["demo", "--data", scratch.file("data"), "--cases", "20", "--port", "0"])
        let seeded = try await demo.waitUntil(seconds: 60) { demo.output.contains("seeded 20 cases") }
        try #require(seeded, "\(demo.output) \(demo.errors)")
        demo.terminate()
        #expect(try await demo.waitForExit() == 0, "the demo stopped, whichever step the signal found it in")
        #expect(demo.output.contains("canon stopped cleanly"), "\(demo.output) \(demo.errors)")
    }

    /// SIGTERM stops `canon rebuild` after the chunk in flight, with a clear word and exit
    /// status 3, nothing switched; run again, it resumes and switches.
    @Test func sigtermStopsARebuildBetweenChunksAndItResumes() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build canon first: swift build --build-tests")
        let scratch = try TemporaryDirectory(prefix: "canon-cli-rebuild")
        do {
            let platform = try EmbeddedPlatform.open(scratch.dataDirectory, create: true)
            _ = try await DemoPlatform(configuration: .init(cases: 6_000, seed: 3)).seed(into: platform.store)
        }
        // Chunks of one event at first (they double while each commits fast): the first progress
        // line comes after the first chunk, long before the last.
        let rebuild = try RunningCanon(arguments: ["rebuild", "case-timeline", "--data", scratch.url.path, "--chunk-size", "1"])
        let started = try await rebuild.waitUntil(seconds: 60) { rebuild.errors.contains("rebuilding case-timeline") }
        try #require(started, "the rebuild began: \(rebuild.errors)")
        rebuild.terminate()
        #expect(try await rebuild.waitForExit() == 3)
        #expect(rebuild.output.contains("case-timeline: rebuild stopped after position"), "\(rebuild.output) \(rebuild.errors)")
        #expect(!rebuild.output.contains("is live"))
        #expect(try ProjectionCatalog.load(from: scratch.dataDirectory).projections["case-timeline"]?.building == 2)

        let again = try RunningCanon(arguments: ["rebuild", "case-timeline", "--data", scratch.url.path])
        #expect(try await again.waitForExit(seconds: 120) == 0, "\(again.errors)")
        #expect(again.output.contains("case-timeline@2 is live"))
    }

    @Test func badFlagsAndMissingDataAreClearErrors() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-cli")
        let badCases = try RunningCanon(arguments: ["demo", "--data", scratch.file("d"), "--cases", "0"])
        #expect(try await badCases.waitForExit() != 0)
        #expect(badCases.errors.contains("--cases must be between 1 and 2000000"))
        let badPort = try RunningCanon(arguments: ["serve", "--data", scratch.file("d"), "--port", "70000"])
        #expect(try await badPort.waitForExit() != 0)
        #expect(badPort.errors.contains("--port must be between 0 and 65535"))
        let embeddedLoops = try RunningCanon(arguments: ["serve", "--data", scratch.file("d"), "--port", "0", "--event-loops", "2"])
        #expect(try await embeddedLoops.waitForExit() != 0)
        #expect(embeddedLoops.errors.contains("--event-loops applies with --database only"))
        let noLoops = try RunningCanon(arguments: ["worker", "--database", "postgres://nobody@127.0.0.1:1/none", "--event-loops", "0"])
        #expect(try await noLoops.waitForExit() != 0)
        #expect(noLoops.errors.contains("--event-loops must be between 1 and 64; got 0"))
        // A file where a data directory belongs is named as such (not "no canonical store, run canon demo").
        let file = scratch.file("a-file")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        for arguments in [["token", "--data", file, "--user", "ivan"], ["demo", "--data", file, "--port", "0"]] {
            let onAFile = try RunningCanon(arguments: arguments)
            #expect(try await onAFile.waitForExit() != 0)
            #expect(onAFile.errors.contains("is a file, not a data directory"), "\(arguments[0]): \(onAFile.errors)")
        }
        let noStore = try RunningCanon(arguments: ["token", "--data", scratch.file("missing"), "--user", "ivan"])
        #expect(try await noStore.waitForExit() != 0)
        #expect(noStore.errors.contains("no canonical store at"))
        let corrupt = scratch.file("corrupt")
        try FileManager.default.createDirectory(atPath: corrupt, withIntermediateDirectories: true)
        try Data(repeating: 7, count: 8192).write(to: URL(fileURLWithPath: corrupt + "/canonical.sqlite"))
        let corruptRun = try RunningCanon(arguments: ["token", "--data", corrupt, "--user", "ivan"])
        #expect(try await corruptRun.waitForExit() != 0)
        #expect(corruptRun.errors.contains("cannot open canonical store"))
        // Flags whose values would crash, overflow or be ignored are refused before anything runs.
        for (arguments, message) in [
            (["drift", "--data", scratch.file("d"), "case-search", "--limit=-1"], "--limit must be 0 or more; got -1"),
            (["drift", "--data", scratch.file("d"), "case-search", "--since", "5"], "--since applies with --mode since only"),
            (["status", "--data", scratch.file("d"), "--stall-after", "10000000000000000"], "--stall-after must be between 1 and 86400"),
            (["status", "--data", scratch.file("d"), "--stall-after=-1"], "--stall-after must be between 1 and 86400"),
            (["serve", "--data", scratch.file("d"), "--port", "0", "--drift-interval", "9223372036854775807"], "--drift-interval must be between 1 second"),
            (["drift", "--data", scratch.file("d"), "case-search", "--format", "json", "--limit", "5"], "--limit applies to text output"),
            (["rebuild", "--data", scratch.file("d"), "case-search", "--rollback", "--chunk-size", "7"], "apply to a rebuild, not to --rollback"),
            (["rebuild", "--data", scratch.file("d"), "case-search", "--prune", "--from-outbox"], "apply to a rebuild, not to --prune"),
            (["bench", "--scenario", "search", "--database", "postgres://x@127.0.0.1:1/y"], "--database applies to --scenario scale-out, drift and rebuild only"),
            (["bench", "--scenario", "drift", "--database", "postgres://x@127.0.0.1:1/y", "--server", "http://127.0.0.1:1"], "--server applies to --scenario scale-out only"),
        ] {
            let run = try RunningCanon(arguments: arguments)
            #expect(try await run.waitForExit() != 0, "\(arguments)")
            #expect(run.errors.contains(message), "\(arguments): \(run.errors)")
        }
        // A user that cannot be registered is refused before any store is opened: no data
        // directory appears.
        let fresh = scratch.file("fresh")
        let badUser = try RunningCanon(arguments: ["user", "add", "--data", fresh, "--id", "Bad_ID", "--name", "x", "--role", "investigator"])
        #expect(try await badUser.waitForExit() != 0)
        #expect(badUser.errors.contains("id must be 1 to 64 lower-case letters"), "\(badUser.errors)")
        let noTeam = try RunningCanon(arguments: ["user", "add", "--data", fresh, "--id", "nat", "--name", "Nat", "--role", "investigator"])
        #expect(try await noTeam.waitForExit() != 0)
        #expect(noTeam.errors.contains("team is required for the investigator role"), "\(noTeam.errors)")
        #expect(!FileManager.default.fileExists(atPath: fresh), "nothing was created")
    }

    @Test func checkLintsWithExitCodesAndFormats() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-cli")
        let clean = try RunningCanon(arguments: ["check", "--format", "json"])
        #expect(try await clean.waitForExit() == 0)
        #expect(clean.output.contains("\"errors\" : 0"))
        let broken = scratch.file("portfolio.yaml")
        try Data(PlatformPortfolio.yaml.replacingOccurrences(of: "      supported: true\n", with: "      supported: false\n").utf8)
            .write(to: URL(fileURLWithPath: broken))
        let text = try RunningCanon(arguments: ["check", broken])
        #expect(try await text.waitForExit() == 1)
        #expect(text.output.contains("error CANON-P006 [derived-without-rebuild] store=case-search field=rebuild.supported"))
        let sarif = try RunningCanon(arguments: ["check", broken, "--format", "sarif"])
        #expect(try await sarif.waitForExit() == 1)
        let log = try #require(try JSONSerialization.jsonObject(with: Data(sarif.output.utf8)) as? [String: Any])
        #expect(log["version"] as? String == "2.1.0")
        let missing = try RunningCanon(arguments: ["check", scratch.file("nope.yaml")])
        #expect(try await missing.waitForExit() != 0)
        #expect(missing.errors.contains("cannot read the portfolio file"))
        let badFormat = try RunningCanon(arguments: ["check", "--format", "xml"])
        #expect(try await badFormat.waitForExit() != 0)
    }

    @Test func serveRefusesAPortfolioWithErrorsOrWithoutItsStores() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-cli")
        let broken = scratch.file("broken.yaml")
        try Data(PlatformPortfolio.yaml.replacingOccurrences(of: "      via: outbox\n", with: "      via: request-handler\n").utf8)
            .write(to: URL(fileURLWithPath: broken))
        let refused = try RunningCanon(arguments: ["serve", "--data", scratch.file("d"), "--port", "0", "--portfolio", broken])
        #expect(try await refused.waitForExit() != 0)
        #expect(refused.errors.contains("dual-write") || refused.errors.contains("CANON-P020"), "\(refused.errors)")
        let planned = scratch.file("planned.yaml")
        try Data(PlatformPortfolio.yaml.replacingOccurrences(of: "  - name: case-search\n    status: live\n", with: "  - name: case-search\n    status: planned\n").utf8)
            .write(to: URL(fileURLWithPath: planned))
        let undeclared = try RunningCanon(arguments: ["serve", "--data", scratch.file("d"), "--port", "0", "--portfolio", planned])
        #expect(try await undeclared.waitForExit() != 0)
        #expect(undeclared.errors.contains("refusing to start: store \"case-search\" (projection) is not declared live"), "\(undeclared.errors)")
    }

    @Test func auditListsWhatTheServerRecorded() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-cli")
        let data = scratch.file("data")
        do {
            let platform = try EmbeddedPlatform.open(DataDirectory(data), create: true, configuration: .init(semantic: false))
            let services = try await platform.services()
            let lena = User(id: "lena", displayName: "Lena", role: .legal, team: nil, clearance: 3)
            _ = try await services.commands.registerUser(lena)
            try await services.audit.record(lena, action: "restrict-case", target: "case/c1", decision: .allowed, reason: "")
            try await services.audit.record(lena, action: "view-case", target: "case/c2", decision: .denied, reason: "not visible")
        }
        let all = try RunningCanon(arguments: ["audit", "--data", data])
        #expect(try await all.waitForExit() == 0)
        #expect(all.output.contains("denied   lena (legal)  view-case  case/c2  (not visible)"), "\(all.output)")
        #expect(all.output.contains("allowed  lena (legal)  restrict-case  case/c1"))
        let denied = try RunningCanon(arguments: ["audit", "--data", data, "--decision", "denied", "--format", "json"])
        #expect(try await denied.waitForExit() == 0)
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(denied.output.utf8)) as? [[String: Any]])
        #expect(entries.count == 1 && entries.first?["action"] as? String == "view-case")
        let bad = try RunningCanon(arguments: ["audit", "--data", data, "--decision", "perhaps"])
        #expect(try await bad.waitForExit() != 0)
        #expect(bad.errors.contains("--decision must be allowed or denied"))
    }

    @Test func driftRepairAndLifecycleAuditFromTheCommandLine() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-cli")
        let data = scratch.file("data")
        let missingKey: String
        do {
            let platform = try EmbeddedPlatform.open(DataDirectory(data), create: true, configuration: .init(semantic: false))
            _ = try await DemoPlatform(configuration: .init(cases: 30, seed: 3, chunkSize: 30)).seed(into: platform.store)
            let agents = Task { try await platform.coordinator.run() }
            let head = try await platform.canonical.headPosition()
            for name in ["case-search", "case-timeline"] {
                #expect(try await platform.coordinator.waitUntilApplied(name, position: head, timeout: .seconds(30)))
            }
            agents.cancel()
            _ = try? await agents.value
            missingKey = try #require(try await platform.canonical.fetchAll("cases", orderBy: [.init("id")], limit: 1).first?.string("id"))
        }
        let clean = try RunningCanon(arguments: ["drift", "case-search", "--data", data])
        #expect(try await clean.waitForExit() == 0, "\(clean.output) \(clean.errors)")
        #expect(clean.output.contains("case-search v1 (full, at position"), "\(clean.output)")
        #expect(clean.output.contains("no drift"))
        try await DatabaseQueue(path: DataDirectory(data).databaseFile(for: "case-search.v1").path).write { db in
            try db.execute(sql: "DELETE FROM docs WHERE key = ?", arguments: [missingKey])
        }
        let found = try RunningCanon(arguments: ["drift", "case-search", "--data", data])
        #expect(try await found.waitForExit() == 1, "drift exits 1")
        #expect(found.output.contains("1 difference(s): 1 missing, 0 extra, 0 stale"), "\(found.output)")
        #expect(found.output.contains("missing  \(missingKey)"))
        let json = try RunningCanon(arguments: ["drift", "case-search", "--data", data, "--format", "json", "--mode", "since", "--since", "0"])
        #expect(try await json.waitForExit() == 1)
        let reports = try #require((try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])?["reports"] as? [[String: Any]])
        #expect(reports.first?["mode"] as? String == "since")
        let repair = try RunningCanon(arguments: ["repair", "case-search", "--data", data])
        #expect(try await repair.waitForExit() == 0, "\(repair.output) \(repair.errors)")
        #expect(repair.output.contains("repaired 1 key(s)"), "\(repair.output)")
        let status = try RunningCanon(arguments: ["status", "--data", data])
        #expect(try await status.waitForExit() == 0)
        #expect(status.output.contains("0 (full at"), "status shows the newest check: \(status.output)")
        let audit = try RunningCanon(arguments: ["lifecycle", "audit", "--data", data])
        #expect(try await audit.waitForExit() == 0)
        #expect(audit.output.contains("0 tombstone(s) checked"), "\(audit.output)")
        for (arguments, message) in [
            (["drift", "--data", data], "name one projection, or pass --all"),
            (["drift", "case-search", "--data", data, "--mode", "nope"], "--mode must be one of full, sample, since"),
            (["drift", "case-search", "--data", data, "--mode", "since"], "--mode since needs --since POSITION"),
            (["drift", "nope", "--data", data], "unknown projection nope"),
            (["repair", "case-search", "--data", data, "--mode", "sample"], "repair runs in full or since mode"),
        ] {
            let refused = try RunningCanon(arguments: arguments)
            #expect(try await refused.waitForExit() != 0)
            #expect(refused.errors.contains(message), "\(arguments): \(refused.errors)")
        }
    }

    /// `canon lifecycle expire` purges the closed cases past the portfolio's retention period
    /// (2190 days), leaves a held one and a recent one, and a dry run purges nothing.
    @Test func theRetentionJobPurgesDueCasesAndLeavesHeldAndRecentOnes() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-cli-expire")
        let data = scratch.url.path
        var due: [String] = []
        var recent = ""
        do {
            let platform = try EmbeddedPlatform.open(scratch.dataDirectory, create: true)
            let sam = User(id: "sam", displayName: "Sam", role: .supervisor, team: "financial-crime", clearance: 3)
            let lena = User(id: "lena", displayName: "Lena", role: .legal, team: nil, clearance: 3)
            let sevenYearsAgo = Date().addingTimeInterval(-7 * 365 * 86_400)
            let past = CaseCommands(store: platform.store, clock: { sevenYearsAgo })
            for user in [sam, lena] { _ = try await past.registerUser(user) }
            let now = CaseCommands(store: platform.store)
            for index in 0..<4 {
                let commands = index < 3 ? past : now
                let id = try await commands.openCase(
                    OpenCaseRequest(title: "Old case", summary: "s", sector: "banking", region: "north", priority: "low", team: nil), by: sam).id
                for step in ["triage", "investigation", "enforcement", "closed"] {
                    _ = try await commands.transition(id, TransitionRequest(to: step, reason: "r"), by: sam)
                }
                if index < 3 { due.append(id) } else { recent = id }
            }
            _ = try await now.placeHold(due[2], reason: "subpoena", by: lena)
        }
        let dryRun = try RunningCanon(arguments: ["lifecycle", "expire", "--data", data, "--dry-run"])
        #expect(try await dryRun.waitForExit() == 0, "\(dryRun.output) \(dryRun.errors)")
        #expect(dryRun.output.contains("4 closed case(s) examined, 3 past the retention period (2190 days): would purge 2, 1 under legal hold"), "\(dryRun.output)")
        let run = try RunningCanon(arguments: ["lifecycle", "expire", "--data", data, "--format", "json"])
        #expect(try await run.waitForExit() == 0, "\(run.output) \(run.errors)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])
        #expect(Set(report["purged"] as? [String] ?? []) == Set(due.prefix(2)) && report["held"] as? [String] == [due[2]])
        let store = try SQLiteCanonicalStore(path: scratch.dataDirectory.databaseFile(for: "canonical").path, migrations: CasePlatformSchema.migrations)
        for id in due.prefix(2) { #expect(try await store.fetchOne("cases", where: ["id": .text(id)]) == nil) }
        for id in [due[2], recent] { #expect(try await store.fetchOne("cases", where: ["id": .text(id)]) != nil) }
    }

    /// `canon serve --config FILE`: the file's settings as flags, a flag on the command line
    /// winning, and every problem in the file refused with its line before anything starts.
    @Test func serveTakesItsSettingsFromAConfigFileAndRefusesWhatItDoesNotKnow() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-cli-config")
        let config = scratch.file("canon.yaml")
        try Data("# canon serve --config canon.yaml\ndata: \(scratch.file("data"))\nport: 1\nlog_level: debug\n".utf8)
            .write(to: URL(fileURLWithPath: config))
        let server = try RunningCanon(arguments: ["serve", "--config", config, "--port", "0"])
        let url = try await server.waitForURL()
        #expect(!url.hasSuffix(":1"), "the command line's --port 0 wins over the file's port: 1")
        #expect(server.output.contains("canon is serving \(scratch.file("data"))"), "\(server.output)")
        #expect(server.errors.contains("debug canon:"), "the file's log_level applies")
        server.terminate()
        #expect(try await server.waitForExit() == 0)

        for (text, message) in [
            ("data: \(scratch.file("data"))\nprot: 0\n", #"canon.yaml:2: unknown key "prot" for canon serve (misspelt?)"#),
            ("port: [1, 2]\n", "canon.yaml:1: port must be a single value"),
            ("- port\n", "the file must be a mapping of settings"),
            ("no_agents: maybe\n", "canon.yaml:1: no_agents must be true or false; got maybe"),
            ("port: 70000\n", "--port must be between 0 and 65535; got 70000"),
            ("port: [\n", "not valid YAML"),
        ] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: config))
            let run = try RunningCanon(arguments: ["serve", "--config", config])
            #expect(try await run.waitForExit() != 0, "\(text)")
            #expect(run.errors.contains(message), "\(text): \(run.errors)")
        }
        let missing = try RunningCanon(arguments: ["worker", "--config", scratch.file("none.yaml")])
        #expect(try await missing.waitForExit() != 0)
        #expect(missing.errors.contains("--config: cannot read"), "\(missing.errors)")
        let twice = try RunningCanon(arguments: ["serve", "--config", config, "--config=\(scratch.file("other.yaml"))"])
        #expect(try await twice.waitForExit() != 0)
        #expect(twice.errors.contains("--config is given twice"), "\(twice.errors)")

        // --data on the command line wins over the file's database: where the data is, whole.
        try Data("database: postgres://nobody@127.0.0.1:1/none\nport: 0\n".utf8).write(to: URL(fileURLWithPath: config))
        let local = try RunningCanon(arguments: ["serve", "--config", config, "--data", scratch.file("data")])
        _ = try await local.waitForURL()
        #expect(local.output.contains("canon is serving \(scratch.file("data"))"), "\(local.output) \(local.errors)")
        local.terminate()
        #expect(try await local.waitForExit() == 0)
    }

    @Test func usersAreChangedAndRemovedFromTheCommandLine() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-cli-users")
        let data = scratch.url.path
        for arguments in [
            ["user", "add", "--data", data, "--id", "ivan", "--name", "Ivan", "--role", "investigator", "--team", "financial-crime"],
            ["user", "update", "--data", data, "--id", "ivan", "--clearance", "3", "--name", "Ivan Petrov"],
        ] {
            let run = try RunningCanon(arguments: arguments)
            #expect(try await run.waitForExit() == 0, "\(arguments): \(run.errors)")
        }
        let listed = try RunningCanon(arguments: ["user", "list", "--data", data])
        #expect(try await listed.waitForExit() == 0)
        #expect(listed.output.contains("ivan\tinvestigator\tfinancial-crime\tclearance 3\tIvan Petrov"), "\(listed.output)")
        for (arguments, message) in [
            (["user", "update", "--data", data, "--id", "ivan"], "nothing to change"),
            (["user", "update", "--data", data, "--id", "ivan", "--no-team"], "team is required for the investigator role"),
            (["user", "update", "--data", data, "--id", "nobody", "--clearance", "2"], "no user with id \"nobody\""),
        ] {
            let run = try RunningCanon(arguments: arguments)
            #expect(try await run.waitForExit() != 0, "\(arguments)")
            #expect(run.errors.contains(message), "\(arguments): \(run.errors)")
        }
        let removed = try RunningCanon(arguments: ["user", "remove", "--data", data, "--id", "ivan"])
        #expect(try await removed.waitForExit() == 0, "\(removed.errors)")
        #expect(removed.output.contains("removed ivan"))
        let token = try RunningCanon(arguments: ["token", "--data", data, "--user", "ivan"])
        #expect(try await token.waitForExit() != 0, "no token for a removed user: \(token.output)")
    }

    /// The README's backfill example, run as the README runs it.
    @Test func backfillImportsTheExampleKeepsItsRejectedLineAndImportsNothingTwice() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-cli-backfill")
        let data = scratch.url.path
        do {
            let platform = try EmbeddedPlatform.open(scratch.dataDirectory, create: true)
            let commands = CaseCommands(store: platform.store)
            _ = try await commands.registerUser(User(id: "sam", displayName: "Sam", role: .supervisor, team: "financial-crime", clearance: 3))
            _ = try await commands.registerUser(User(id: "ivan", displayName: "Ivan", role: .investigator, team: "financial-crime", clearance: 2))
        }
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/examples/legacy-cases.jsonl").path
        let lines = try String(contentsOfFile: example, encoding: .utf8).split(separator: "\n").map(String.init)
        let rejects = scratch.file("rejected.jsonl")
        let arguments = ["backfill", "cases", "--data", data, "--source", "legacy-crm", "--from", example]

        let first = try RunningCanon(arguments: arguments + ["--rejects", rejects, "--format", "json"])
        #expect(try await first.waitForExit() == 1, "a rejected line makes the exit status 1: \(first.errors)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(first.output.utf8)) as? [String: Any], "\(first.output)")
        #expect(report["imported"] as? Int == 3 && report["lines_read"] as? Int == 4)
        let rejected = try #require(report["rejected"] as? [[String: Any]])
        #expect(rejected.count == 1 && rejected.first?["line"] as? Int == 4 && rejected.first?["field"] as? String == "priority")
        #expect(try String(contentsOfFile: rejects, encoding: .utf8) == lines[3] + "\n", "the rejected line is kept as read")
        #expect(first.errors.contains("importing legacy cases ["), "progress is shown: \(first.errors)")

        let again = try RunningCanon(arguments: arguments)
        #expect(try await again.waitForExit() == 1)
        #expect(again.output.contains("imported 0 case(s) (0 events), 3 already imported from legacy-crm, 1 rejected"), "\(again.output)")
        let store = try SQLiteCanonicalStore(path: scratch.dataDirectory.databaseFile(for: "canonical").path, migrations: CasePlatformSchema.migrations)
        #expect(try await store.count("cases", filter: [:]) == 3)

        for (extra, message) in [
            (["--batch", "0"], "--batch must be between 1 and 10000; got 0"),
            (["--source", "Legacy CRM"], "--source must be 1 to 64 lower-case letters"),
            (["--from", scratch.file("missing.jsonl")], "--from: cannot read"),
        ] {
            var bad = arguments
            if let index = bad.firstIndex(of: extra[0]) { bad[index + 1] = extra[1] } else { bad += extra }
            let run = try RunningCanon(arguments: bad)
            #expect(try await run.waitForExit() != 0, "\(extra)")
            #expect(run.errors.contains(message), "\(extra): \(run.errors)")
        }
    }

    @Test func docsAndODCSExportWriteTheirFiles() async throws {
        let scratch = try TemporaryDirectory(prefix: "canon-cli")
        let docs = try RunningCanon(arguments: ["docs", "--out", scratch.file("docs")])
        #expect(try await docs.waitForExit() == 0)
        let adr = try String(contentsOfFile: scratch.file("docs/adr/0002-case-search.md"), encoding: .utf8)
        #expect(adr.contains("# ADR 0002: case-search (projection)"))
        let export = try RunningCanon(arguments: ["export", "--odcs", "--out", scratch.file("odcs")])
        #expect(try await export.waitForExit() == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.file("odcs")).filter { $0.hasSuffix(".odcs.yaml") }.count == 8)
        let noFormat = try RunningCanon(arguments: ["export"])
        #expect(try await noFormat.waitForExit() != 0)
        #expect(noFormat.errors.contains("--odcs"))
    }

    @Test func embedPrintsVectorsAndSimilarityAndRefusesBadInput() async throws {
        if FileManager.default.fileExists(atPath: SentenceEmbedder.defaultDirectory + "/model.safetensors") {
            let similarity = try RunningCanon(arguments: ["embed", "--similarity", "The weather is lovely today.", "It's so sunny outside!"])
            #expect(try await similarity.waitForExit() == 0)
            let value = try #require(Double(similarity.output.trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(abs(value - 0.665955) < 1e-3)
            let embed = try RunningCanon(arguments: ["embed", "first text", "second text"])
            #expect(try await embed.waitForExit() == 0)
            let lines = embed.output.split(separator: "\n")
            #expect(lines.count == 2)
            let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
            #expect((first["embedding"] as? [Double])?.count == 384)
            #expect((first["model"] as? [String: Any])?["name"] as? String == "sentence-transformers/all-MiniLM-L6-v2")
        }
        let scratch = try TemporaryDirectory(prefix: "canon-cli")
        let noModel = try RunningCanon(arguments: ["embed", "text", "--model", scratch.file("none")])
        #expect(try await noModel.waitForExit() != 0)
        #expect(noModel.errors.contains("scripts/setup-model"))
        let nothing = try RunningCanon(arguments: ["embed"])
        #expect(try await nothing.waitForExit() != 0)
        let oneSided = try RunningCanon(arguments: ["embed", "--similarity", "only one"])
        #expect(try await oneSided.waitForExit() != 0)
        #expect(oneSided.errors.contains("exactly two texts"))
    }

    private func get(_ url: String, token: String?) async throws -> (Int, String) {
        var request = URLRequest(url: try #require(URL(string: url)))
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}

/// A `canon` process whose output is collected as it arrives. Waits are event-driven: every
/// chunk of output, end of a pipe and the process's exit wake them, and a deadline bounds them.
final class RunningCanon: Sendable {
    private let process: Process
    private let out = OutputBuffer()
    private let err = OutputBuffer()
    /// Counts events (output, end of a pipe, exit); waiters wait for the count to move.
    private let events = PositionWaiters()
    private let counter = Mutex<Int64>(0)
    /// The exit status, set by the termination handler itself: `Process.isRunning` may still read
    /// true when the handler runs, and no later event would wake a waiter.
    private let exitStatus = Mutex<Int32?>(nil)

    final class OutputBuffer: Sendable {
        let state = Mutex((data: Data(), closed: false))
        func append(_ chunk: Data) { state.withLock { if chunk.isEmpty { $0.closed = true } else { $0.data.append(chunk) } } }
        var text: String { state.withLock { String(decoding: $0.data, as: UTF8.self) } }
        var closed: Bool { state.withLock { $0.closed } }
    }

    init(arguments: [String]) throws {
        let process = Process()
        process.executableURL = CLITests.executable
        process.arguments = arguments
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        self.process = process
        // One blocking reader thread per pipe: `readabilityHandler` can miss the end of a pipe on
        // Linux when the process exits right after writing.
        for (pipe, buffer) in [(stdout, out), (stderr, err)] {
            let handle = pipe.fileHandleForReading
            Thread.detachNewThread { [weak self] in
                while true {
                    let chunk = handle.availableData
                    buffer.append(chunk)
                    self?.signal()
                    if chunk.isEmpty { break }
                }
            }
        }
        process.terminationHandler = { [weak self] finished in
            self?.exitStatus.withLock { $0 = finished.terminationStatus }
            self?.signal()
        }
        try ProcessLaunch.run(process)
    }

    private func signal() {
        events.advance(to: OutboxPosition(counter.withLock { $0 += 1; return $0 }))
    }

    var output: String { out.text }
    var errors: String { err.text }

    /// Waits until `condition` holds, re-checking whenever the process writes or exits.
    ///
    /// - Returns: whether it held within `seconds`.
    func waitUntil(seconds: Double, _ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while true {
            let seen = events.reached
            if condition() { return true }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return false }
            await events.wait(until: seen.next, timeout: remaining)
        }
    }

    /// Waits until the server announces its URL, or fails after `seconds`.
    func waitForURL(seconds: Double = 60) async throws -> String {
        var url: String?
        _ = try await waitUntil(seconds: seconds) {
            if let line = output.split(separator: "\n").first(where: { $0.contains("running at http://") || $0.contains("serving") && $0.contains("http://") }),
               let range = line.range(of: #"http://[0-9.]+:[0-9]+"#, options: .regularExpression) {
                url = String(line[range])
            }
            return url != nil || exitStatus.withLock { $0 } != nil
        }
        if let url { return url }
        process.terminate()
        Issue.record("canon did not announce a URL; stdout: \(output) stderr: \(errors)")
        throw CancellationError()
    }

    /// Waits until the process exits and its output is read to the end, or kills it after `seconds`.
    func waitForExit(seconds: Double = 30) async throws -> Int32 {
        let finished = try await waitUntil(seconds: seconds) { exitStatus.withLock { $0 } != nil && out.closed && err.closed }
        if !finished {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("canon did not exit within \(seconds)s (exit status \(String(describing: exitStatus.withLock { $0 })), stdout closed \(out.closed), stderr closed \(err.closed)); stdout: \(output) stderr: \(errors)")
            return -1
        }
        return exitStatus.withLock { $0 } ?? -1
    }

    func terminate() { kill(process.processIdentifier, SIGTERM) }
    func interrupt() { kill(process.processIdentifier, SIGINT) }
    /// SIGKILL: no handler runs, no connection is closed by the process itself.
    func killHard() { kill(process.processIdentifier, SIGKILL) }
    var pid: Int32 { process.processIdentifier }

    /// The names of the process's threads (Linux: `/proc/PID/task/*/comm`).
    var threadNames: [String] {
        let tasks = "/proc/\(pid)/task"
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? []
        return ids.compactMap { id in
            (try? String(contentsOfFile: "\(tasks)/\(id)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
}
