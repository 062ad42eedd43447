/// Word lists for the demo platform: enough variety for search, facets and graphs to mean something.
enum Names {
    static let first = [
        "Amara", "Ben", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam", "Maya", "Nikolai",
        "Olivia", "Pavel", "Quinn", "Rosa", "Stefan", "Tara", "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe", "Anders", "Bianca",
        "Carlos", "Daria", "Emeka", "Fiona", "Gustav", "Hana", "Ivo", "Julia", "Kwame", "Leila", "Marco", "Noor",
    ]
    static let last = [
        "Adeyemi", "Bergström", "Castellanos", "Dubois", "Eriksen", "Fischer", "Gallagher", "Horvath", "Ibrahim", "Jansen",
        "Kowalski", "Laurent", "Moreau", "Nakamura", "O'Brien", "Petrova", "Quintero", "Rossi", "Schmidt", "Takahashi",
        "Underwood", "Varga", "Wójcik", "Xu", "Yilmaz", "Zimmermann", "Andersson", "Novak", "Silva", "Okonkwo",
    ]
    static let orgPrefixes = [
        "Northwind", "Bluegate", "Crescent", "Harbor", "Ironbridge", "Kestrel", "Lumen", "Meridian", "Oakridge", "Pinnacle",
        "Quarry", "Redwood", "Silverline", "Tidewater", "Summit", "Vantage", "Westfield", "Granite", "Aurora", "Beacon",
        "Cobalt", "Driftwood", "Evergreen", "Falcon", "Sterling", "Halcyon", "Juniper", "Larkspur", "Mosaic", "Nimbus",
    ]
    static let orgSectors = [
        "Capital", "Energy", "Mutual", "Telecom", "Health", "Logistics", "Retail", "Pharma", "Water", "Gaming", "Insurance",
        "Securities", "Power", "Networks", "Bank", "Lending", "Assurance", "Freight", "Markets", "Labs",
    ]
    static let orgSuffixes = ["Ltd", "plc", "Group", "Holdings", "& Co", "Partners", "SA", "GmbH", "AB", "LLP"]

    static func organisation(_ random: inout SeededGenerator) -> String {
        "\(random.pick(orgPrefixes)) \(random.pick(orgSectors)) \(random.pick(orgSuffixes))"
    }

    struct Issue { let title: String; let summary: String }
    static let issues = [
        Issue(title: "misleading tariff disclosures", summary: "Customers were shown introductory tariffs without the standard rate that followed."),
        Issue(title: "unauthorised account charges", summary: "Complaints describe recurring charges that customers never agreed to."),
        Issue(title: "suspected insider trading", summary: "Unusual trading ahead of a price-sensitive announcement points to leaked information."),
        Issue(title: "data breach notification delay", summary: "A breach affecting customer records was reported weeks after discovery."),
        Issue(title: "anti-money-laundering control failures", summary: "Transaction monitoring missed structured deposits across many branches."),
        Issue(title: "mis-selling of payment protection", summary: "Payment protection was sold to customers who could never claim on it."),
        Issue(title: "price fixing allegation", summary: "Competitors appear to have coordinated price rises through a trade association."),
        Issue(title: "unsafe product recall handling", summary: "A product recall reached only a fraction of affected buyers."),
        Issue(title: "vulnerable customer treatment", summary: "Debt collection calls targeted customers flagged as vulnerable."),
        Issue(title: "market manipulation through spoofing", summary: "Layered orders were placed and cancelled to move the quoted price."),
        Issue(title: "billing errors after system migration", summary: "A platform migration produced duplicated and back-dated bills."),
        Issue(title: "excessive roaming fees", summary: "Roaming fees exceeded the published caps for several months."),
        Issue(title: "clinical trial data irregularities", summary: "Trial records show inconsistencies between sites and reported outcomes."),
        Issue(title: "unlicensed gambling promotions", summary: "Promotions reached self-excluded players through affiliate networks."),
        Issue(title: "greenwashing in investment funds", summary: "Funds marketed as sustainable held large fossil fuel positions."),
        Issue(title: "sanctions screening gaps", summary: "Payments to sanctioned counterparties passed screening undetected."),
        Issue(title: "pension transfer advice failures", summary: "Advisers recommended transfers that left members worse off."),
        Issue(title: "cookie consent violations", summary: "Tracking started before visitors gave consent on the main website."),
        Issue(title: "supply interruption without notice", summary: "Customers lost supply for days without notice or compensation."),
        Issue(title: "fraudulent claims handling", summary: "Claims staff approved payouts on forged invoices."),
    ]

    static let sources = [
        "raised by a whistleblower", "found in a thematic review", "reported by a consumer group", "referred by another regulator",
        "flagged by market surveillance", "from a cluster of complaints", "disclosed by the firm itself", "reported in the press",
    ]

    struct EvidenceKind { let title: String; let description: String; let mediaType: String }
    static let evidence = [
        EvidenceKind(title: "Customer complaint letter", description: "Letter from a customer describing charges taken without consent and the firm's refusal to refund them.", mediaType: "application/pdf"),
        EvidenceKind(title: "Trading records extract", description: "Order book extract showing large orders placed and cancelled within seconds around the opening auction.", mediaType: "text/csv"),
        EvidenceKind(title: "Internal email thread", description: "Emails between managers discussing delaying the breach notification until after the quarterly results.", mediaType: "message/rfc822"),
        EvidenceKind(title: "Board meeting minutes", description: "Minutes recording that the board was told about control failures and chose not to act.", mediaType: "application/pdf"),
        EvidenceKind(title: "Call recording transcript", description: "Transcript of a sales call in which the adviser pressures an elderly customer to sign the same day.", mediaType: "text/plain"),
        EvidenceKind(title: "Marketing brochure", description: "Brochure advertising a sustainable fund with no mention of its energy holdings.", mediaType: "application/pdf"),
        EvidenceKind(title: "Bank statements", description: "Statements showing repeated cash deposits just under the reporting threshold.", mediaType: "application/pdf"),
        EvidenceKind(title: "Screenshot of website", description: "Screenshot of the checkout page where tracking scripts load before the consent banner appears.", mediaType: "image/png"),
        EvidenceKind(title: "Witness statement", description: "Signed statement from a former employee describing instructions to ignore monitoring alerts.", mediaType: "application/pdf"),
        EvidenceKind(title: "Audit report", description: "External audit finding that reconciliation between billing and payment systems failed after migration.", mediaType: "application/pdf"),
        EvidenceKind(title: "Chat logs", description: "Chat messages between traders coordinating prices with a competitor before each tender.", mediaType: "application/json"),
        EvidenceKind(title: "Site inspection photos", description: "Photographs of unsafe storage of recalled products still on sale in a warehouse.", mediaType: "image/jpeg"),
    ]

    static let reasons: [CaseStatus: [String]] = [
        .triage: ["initial assessment complete", "complaint volume justifies review", "referred for triage by intake team"],
        .investigation: ["evidence of systemic harm", "potential breach of conduct rules", "supervisor approved investigation"],
        .enforcement: ["breach established", "firm failed to remediate", "legal review recommends action"],
        .closed: ["penalty paid and remediation verified", "no breach found", "firm entered settlement"],
    ]

    static let restrictionReasons = [
        "involves a protected whistleblower", "linked to a criminal referral", "market-sensitive information", "legal privilege",
    ]
}
