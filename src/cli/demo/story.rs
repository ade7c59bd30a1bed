//! The Astana 2023 story as data (Kazinform, 18 March 2023: "CEC Chairman Nurlan Abdirov
//! holds meetings with international observers"): the election, the sending bodies, their
//! delegations, the chairman's meetings and 793 synthetic observers whose figures give the
//! article's headline, "793 observers from 12 international organizations and 41 countries".
//!
//! Everything here is fixed, so every run asks the service for exactly the same records.

use crate::pb::v1::{ObserverRole, OrganizationKind};

mod roster;

pub use roster::{Observer, observer_id, observers};

/// `elections/{ELECTION_ID}`.
pub const ELECTION_ID: &str = "kz-2023";
pub const ELECTION: &str = "elections/kz-2023";
pub const ELECTION_DISPLAY_NAME: &str = "Early parliamentary elections to the Majilis";
pub const HOST_COUNTRY: &str = "KZ";
pub const VOTING_DAY: &str = "2023-03-19";
/// Accreditation closed when voting began (the default for an unset deadline), written out
/// so that the final state does not depend on whether the demo had to reopen it.
pub const ACCREDITATION_DEADLINE: &str = "2023-03-19T00:00:00Z";
pub const ELECTION_DESCRIPTION: &str = "Early elections of the deputies of the Majilis of the \
    Parliament of the Republic of Kazakhstan, 19 March 2023. Loaded by `observer-registry demo` \
    from the Kazinform report of 18 March 2023; the individual observers are synthetic.";

pub const HOST: &str = "Nurlan Abdirov, Chairman of the Central Election Commission";
pub const LOCATION: &str = "Central Election Commission, Astana";
pub const HEADLINE: &str = "793 observers from 12 international organizations and 41 countries";

/// A sending body. `citizenships` are handed out in turn to its `observers` synthetic
/// observers (a foreign election body's are all of its own country).
pub struct Organization {
    pub id: &'static str,
    pub display_name: &'static str,
    pub abbreviation: &'static str,
    pub kind: OrganizationKind,
    /// Only for FOREIGN_ELECTION_BODY.
    pub country: &'static str,
    pub observers: usize,
    pub citizenships: &'static [&'static str],
    /// The delegation (same id as the organization) that met the chairman, if any; all the
    /// organization's observers belong to it.
    pub delegation: Option<&'static str>,
}

const IO: OrganizationKind = OrganizationKind::InternationalOrganization;
const PA: OrganizationKind = OrganizationKind::ParliamentaryAssembly;
const FEB: OrganizationKind = OrganizationKind::ForeignElectionBody;

const fn org(
    id: &'static str,
    display_name: &'static str,
    abbreviation: &'static str,
    kind: OrganizationKind,
    observers: usize,
    citizenships: &'static [&'static str],
    delegation: Option<&'static str>,
) -> Organization {
    Organization {
        id,
        display_name,
        abbreviation,
        kind,
        country: "",
        observers,
        citizenships,
        delegation,
    }
}

/// A foreign election commission: its observers are its own country's citizens.
const fn commission(
    id: &'static str,
    display_name: &'static str,
    abbreviation: &'static str,
    country: &'static [&'static str; 1],
    observers: usize,
    delegation: &'static str,
) -> Organization {
    Organization {
        country: country[0],
        delegation: Some(delegation),
        ..org(
            id,
            display_name,
            abbreviation,
            FEB,
            observers,
            country,
            None,
        )
    }
}

/// One of the seven organizations not in the article that complete the twelve.
const fn illustrative(
    id: &'static str,
    display_name: &'static str,
    abbreviation: &'static str,
    kind: OrganizationKind,
    observers: usize,
    citizenships: &'static [&'static str],
) -> Organization {
    org(
        id,
        display_name,
        abbreviation,
        kind,
        observers,
        citizenships,
        None,
    )
}

/// Seventeen bodies: the ten of the article and seven illustrative international ones.
pub const ORGANIZATIONS: &[Organization] = &[
    // 17 March.
    commission(
        "cec-az",
        "Central Election Commission of the Republic of Azerbaijan",
        "CEC of Azerbaijan",
        &["AZ"],
        6,
        "Delegation of the Central Election Commission of Azerbaijan",
    ),
    commission(
        "cec-md",
        "Central Electoral Commission of the Republic of Moldova",
        "CEC of Moldova",
        &["MD"],
        4,
        "Delegation of the Central Electoral Commission of Moldova",
    ),
    commission(
        "cec-mn",
        "General Election Commission of Mongolia",
        "GEC of Mongolia",
        &["MN"],
        5,
        "Delegation of the General Election Commission of Mongolia",
    ),
    commission(
        "cec-tr",
        "Supreme Election Council of the Republic of Türkiye",
        "YSK",
        &["TR"],
        6,
        "Members of the Supreme Election Council of Türkiye",
    ),
    org(
        "sco",
        "Shanghai Cooperation Organisation",
        "SCO",
        IO,
        40,
        &["CN", "IN", "PK", "RU", "TJ", "KG", "UZ"],
        Some("SCO observation mission"),
    ),
    org(
        "csto-pa",
        "Parliamentary Assembly of the Collective Security Treaty Organisation",
        "CSTO PA",
        PA,
        20,
        &["AM", "BY", "KG", "RU", "TJ"],
        Some("CSTO Parliamentary Assembly delegation"),
    ),
    org(
        "turkpa",
        "Parliamentary Assembly of Turkic States",
        "TURKPA",
        PA,
        12,
        &["AZ", "KG", "TR", "HU"],
        Some("TURKPA delegation"),
    ),
    // 18 March.
    org(
        "pa-union-belarus-russia",
        "Parliamentary Assembly of the Union of Belarus and Russia",
        "",
        PA,
        10,
        &["BY", "RU"],
        Some("Delegation of the Parliamentary Assembly of the Union of Belarus and Russia"),
    ),
    commission(
        "cec-tj",
        "Central Commission on Election and Referendum of the Republic of Tajikistan",
        "CCER of Tajikistan",
        &["TJ"],
        5,
        "Delegation of the Central Commission on Election and Referendum of Tajikistan",
    ),
    org(
        "cis-ipa",
        "Interparliamentary Assembly of the Commonwealth of Independent States",
        "CIS IPA",
        PA,
        60,
        &["AM", "AZ", "BY", "KG", "MD", "RU", "TJ", "UZ"],
        Some("Group of international observers from the CIS Interparliamentary Assembly"),
    ),
    // Not in the article: they complete the twelve international organizations.
    illustrative(
        "osce-odihr",
        "OSCE Office for Democratic Institutions and Human Rights",
        "OSCE/ODIHR",
        IO,
        300,
        &[
            "DE", "FR", "GB", "US", "IT", "PL", "AT", "SE", "FI", "NO", "CH", "LT", "LV", "EE",
            "GE", "CZ", "RO", "BG", "RS", "ES", "NL", "HU", "MD", "MN",
        ],
    ),
    illustrative(
        "osce-pa",
        "OSCE Parliamentary Assembly",
        "OSCE PA",
        PA,
        60,
        &[
            "DE", "FR", "GB", "US", "IT", "SE", "FI", "NO", "CH", "LT", "AT", "PL",
        ],
    ),
    illustrative(
        "pace",
        "Parliamentary Assembly of the Council of Europe",
        "PACE",
        PA,
        30,
        &[
            "FR", "DE", "IT", "ES", "GB", "PL", "RO", "BG", "GE", "AM", "AZ", "TR", "CH", "AT",
            "NL",
        ],
    ),
    illustrative(
        "cis",
        "Commonwealth of Independent States (Executive Committee observer mission)",
        "CIS",
        IO,
        200,
        &["AM", "AZ", "BY", "KG", "MD", "RU", "TJ", "UZ", "TM"],
    ),
    illustrative(
        "oic",
        "Organisation of Islamic Cooperation",
        "OIC",
        IO,
        15,
        &["SA", "EG", "MY", "ID", "PK", "TR", "AZ"],
    ),
    illustrative(
        "a-web",
        "Association of World Election Bodies",
        "A-WEB",
        IO,
        10,
        &["KR", "MN", "MD", "RO", "ID"],
    ),
    illustrative(
        "ots",
        "Organization of Turkic States",
        "OTS",
        IO,
        10,
        &["AZ", "KG", "TR", "UZ", "HU", "TM"],
    ),
];

/// A decision of the commission accrediting observers: the election requires one behind
/// every accreditation (`decision_required`), and the demo takes one a day.
pub struct Decision {
    /// As recorded in each observer's `accreditation.decision`.
    pub text: &'static str,
    /// The organizations whose observers it accredits, numbered in the roster's order.
    pub organizations: &'static [&'static str],
}

/// The article names no resolution: their numbers and dates are made up, and say so, so
/// that nobody quotes them as the commission's.
pub const DECISIONS: &[Decision] = &[
    Decision {
        text: "Resolution No. 25/312 of 2023-03-14 (illustrative)",
        // Those the chairman met on 17 March.
        organizations: &[
            "cec-az", "cec-md", "cec-mn", "cec-tr", "sco", "csto-pa", "turkpa",
        ],
    },
    Decision {
        text: "Resolution No. 26/318 of 2023-03-15 (illustrative)",
        // Those he met on 18 March.
        organizations: &["pa-union-belarus-russia", "cec-tj", "cis-ipa"],
    },
    Decision {
        text: "Resolution No. 27/325 of 2023-03-16 (illustrative)",
        // The missions the article does not name.
        organizations: &[
            "osce-odihr",
            "osce-pa",
            "pace",
            "cis",
            "oic",
            "a-web",
            "ots",
        ],
    },
];

/// The host state's invitation to one organization and its reply. The election was called on
/// 19 January 2023; the article names no letters, so their dates and references are made up
/// and say so, like the decisions'. Every organization accepted and sent what it announced.
pub struct Invitation {
    pub organization: &'static str,
    pub send_date: String,
    pub reference: String,
    pub reply_date: String,
    pub expected_observers: i32,
}

/// The letters went out on one day; the replies came in over the next weeks, one a day in
/// the roster's order.
pub const INVITATIONS_SENT: &str = "2023-01-27";

pub fn invitations() -> Vec<Invitation> {
    let sent = chrono::NaiveDate::from_ymd_opt(2023, 1, 27).unwrap_or_default();
    ORGANIZATIONS
        .iter()
        .zip(1..)
        .map(|(organization, n)| Invitation {
            organization: organization.id,
            send_date: INVITATIONS_SENT.to_owned(),
            reference: format!("MFA note No. 12-1/{:03} (illustrative)", 100 + n),
            reply_date: (sent + chrono::Days::new(7 + n))
                .format("%Y-%m-%d")
                .to_string(),
            expected_observers: i32::try_from(organization.observers).unwrap_or(i32::MAX),
        })
        .collect()
}

/// The one observer the article names: the head of Tajikistan's delegation.
pub const HEAD_OF_CEC_TJ: NamedObserver = NamedObserver {
    given_name: "Bakhtiyor",
    family_name: "Hudoerzoda",
    citizenship: "TJ",
    organization: "cec-tj",
    role: ObserverRole::Coordinator,
    deployment_region: "Astana",
};
pub const HEADED_DELEGATION: &str = "cec-tj";

pub struct NamedObserver {
    pub given_name: &'static str,
    pub family_name: &'static str,
    pub citizenship: &'static str,
    pub organization: &'static str,
    pub role: ObserverRole,
    pub deployment_region: &'static str,
}

/// A meeting of the chairman. Times carry Astana's offset (UTC+6 in March 2023).
pub struct Meeting {
    pub id: &'static str,
    pub title: &'static str,
    pub delegations: &'static [&'static str],
    pub start: &'static str,
    pub end: &'static str,
    pub topics: &'static [&'static str],
    pub outcome: &'static str,
}

const TOPICS_17: &[&str] = &[
    "preparation for the early parliamentary elections",
    "implementation of reforms in election legislation",
    "results of registration of candidates and party lists of political parties",
];
const TOPICS_18: &[&str] = &[
    "preparation for the election of Majilis deputies",
    "preparedness of the polling stations for voting",
    "questions on the organization and holding of the elections",
];
const OUTCOME_17: &str =
    "The delegations noted a high level of organization of the election process.";
const OUTCOME_18: &str = "The heads of delegations noted the calm and friendly atmosphere \
    and expressed readiness to observe the elections in an unbiased and impartial manner.";

pub const MEETINGS: &[Meeting] = &[
    Meeting {
        id: "chairman-2023-03-17",
        title: "Meeting of the CEC Chairman with international observers",
        delegations: &[
            "cec-az", "cec-md", "cec-mn", "cec-tr", "sco", "csto-pa", "turkpa",
        ],
        start: "2023-03-17T11:00:00+06:00",
        end: "2023-03-17T12:30:00+06:00",
        topics: TOPICS_17,
        outcome: OUTCOME_17,
    },
    Meeting {
        id: "chairman-2023-03-18-pa-union",
        title: "Meeting of the CEC Chairman with the delegation of the Parliamentary Assembly \
            of the Union of Belarus and Russia",
        delegations: &["pa-union-belarus-russia"],
        start: "2023-03-18T10:00:00+06:00",
        end: "2023-03-18T10:45:00+06:00",
        topics: TOPICS_18,
        outcome: OUTCOME_18,
    },
    Meeting {
        id: "chairman-2023-03-18-cec-tj",
        title: "Meeting of the CEC Chairman with Bakhtiyor Hudoerzoda, Chairman of the Central \
            Commission on Election and Referendum of Tajikistan",
        delegations: &["cec-tj"],
        start: "2023-03-18T11:00:00+06:00",
        end: "2023-03-18T11:45:00+06:00",
        topics: TOPICS_18,
        outcome: OUTCOME_18,
    },
    Meeting {
        id: "chairman-2023-03-18-cis-ipa",
        title: "Meeting of the CEC Chairman with the group of international observers from \
            the CIS Interparliamentary Assembly",
        delegations: &["cis-ipa"],
        start: "2023-03-18T12:00:00+06:00",
        end: "2023-03-18T12:45:00+06:00",
        topics: TOPICS_18,
        outcome: OUTCOME_18,
    },
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_figures_are_the_articles() {
        let observers = observers();
        assert_eq!(observers.len(), 793);
        let countries: HashSet<_> = observers.iter().map(|o| o.citizenship).collect();
        assert_eq!(countries.len(), 41);
        assert!(!countries.contains(HOST_COUNTRY));
        for country in ["AZ", "MD", "MN", "TR", "TJ", "BY", "RU"] {
            assert!(countries.contains(country), "{country}");
        }
        let international: HashSet<_> = observers
            .iter()
            .map(|o| o.organization)
            .filter(|id| ORGANIZATIONS.iter().any(|o| o.id == *id && o.kind != FEB))
            .collect();
        assert_eq!(international.len(), 12);
        assert_eq!(ORGANIZATIONS.len(), 17);
        assert_eq!(
            ORGANIZATIONS
                .iter()
                .filter(|o| o.delegation.is_some())
                .count(),
            10
        );
    }

    #[test]
    fn every_organization_was_invited_and_announced_its_observers() {
        let invitations = invitations();
        assert_eq!(invitations.len(), ORGANIZATIONS.len());
        let expected: i32 = invitations.iter().map(|i| i.expected_observers).sum();
        assert_eq!(expected, 793);
        for invitation in &invitations {
            assert!(invitation.reference.ends_with("(illustrative)"));
            assert!(invitation.reply_date.as_str() > INVITATIONS_SENT);
            assert!(invitation.reply_date.as_str() < VOTING_DAY);
        }
    }

    #[test]
    fn observers_are_unique_and_consistent() {
        let observers = observers();
        let ids: HashSet<_> = observers.iter().map(|o| o.id.as_str()).collect();
        let documents: HashSet<_> = observers
            .iter()
            .map(|o| o.travel_document_number.as_str())
            .collect();
        let names: HashSet<_> = observers
            .iter()
            .map(|o| (o.given_name.as_str(), o.family_name.as_str()))
            .collect();
        assert_eq!(ids.len(), 793);
        assert_eq!(documents.len(), 793);
        assert_eq!(names.len(), 793);
        assert_eq!(observers[0].family_name, "Hudoerzoda");
        assert_eq!(observers[0].id, "obs-0001");
        for observer in &observers {
            let organization = ORGANIZATIONS
                .iter()
                .find(|o| o.id == observer.organization)
                .unwrap();
            if organization.kind == FEB {
                assert_eq!(observer.citizenship, organization.country);
            }
            assert_eq!(
                observer.delegation,
                organization.delegation.map(|_| organization.id)
            );
        }
    }

    #[test]
    fn each_organization_is_accredited_by_one_decision_within_a_batch() {
        for organization in ORGANIZATIONS {
            let deciding = DECISIONS
                .iter()
                .filter(|d| d.organizations.contains(&organization.id))
                .count();
            assert_eq!(deciding, 1, "{}", organization.id);
        }
        let observers = observers();
        for decision in DECISIONS {
            let covered = observers
                .iter()
                .filter(|o| decision.organizations.contains(&o.organization))
                .count();
            // BatchAccreditObservers takes up to 1000 names; the decision is one line.
            assert!((1..=1000).contains(&covered), "{}", decision.text);
            assert!(decision.text.ends_with("(illustrative)"));
        }
    }

    #[test]
    fn meetings_do_not_overlap_and_fall_on_the_articles_days() {
        let mut spans: Vec<_> = MEETINGS
            .iter()
            .map(|m| {
                let start = chrono::DateTime::parse_from_rfc3339(m.start).unwrap();
                let end = chrono::DateTime::parse_from_rfc3339(m.end).unwrap();
                assert!(start < end);
                (start, end)
            })
            .collect();
        spans.sort();
        assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0));
        assert_eq!(MEETINGS[0].delegations.len(), 7);
        let met: HashSet<_> = MEETINGS.iter().flat_map(|m| m.delegations).collect();
        let delegations: HashSet<_> = ORGANIZATIONS
            .iter()
            .filter(|o| o.delegation.is_some())
            .map(|o| &o.id)
            .collect();
        assert_eq!(met.len(), 10);
        assert_eq!(met, delegations);
    }
}
