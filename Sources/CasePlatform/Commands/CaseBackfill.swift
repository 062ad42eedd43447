import Canon
import Foundation

/// One case of a legacy system, as a line of the JSON Lines file `canon backfill cases` reads.
///
/// ```json
/// {"external_id": "LEG-2019-0042", "title": "…", "summary": "…", "sector": "banking", "region": "north",
///  "priority": "high", "team": "financial-crime", "status": "investigation", "opened_at": "2019-03-04T10:00:00Z",
///  "status_at": "2019-04-01T09:00:00Z", "opened_by": "sam", "assignee": "ivan", "restricted": false,
///  "parties": [{"kind": "organisation", "name": "Northwind Capital", "role": "subject"}]}
/// ```
///
/// Only `external_id`, `title`, `sector`, `region`, `priority`, `team` and `opened_at` are
/// required. A field the format does not have is refused, never ignored: a misspelt
/// `opend_at` would otherwise import the case with a default.
public struct LegacyCase: Decodable, Hashable, Sendable {
    /// The case's id in the system it comes from: with the source's name, what makes an import
    /// idempotent.
    public var externalID: String
    public var title: String
    public var summary: String
    public var sector: String
    public var region: String
    public var priority: String
    public var team: String
    /// Where the case stands: it is moved along the main path (intake → … → closed) up to it.
    public var status: String
    public var openedAt: Date
    /// When the case reached `status`; the opening time when absent.
    public var statusAt: Date?
    /// A registered user recorded as the opener; the backfill itself when absent.
    public var openedBy: String?
    /// A registered investigator of the case's team.
    public var assignee: String?
    public var restricted: Bool
    public var parties: [LegacyParty]

    public struct LegacyParty: Decodable, Hashable, Sendable {
        public var kind: String
        public var name: String
        public var email: String?
        public var nationalID: String?
        public var role: String

        enum CodingKeys: String, CodingKey, CaseIterable {
            case kind, name, email, role
            case nationalID = "national_id"
        }

        public init(from decoder: any Decoder) throws {
            try LegacyCase.refuseUnknownKeys(CodingKeys.self, in: decoder)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            kind = try container.decode(String.self, forKey: .kind)
            name = try container.decode(String.self, forKey: .name)
            email = try container.decodeIfPresent(String.self, forKey: .email)
            nationalID = try container.decodeIfPresent(String.self, forKey: .nationalID)
            role = try container.decode(String.self, forKey: .role)
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case title, summary, sector, region, priority, team, status, assignee, restricted, parties
        case externalID = "external_id", openedAt = "opened_at", statusAt = "status_at", openedBy = "opened_by"
    }

    public init(from decoder: any Decoder) throws {
        try Self.refuseUnknownKeys(CodingKeys.self, in: decoder)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        externalID = try container.decode(String.self, forKey: .externalID)
        title = try container.decode(String.self, forKey: .title)
        summary = try container.decodeIfPresent(String.self, forKey: .summary) ?? ""
        sector = try container.decode(String.self, forKey: .sector)
        region = try container.decode(String.self, forKey: .region)
        priority = try container.decode(String.self, forKey: .priority)
        team = try container.decode(String.self, forKey: .team)
        status = try container.decodeIfPresent(String.self, forKey: .status) ?? CaseStatus.intake.rawValue
        openedAt = try container.decode(Date.self, forKey: .openedAt)
        statusAt = try container.decodeIfPresent(Date.self, forKey: .statusAt)
        openedBy = try container.decodeIfPresent(String.self, forKey: .openedBy)
        assignee = try container.decodeIfPresent(String.self, forKey: .assignee)
        restricted = try container.decodeIfPresent(Bool.self, forKey: .restricted) ?? false
        parties = try container.decodeIfPresent([LegacyParty].self, forKey: .parties) ?? []
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    fileprivate static func refuseUnknownKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type, in decoder: any Decoder) throws {
        let known = Set(Keys.allCases.map(\.stringValue))
        let container = try decoder.container(keyedBy: AnyKey.self)
        if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath + [AnyKey(stringValue: unknown)],
                debugDescription: "is not a field of \(Keys.self is LegacyParty.CodingKeys.Type ? "a party" : "a legacy case") (misspelt?); known fields: \(known.sorted().joined(separator: ", "))"))
        }
    }
}

/// Loads the cases of a legacy system into the canonical store through the platform's own
/// decisions (`canon backfill cases`), so that every imported case has its rows, its history
/// and its events in the outbox exactly as if it had been typed in, and every derived store
/// receives it the usual way.
///
/// - **Idempotent.** Each imported case records `(source, external_id) → case id` in
///   `imported_records`, in the commit that opens it. A line already imported is counted as
///   such and left; running the same file again imports nothing twice. The record is
///   append-only and outlives a purge, so a later run never brings a purged case back.
/// - **Nothing is lost.** A line that cannot be imported (malformed JSON, a missing or unknown
///   field, a value the platform refuses, an unknown user) is a `Rejection` with its line
///   number and the typed error; the other lines go on.
/// - **Batched.** `batchSize` cases commit in one transaction (one fsync); a batch that a
///   concurrent import of the same source collides with is committed case by case.
/// - **Stoppable.** `stop` is asked between batches; what committed stays, and a second run
///   goes on where the first stopped.
public struct CaseBackfill: Sendable {
    /// The backfill's principal, recorded as the actor of what no legacy user is named for.
    public static let principal = User(id: "canon-backfill", displayName: "Backfill", role: .admin, team: nil, clearance: 3)

    public struct Options: Sendable {
        /// The legacy system's name: external ids are unique within it.
        public var source: String
        public var batchSize: Int
        /// Decide every line, commit nothing.
        public var dryRun: Bool

        public init(source: String, batchSize: Int = 200, dryRun: Bool = false) {
            self.source = source
            self.batchSize = max(1, batchSize)
            self.dryRun = dryRun
        }
    }

    /// A line that was not imported, and why.
    public struct Rejection: Hashable, Codable, Sendable {
        public var line: Int
        /// The line's external id, when it could be read.
        public var externalID: String?
        /// `invalidJSON`, `invalidEncoding`, `lineTooLong`, or the code of the `DomainError` (`invalid`,
        /// `conflict`, …) or `CanonicalStoreError` (`uniqueViolation`, …) that refused it.
        public var code: String
        public var field: String?
        public var message: String
        /// The line as read, so that it can be fixed and imported again.
        public var text: String

        enum CodingKeys: String, CodingKey {
            case line, code, field, message, text
            case externalID = "external_id"
        }
    }

    public struct Report: Hashable, Codable, Sendable {
        public var source: String
        public var dryRun: Bool
        public var linesRead = 0
        /// Cases imported by this run (or, in a dry run, that would be).
        public var imported = 0
        /// Lines whose external id an earlier run (or a concurrent one) already imported.
        public var alreadyImported = 0
        public var rejected: [Rejection] = []
        public var events = 0
        /// The outbox position after the last commit: a derived read with `min_position` of it
        /// sees every imported case.
        public var position: OutboxPosition?
        /// Whether `stop` ended the run before the end of the input.
        public var stopped = false

        enum CodingKeys: String, CodingKey {
            case source, imported, rejected, events, position, stopped
            case dryRun = "dry_run", linesRead = "lines_read", alreadyImported = "already_imported"
        }
    }

    public struct Progress: Sendable {
        public var linesRead: Int
        public var imported: Int
        public var rejected: Int
    }

    public let store: any CanonicalStore
    public let options: Options
    private let clock: @Sendable () -> Date
    private let newID: @Sendable () -> String

    public init(
        store: any CanonicalStore, options: Options, clock: @escaping @Sendable () -> Date = { Date() },
        newID: @escaping @Sendable () -> String = { TimeOrderedID.next() }
    ) {
        self.store = store
        self.options = options
        self.clock = clock
        self.newID = newID
    }

    /// The case id an external id of `source` was imported as, if it was.
    public static func importedCase(source: String, externalID: String, in store: any CanonicalStore) async throws -> String? {
        try await store.fetchOne(CasePlatformSchema.importedRecords.name, where: ["source": .text(source), "external_id": .text(externalID)])?
            .string("case_id")
    }

    /// A line of the input as read: its text, and whether its bytes were valid UTF-8 (a line
    /// that was not is rejected, never imported with replacement characters).
    public struct InputLine: Sendable {
        public var text: String
        public var isValidUTF8: Bool
        /// Longer than a reader holds (`TextLines`): `text` is a note, not the line.
        public var isTooLong: Bool

        public init(text: String, isValidUTF8: Bool = true, isTooLong: Bool = false) {
            self.text = text
            self.isValidUTF8 = isValidUTF8
            self.isTooLong = isTooLong
        }
    }

    /// The store failed part-way (not a bad line, which is a rejection): what the run did
    /// before, committed and kept, and why it ended.
    public struct Interrupted: Error, CustomStringConvertible {
        public var report: Report
        public var underlying: any Error

        public var description: String { "the import stopped after line \(report.linesRead): \(underlying)" }
    }

    /// Imports every line of `lines` (numbered from 1; blank lines are skipped and counted).
    public func run(
        lines: some Sequence<String>, progress: (@Sendable (Progress) -> Void)? = nil, stop: (@Sendable () -> Bool)? = nil
    ) async throws -> Report {
        try await run(input: lines.lazy.map { InputLine(text: $0) }, progress: progress, stop: stop)
    }

    /// Imports every line of `input` (numbered from 1; blank lines are skipped and counted).
    ///
    /// - Parameters:
    ///   - progress: told after each batch.
    ///   - stop: asked before each line; when it says so, the decided batch commits and the run
    ///     ends with `stopped` (only while input remains: a stop after the last line is no stop).
    /// - Throws: `DomainError` for an invalid source, before anything is read; `Interrupted`
    ///   when the store fails (batches committed before stay, and its report says what they
    ///   were); never for a bad line, which is a rejection.
    public func run(
        input: some Sequence<InputLine>, progress: (@Sendable (Progress) -> Void)? = nil, stop: (@Sendable () -> Bool)? = nil
    ) async throws -> Report {
        guard (try? Validation.slug(options.source, field: "source")) != nil else {
            throw DomainError.invalid(field: "source", "must be 1 to 64 lower-case letters, digits or dashes; got \"\(options.source)\"")
        }
        var report = Report(source: options.source, dryRun: options.dryRun)
        do {
            let users = Dictionary(uniqueKeysWithValues: try await store.fetchAll(CasePlatformSchema.users.name).map { row in
                let user = try User(row: row)
                return (user.id, user)
            })
            let done = Set(try await store.fetchAll(CasePlatformSchema.importedRecords.name, where: ["source": .text(options.source)])
                .map { try $0.string("external_id") })
            var batch: [Decided] = []
            // Each external id this run decided, with its line.
            var decidedAt: [String: Int] = [:]
            var number = 0
            for line in input {
                if stop?() == true {
                    try await commit(&batch, into: &report)
                    report.stopped = true
                    progress?(Progress(linesRead: number, imported: report.imported, rejected: report.rejected.count))
                    return report
                }
                number += 1
                report.linesRead = number
                if line.isValidUTF8 && line.text.allSatisfy(\.isWhitespace) { continue }
                do {
                    guard !line.isTooLong else { throw LineError(code: "lineTooLong", message: line.text) }
                    guard line.isValidUTF8 else { throw LineError(code: "invalidEncoding", message: "the line is not valid UTF-8; convert the file to UTF-8") }
                    var legacy = try Self.decode(line.text)
                    legacy.externalID = try Validation.text(legacy.externalID, field: "external_id", max: 200)
                    if done.contains(legacy.externalID) {
                        report.alreadyImported += 1
                        continue
                    }
                    if let first = decidedAt[legacy.externalID] {
                        throw DomainError.conflict("external_id \(legacy.externalID) appears twice in the input (first at line \(first))")
                    }
                    let units = try decide(legacy, users: users)
                    decidedAt[legacy.externalID] = number
                    batch.append(Decided(line: number, text: line.text, externalID: legacy.externalID, units: units))
                } catch {
                    report.rejected.append(Self.rejection(error, line: number, text: line.text))
                }
                if batch.count >= options.batchSize {
                    try await commit(&batch, into: &report)
                    progress?(Progress(linesRead: number, imported: report.imported, rejected: report.rejected.count))
                }
            }
            try await commit(&batch, into: &report)
            progress?(Progress(linesRead: number, imported: report.imported, rejected: report.rejected.count))
            return report
        } catch {
            throw Interrupted(report: report, underlying: error)
        }
    }

    /// One legacy case decided: its units of work, in order.
    private struct Decided {
        var line: Int
        var text: String
        var externalID: String
        var units: [UnitOfWork]
    }

    /// Why a line could not be read at all.
    struct LineError: Error {
        var code: String
        var message: String
    }

    /// Store errors that are a line's own doing (its rows collide or break a constraint): that
    /// line is rejected and the others go on. Any other store error ends the run.
    private static func isLineFault(_ error: CanonicalStoreError) -> Bool {
        [.uniqueViolation, .streamVersionConflict, .constraintViolation, .invalidValue, .requirementFailed, .rowNotFound].contains(error.code)
    }

    private func commit(_ batch: inout [Decided], into report: inout Report) async throws {
        defer { batch.removeAll(keepingCapacity: true) }
        guard !batch.isEmpty else { return }
        if options.dryRun {
            report.imported += batch.count
            report.events += batch.reduce(0) { $0 + $1.units.reduce(0) { $0 + $1.events.count } }
            return
        }
        do {
            let results = try await store.commit(batch: batch.flatMap(\.units))
            report.imported += batch.count
            report.events += results.reduce(0) { $0 + $1.events.count }
            report.position = results.last?.position ?? report.position
        } catch let error as CanonicalStoreError where Self.isLineFault(error) {
            // One case of the batch collides (another import of this source took its external id
            // meanwhile, or its rows break a constraint): case by case, to find which.
            for decided in batch {
                do {
                    let results = try await store.commit(batch: decided.units)
                    report.imported += 1
                    report.events += results.reduce(0) { $0 + $1.events.count }
                    report.position = results.last?.position ?? report.position
                } catch let error as CanonicalStoreError where Self.isLineFault(error) {
                    if try await Self.importedCase(source: options.source, externalID: decided.externalID, in: store) != nil {
                        report.alreadyImported += 1
                    } else {
                        report.rejected.append(Self.rejection(error, line: decided.line, text: decided.text, externalID: decided.externalID))
                    }
                }
            }
        }
    }

    static func decode(_ line: String) throws -> LegacyCase {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = Timestamp.decodingStrategy
        return try decoder.decode(LegacyCase.self, from: Data(line.utf8))
    }

    /// The decisions that bring `legacy` to where it stands: open it (recording where it came
    /// from), assign it, link its parties, move it along the main path to its status, restrict it.
    /// `legacy.externalID` is as `run` checked and trimmed it.
    func decide(_ legacy: LegacyCase, users: [String: User]) throws(DomainError) -> [UnitOfWork] {
        let externalID = legacy.externalID
        let now = clock()
        guard legacy.openedAt <= now else { throw DomainError.invalid(field: "opened_at", "is in the future") }
        let statusAt = legacy.statusAt ?? legacy.openedAt
        guard statusAt >= legacy.openedAt, statusAt <= now else {
            throw DomainError.invalid(field: "status_at", "must lie between opened_at and now")
        }
        guard let target = CaseStatus(rawValue: legacy.status) else {
            throw DomainError.invalid(field: "status", "must be one of \(CaseStatus.allCases.map(\.rawValue).joined(separator: ", ")); got \"\(legacy.status)\"")
        }
        let opener = try legacy.openedBy.map { id throws(DomainError) in
            guard let user = users[id] else { throw DomainError.invalid(field: "opened_by", "names no registered user: \"\(id)\"") }
            return user
        } ?? Self.principal
        let metadata = CommandMetadata(actor: opener.id, correlationID: "backfill:\(options.source):\(externalID)")
        let request = OpenCaseRequest(title: legacy.title, summary: legacy.summary, sector: legacy.sector, region: legacy.region,
                                      priority: legacy.priority, team: legacy.team)
        let opened = try CaseDecisions.openCase(request, id: newID(), by: opener, at: legacy.openedAt, metadata: metadata)
        var current = opened.value
        var first = opened.work
        first.mutations.append(.insert(table: CasePlatformSchema.importedRecords.name, row: [
            "source": .text(options.source), "external_id": .text(externalID), "case_id": .text(current.id),
            "imported_at": .timestamp(now), "imported_by": .text(Self.principal.id),
        ]))
        var units = [first]

        if let id = legacy.assignee {
            guard let investigator = users[id] else { throw DomainError.invalid(field: "assignee", "names no registered user: \"\(id)\"") }
            let assigned = try CaseDecisions.assign(current, investigator: investigator, by: opener, at: legacy.openedAt, metadata: metadata)
            current = assigned.value
            units.append(assigned.work)
        }
        var links: [CasePartyLink] = []
        for (index, legacyParty) in legacy.parties.enumerated() {
            do throws(DomainError) {
                let party = try CaseDecisions.registerParty(
                    RegisterPartyRequest(kind: legacyParty.kind, name: legacyParty.name, email: legacyParty.email, nationalID: legacyParty.nationalID),
                    id: newID(), by: opener, at: legacy.openedAt, metadata: metadata)
                let linked = try CaseDecisions.linkParty(current, party: party.value, role: legacyParty.role, existing: links, by: opener,
                                                         at: legacy.openedAt, metadata: metadata)
                current = linked.value.0
                links.append(linked.value.1)
                units += [party.work, linked.work]
            } catch {
                throw error.nested(in: "parties[\(index)]")
            }
        }
        let path: [CaseStatus] = [.triage, .investigation, .enforcement, .closed]
        if target != .intake {
            for status in path.prefix(through: path.firstIndex(of: target)!) {
                let moved = try CaseDecisions.transition(current, TransitionRequest(to: status.rawValue, reason: "imported from \(options.source)"),
                                                         by: opener, at: statusAt, metadata: metadata)
                current = moved.value
                units.append(moved.work)
            }
        }
        if legacy.restricted {
            let restricted = try CaseDecisions.restrict(
                current, RestrictionRequest(restricted: true, reason: "restricted in \(options.source)"),
                assignee: current.assignee.flatMap { users[$0] }, by: Self.principal, at: statusAt,
                metadata: CommandMetadata(actor: Self.principal.id, correlationID: metadata.correlationID))
            units.append(restricted.work)
        }
        return units
    }

    static func rejection(_ error: any Error, line: Int, text: String, externalID: String? = nil) -> Rejection {
        let externalID = externalID ?? (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["external_id"] as? String
        switch error {
        case let error as DomainError:
            return Rejection(line: line, externalID: externalID, code: error.code.rawValue, field: error.field, message: error.message, text: text)
        case let error as LineError:
            return Rejection(line: line, externalID: nil, code: error.code, field: nil, message: error.message, text: text)
        case let error as DecodingError:
            let (field, message) = describe(error)
            return Rejection(line: line, externalID: externalID, code: field == nil ? "invalidJSON" : "invalid", field: field, message: message, text: text)
        case let error as CanonicalStoreError:
            return Rejection(line: line, externalID: externalID, code: error.code.rawValue, field: nil, message: error.message, text: text)
        default:
            return Rejection(line: line, externalID: externalID, code: "invalid", field: nil, message: "\(error)", text: text)
        }
    }

    /// What a field of `type` looks like in JSON.
    private static func expected(_ type: Any.Type) -> String {
        switch type {
        case is Date.Type: "an ISO 8601 time such as 2021-03-04T10:00:00Z"
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        case is [LegacyCase.LegacyParty].Type: "a list of parties"
        case is LegacyCase.LegacyParty.Type: "a party object"
        default: "a JSON object"
        }
    }

    /// The field a decoding error is about, and what is wrong with it.
    private static func describe(_ error: DecodingError) -> (String?, String) {
        func path(_ context: DecodingError.Context, _ key: (any CodingKey)? = nil) -> String {
            (context.codingPath + (key.map { [$0] } ?? [])).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context, key)
            return (field, "\(field) is required")
        case .valueNotFound(let type, let context):
            let field = path(context)
            if field.isEmpty { return (nil, "the line must be a JSON object, not null") }
            return (field, "\(field) must not be null (expected \(expected(type)))")
        case .typeMismatch(let type, let context):
            let field = path(context)
            if field.isEmpty { return (nil, "the line must be a JSON object") }
            return (field, "\(field) must be \(expected(type))")
        case .dataCorrupted(let context):
            let field = path(context)
            if field.isEmpty { return (nil, "the line is not valid JSON: \(context.underlyingError.map { "\($0)" } ?? context.debugDescription)") }
            return (field, "\(field) \(context.debugDescription)")
        @unknown default:
            return (nil, "\(error)")
        }
    }
}
