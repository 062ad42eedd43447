/// Where a case stands. The state machine is the canonical store's invariant:
///
/// ```
/// intake → triage → investigation → enforcement → closed
///                        ↑                           │
///                        └──────── reopen ───────────┘
/// ```
/// Every other move is refused.
public enum CaseStatus: String, Codable, CaseIterable, Sendable {
    case intake, triage, investigation, enforcement, closed

    /// The statuses a case may move to from this one.
    public var allowedNextStatuses: [CaseStatus] {
        switch self {
        case .intake: [.triage]
        case .triage: [.investigation]
        case .investigation: [.enforcement]
        case .enforcement: [.closed]
        case .closed: [.investigation]
        }
    }

    public func canMove(to next: CaseStatus) -> Bool { allowedNextStatuses.contains(next) }
}
