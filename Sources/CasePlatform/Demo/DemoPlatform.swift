import Canon
import Foundation

/// Generates a realistic regulatory case platform through the platform's own decisions, so that
/// every row has its events in the outbox exactly as if users had typed it in.
///
/// The data is deterministic for a given seed: the same ids, titles, parties, evidence and
/// statuses on every run. Times are laid out backwards from `anchor` over the year before it.
public struct DemoPlatform: Sendable {
    public struct Configuration: Sendable {
        public var cases: Int
        public var seed: UInt64
        public var anchor: Date
        /// Cases committed per transaction.
        public var chunkSize: Int

        public init(cases: Int = 10_000, seed: UInt64 = 42, anchor: Date = Date(timeIntervalSince1970: 1_793_491_200), chunkSize: Int = 250) {
            self.cases = cases
            self.seed = seed
            self.anchor = anchor
            self.chunkSize = max(1, chunkSize)
        }
    }

    /// Progress of a seeding run, reported after every committed chunk.
    public struct Progress: Sendable {
        public var casesDone: Int
        public var casesTotal: Int
        public var eventsWritten: Int
    }

    /// A summary of what was generated.
    public struct Summary: Sendable {
        public var users: [User]
        public var cases: Int
        public var parties: Int
        public var evidence: Int
        public var events: Int
        public var headPosition: OutboxPosition
    }

    public static let teams = ["financial-crime", "consumer-protection", "market-integrity", "data-protection"]

    /// The named demo users: one of each role, printed with their tokens by `canon demo`.
    public static let featuredUsers: [User] = [
        User(id: "ada", displayName: "Ada Okafor", role: .admin, team: nil, clearance: 3),
        User(id: "lena", displayName: "Lena Marsh", role: .legal, team: nil, clearance: 3),
        User(id: "sam", displayName: "Sam Whitlock", role: .supervisor, team: "financial-crime", clearance: 3),
        User(id: "ivan", displayName: "Ivan Petrov", role: .investigator, team: "financial-crime", clearance: 2),
        User(id: "nora", displayName: "Nora Quist", role: .analyst, team: "consumer-protection", clearance: 1),
    ]

    public let configuration: Configuration

    public init(configuration: Configuration = Configuration()) { self.configuration = configuration }

    /// Every demo user: the featured ones plus a supervisor and investigators for each team.
    public func users() -> [User] {
        var users = Self.featuredUsers
        var random = SeededGenerator(seed: configuration.seed ^ 0x5EED)
        for team in Self.teams {
            if team != "financial-crime" {
                let name = "\(random.pick(Names.first)) \(random.pick(Names.last))"
                users.append(User(id: "sup-\(team)", displayName: name, role: .supervisor, team: team, clearance: 3))
            }
            for index in 1...5 {
                let name = "\(random.pick(Names.first)) \(random.pick(Names.last))"
                users.append(User(id: "inv-\(team)-\(index)", displayName: name, role: .investigator, team: team, clearance: 1 + index % 3))
            }
        }
        users.append(User(id: "analyst-markets", displayName: "Theo Brandt", role: .analyst, team: "market-integrity", clearance: 1))
        return users
    }

    /// Seeds `store`, which must be empty, committing `chunkSize` cases per transaction.
    ///
    /// - Parameter progress: called after each committed chunk.
    /// - Throws: `DomainError` or `CanonicalStoreError`; `CancellationError` when the task is
    ///   cancelled (checked between chunks). Chunks committed before either stay.
    public func seed(into store: any CanonicalStore, progress: @Sendable (Progress) -> Void = { _ in }) async throws -> Summary {
        var random = SeededGenerator(seed: configuration.seed)
        let users = users()
        let start = configuration.anchor.addingTimeInterval(-365 * 86_400)
        _ = try await store.commit(batch: try users.map { user in
            try CaseDecisions.registerUser(user, at: start, metadata: .system).work
        })
        let investigators = Dictionary(grouping: users.filter { $0.role == .investigator }, by: { $0.team ?? "" })
        let openers = users.filter { $0.role == .investigator || $0.role == .supervisor }
        let supervisor = users.first { $0.role == .supervisor }!
        let legal = users.first { $0.role == .legal }!

        // A pool of organisations that recur across cases, so the relationship graph has hubs.
        var organisations: [Party] = []
        var pending: [UnitOfWork] = []
        for _ in 0..<min(5_000, max(20, configuration.cases / 5)) {
            let request = RegisterPartyRequest(kind: "organisation", name: Names.organisation(&random), email: nil)
            let decision = try CaseDecisions.registerParty(request, id: random.id(at: start), by: supervisor, at: start, metadata: .system)
            organisations.append(decision.value)
            pending.append(decision.work)
        }
        var summary = Summary(users: users, cases: 0, parties: organisations.count, evidence: 0, events: 0, headPosition: .start)

        var done = 0
        while done < configuration.cases {
            try Task.checkCancellation()
            let chunkEnd = min(configuration.cases, done + configuration.chunkSize)
            for _ in done..<chunkEnd {
                try generateCase(&random, start: start, openers: openers, investigators: investigators, supervisor: supervisor,
                                 legal: legal, organisations: organisations, into: &pending, summary: &summary)
            }
            let results = try await store.commit(batch: pending)
            summary.headPosition = results.last?.position ?? summary.headPosition
            pending.removeAll(keepingCapacity: true)
            done = chunkEnd
            summary.cases = done
            progress(Progress(casesDone: done, casesTotal: configuration.cases, eventsWritten: Int(summary.headPosition.rawValue)))
        }
        if !pending.isEmpty {
            _ = try await store.commit(batch: pending)
        }
        summary.headPosition = try await store.headPosition()
        summary.events = Int(summary.headPosition.rawValue)
        return summary
    }

    private func generateCase(
        _ random: inout SeededGenerator, start: Date, openers: [User], investigators: [String: [User]], supervisor: User,
        legal: User, organisations: [Party], into pending: inout [UnitOfWork], summary: inout Summary
    ) throws {
        let opener = random.pick(openers)
        let sector = random.pick(Sector.allCases)
        let subject = random.pick(organisations)
        let issue = random.pick(Names.issues)
        let priority = random.weighted([(Priority.low, 25), (.medium, 40), (.high, 25), (.critical, 10)])
        var now = start.addingTimeInterval(Double(random.int(0...(330 * 86_400))))
        let request = OpenCaseRequest(
            title: "\(subject.name): \(issue.title)",
            summary: "\(issue.summary) Reported in the \(sector.rawValue) sector; \(random.pick(Names.sources)).",
            sector: sector.rawValue, region: random.pick(Region.allCases).rawValue, priority: priority.rawValue,
            team: opener.team)
        let metadata = CommandMetadata(actor: opener.id)
        let opened = try CaseDecisions.openCase(request, id: random.id(at: now), by: opener, at: now, metadata: metadata)
        var current = opened.value
        pending.append(opened.work)

        func step(_ minutes: ClosedRange<Int>) { now = now.addingTimeInterval(Double(random.int(minutes)) * 60) }

        step(10...600)
        let link = try CaseDecisions.linkParty(current, party: subject, role: "subject", existing: [], by: opener, at: now, metadata: metadata)
        current = link.value.0
        pending.append(link.work)
        for _ in 0..<random.int(0...2) {
            step(10...900)
            let isPerson = random.chance(0.85)
            let first = random.pick(Names.first), last = random.pick(Names.last)
            let partyRequest = RegisterPartyRequest(
                kind: isPerson ? "person" : "organisation",
                name: isPerson ? "\(first) \(last)" : Names.organisation(&random),
                email: isPerson ? "\(first.lowercased()).\(last.lowercased())\(random.int(1...999))@example.org" : nil,
                nationalID: isPerson ? "NI-\(String(random.int(10_000_000...99_999_999)))" : nil)
            let party = try CaseDecisions.registerParty(partyRequest, id: random.id(at: now), by: opener, at: now, metadata: metadata)
            pending.append(party.work)
            summary.parties += 1
            let role = random.pick(["complainant", "witness"])
            let linked = try CaseDecisions.linkParty(current, party: party.value, role: role, existing: [], by: opener, at: now, metadata: metadata)
            current = linked.value.0
            pending.append(linked.work)
        }
        for _ in 0..<random.int(0...4) {
            step(30...2_000)
            let kind = random.pick(Names.evidence)
            var digest = ""
            for _ in 0..<4 { digest += String(random.next(), radix: 16).leftPadded(16) }
            let evidenceRequest = AddEvidenceRequest(
                title: "\(kind.title) — \(subject.name)", description: kind.description, mediaType: kind.mediaType,
                sizeBytes: Int64(random.int(2_000...40_000_000)), sha256: digest)
            let added = try CaseDecisions.addEvidence(current, evidenceRequest, id: random.id(at: now), by: opener, at: now, metadata: metadata)
            current = added.value.0
            pending.append(added.work)
            summary.evidence += 1
        }

        let target = random.weighted([(CaseStatus.intake, 15), (.triage, 15), (.investigation, 35), (.enforcement, 15), (.closed, 20)])
        let path: [CaseStatus] = [.triage, .investigation, .enforcement, .closed]
        let team = current.team
        for status in path.prefix(while: { $0 != target }) + (target == .intake ? [] : [target]) {
            step(60...7_200)
            let moved = try CaseDecisions.transition(current, TransitionRequest(to: status.rawValue, reason: random.pick(Names.reasons[status] ?? ["progressed"])),
                                                     by: opener, at: now, metadata: metadata)
            current = moved.value
            pending.append(moved.work)
            if status == .investigation, let candidates = investigators[team], !candidates.isEmpty {
                step(5...600)
                let assigned = try CaseDecisions.assign(current, investigator: random.pick(candidates), by: supervisor, at: now,
                                                        metadata: CommandMetadata(actor: supervisor.id))
                current = assigned.value
                pending.append(assigned.work)
            }
        }
        if current.status == .closed && random.chance(0.1) {
            step(600...20_000)
            let reopened = try CaseDecisions.transition(current, TransitionRequest(to: "investigation", reason: "new evidence received after closure"),
                                                        by: opener, at: now, metadata: metadata)
            current = reopened.value
            pending.append(reopened.work)
        }
        if random.chance(0.08) {
            step(5...300)
            let restricted = try CaseDecisions.restrict(current, RestrictionRequest(restricted: true, reason: random.pick(Names.restrictionReasons)),
                                                        by: legal, at: now, metadata: CommandMetadata(actor: legal.id))
            current = restricted.value
            pending.append(restricted.work)
        }
    }
}
