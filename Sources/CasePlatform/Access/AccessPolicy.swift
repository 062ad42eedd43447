import Canon
/// The one place that decides what a principal may do and see.
///
/// Every path asks it: canonical reads, commands, and (later) projections and sensitive
/// actions. The rules, documented in `docs/security.md`:
/// - analysts read and never write; legal may change restrictions; supervisors and admins may
///   assign; investigators, supervisors and admins run the case work itself, investigators and
///   supervisors only on their own team's cases;
/// - a restricted case is visible to its team's members, to legal and to admins; everyone else
///   is told it does not exist, so its existence does not leak.
public enum AccessPolicy {
    public enum Action: String, Sendable, CaseIterable {
        case openCase, transitionCase, assignCase, restrictCase, changeTeam, registerParty, linkParty, addEvidence, generateEnforcementNotice, purgeCase, holdCase
    }

    public static func roles(allowedTo action: Action) -> Set<Role> {
        switch action {
        case .openCase, .transitionCase, .registerParty, .linkParty, .addEvidence: [.investigator, .supervisor, .admin]
        case .assignCase: [.supervisor, .admin]
        case .changeTeam: [.supervisor, .legal, .admin]
        case .restrictCase, .generateEnforcementNotice: [.supervisor, .legal, .admin]
        case .purgeCase, .holdCase: [.legal, .admin]
        }
    }

    /// - Throws: `DomainError.forbidden` naming the roles that may.
    public static func require(_ principal: User, may action: Action) throws(DomainError) {
        let allowed = roles(allowedTo: action)
        guard allowed.contains(principal.role) else {
            let names = allowed.map(\.rawValue).sorted().joined(separator: ", ")
            throw DomainError.forbidden("\(principal.id) (\(principal.role.rawValue)) may not \(action.rawValue); allowed roles: \(names)")
        }
    }

    /// Case work stays inside the team: investigators and supervisors act only on their own
    /// team's cases; legal and admins act on any.
    ///
    /// - Throws: `DomainError.forbidden` naming the team.
    public static func requireTeamScope(_ principal: User, team: String) throws(DomainError) {
        switch principal.role {
        case .legal, .admin: return
        case .investigator, .supervisor, .analyst:
            guard principal.team == team else {
                throw DomainError.forbidden("\(principal.id) works for team \(principal.team ?? "none") and may not act on team \(team)'s cases")
            }
        }
    }

    /// Whether `principal` sees a party's email and national id unmasked, reading the party
    /// through cases of `caseTeams`: not analysts, and not investigators outside those teams.
    public static func seesPartyIdentity(_ principal: User, caseTeams: Set<String>) -> Bool {
        switch principal.role {
        case .analyst: false
        case .investigator: principal.team.map(caseTeams.contains) ?? false
        case .supervisor, .legal, .admin: true
        }
    }

    /// The same rule as `canView`, as a search store applies it inside its query (so facet counts
    /// are filtered too).
    public static func searchVisibility(for principal: User) -> SearchVisibility {
        switch principal.role {
        case .legal, .admin: .everything
        case .supervisor: .scoped(teams: [], clearance: 0, supervised: principal.team.map { [$0] } ?? [])
        case .investigator, .analyst: .scoped(teams: principal.team.map { [$0] } ?? [], clearance: principal.clearance, supervised: [])
        }
    }

    /// A restricted case is visible to legal and admins, to the supervisors of its team, and to
    /// its team's members whose clearance is at least the case's.
    public static func canView(_ item: Case, as principal: User) -> Bool {
        guard item.restricted else { return true }
        switch principal.role {
        case .legal, .admin: return true
        case .supervisor: return principal.team == item.team
        case .investigator, .analyst: return principal.team == item.team && principal.clearance >= item.clearance
        }
    }
}
