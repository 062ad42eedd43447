import Foundation

/// How urgent a case is; it sets the SLA due date when the case opens.
public enum Priority: String, Codable, CaseIterable, Sendable {
    case low, medium, high, critical

    /// Days from opening until the case is due.
    public var slaDays: Int {
        switch self {
        case .critical: 5
        case .high: 15
        case .medium: 30
        case .low: 60
        }
    }
}

/// The regulated sectors the platform covers.
public enum Sector: String, Codable, CaseIterable, Sendable {
    case banking, insurance, energy, telecoms, healthcare, transport, retail, pharmaceuticals, utilities, gambling
}

/// The regions cases are filed in.
public enum Region: String, Codable, CaseIterable, Sendable {
    case north, south, east, west, central
}

/// How a party is linked to a case.
public enum PartyRole: String, Codable, CaseIterable, Sendable {
    case subject, complainant, witness
}

/// Whether a party is a person or an organisation.
public enum PartyKind: String, Codable, CaseIterable, Sendable {
    case person, organisation
}

/// What a principal does on the platform.
public enum Role: String, Codable, CaseIterable, Sendable {
    case investigator, supervisor, analyst, legal, admin
}

/// Parses `value` as `T`, or fails naming the field and every allowed value.
func parse<T: RawRepresentable & CaseIterable>(_ value: String, as type: T.Type, field: String) throws(DomainError) -> T where T.RawValue == String {
    if let parsed = T(rawValue: value) { return parsed }
    throw DomainError.invalid(field: field, "must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")); got \"\(value)\"")
}
