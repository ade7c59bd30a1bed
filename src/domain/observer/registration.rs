//! The registration rules (create, batch create, update, undelete, correct), as pure checks
//! over facts the store loads for all entries at once: international observers only, the
//! organization exists, a delegation of the same election and organization, one person once
//! per election. PostgreSQL holds each again (`observers_not_host_country_citizen`,
//! `observers_organization_fk`, `observers_delegation_same_organization`,
//! `observers_one_person_per_election`).

use std::collections::{HashMap, HashSet};

use super::ObserverFields;
use super::identity::TravelDocumentNumber;
use crate::domain::country::CountryCode;
use crate::domain::delegation::delegation_name;
use crate::domain::refusal::{Refusal, Rule};

/// One observer as a request describes it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Where the observer sits in the request, e.g. `observer` or `requests[3].observer`.
    pub at: &'a str,
    pub fields: &'a ObserverFields,
    /// The election named in the `delegation` field; `None` when no delegation is given or
    /// its membership is not to be examined again (see [`membership_unchanged`]).
    pub delegation_election: Option<&'a str>,
}

impl Candidate<'_> {
    fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.at)
    }

    /// The person, by citizenship and travel document; `None` once erased: an erased
    /// observer is nobody's duplicate (nothing is registered in its election any more).
    fn person(&self) -> Option<(CountryCode, &TravelDocumentNumber)> {
        let document = self.fields.travel_document_number.as_ref()?;
        Some((self.fields.citizenship, document))
    }

    fn delegation_id(&self) -> Option<&str> {
        self.delegation_election
            .and(self.fields.delegation_id.as_deref())
    }
}

/// A delegation named by a candidate, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationFacts {
    pub organization_id: String,
    pub deleted: bool,
}

/// What the store knows about the names the candidates use.
#[derive(Debug, Clone, Default)]
pub struct RegistrationFacts {
    /// The organizations among those named that exist.
    pub organizations: HashSet<String>,
    /// The delegations among those named, by id, in this election.
    pub delegations: HashMap<String, DelegationFacts>,
    /// Live registrations of the same people in this election (other than the observer being
    /// changed itself): (citizenship, document) → observer id.
    pub registered: HashMap<(CountryCode, TravelDocumentNumber), String>,
}

/// Whether a refusal may name the observer already registered under a travel document: only
/// callers who read personal data may learn who holds a document number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disclosure {
    NameExisting,
    Withhold,
}

/// The election a registration is for.
#[derive(Debug, Clone, Copy)]
pub struct ElectionScope<'a> {
    pub id: &'a str,
    pub host_country: CountryCode,
}

/// Checks every rule for every candidate; a refusal names each candidate that breaks the
/// first broken rule, so an import learns all of them at once.
pub fn check(
    election: ElectionScope<'_>,
    candidates: &[Candidate<'_>],
    facts: &RegistrationFacts,
    disclosure: Disclosure,
) -> Result<(), Refusal> {
    check_citizenship(election, candidates)?;
    check_organizations(candidates, facts)?;
    check_delegations(election, candidates, facts)?;
    check_one_person_each(election, candidates, facts, disclosure)
}

/// An update keeps the observer's membership when neither the delegation nor the
/// organization changes; it is then not examined again, so a typo can be fixed even after
/// the delegation was deleted.
pub fn membership_unchanged(before: &ObserverFields, after: &ObserverFields) -> bool {
    before.delegation_id == after.delegation_id && before.organization_id == after.organization_id
}

fn check_citizenship(
    election: ElectionScope<'_>,
    candidates: &[Candidate<'_>],
) -> Result<(), Refusal> {
    let citizens: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.fields.citizenship == election.host_country)
        .collect();
    if citizens.is_empty() {
        return Ok(());
    }
    let refusal = Refusal::new(
        Rule::HostCountryCitizen,
        format!(
            "{} is the host country of elections/{}: only international observers are registered",
            election.host_country, election.id
        ),
    );
    Err(citizens.iter().fold(refusal, |refusal, c| {
        refusal.field(c.field("citizenship"), "is the election's host country")
    }))
}

fn check_organizations(
    candidates: &[Candidate<'_>],
    facts: &RegistrationFacts,
) -> Result<(), Refusal> {
    let unknown: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !facts.organizations.contains(&c.fields.organization_id))
        .collect();
    let Some(first) = unknown.first() else {
        return Ok(());
    };
    let refusal = Refusal::new(
        Rule::InvalidArgument,
        format!(
            "organizations/{} does not exist",
            first.fields.organization_id
        ),
    );
    Err(unknown.iter().fold(refusal, |refusal, c| {
        refusal.field(
            c.field("organization"),
            format!("organizations/{} does not exist", c.fields.organization_id),
        )
    }))
}

fn check_delegations(
    election: ElectionScope<'_>,
    candidates: &[Candidate<'_>],
    facts: &RegistrationFacts,
) -> Result<(), Refusal> {
    let mut mismatches: Vec<(&Candidate, String)> = Vec::new();
    for candidate in candidates {
        let Some(delegation_id) = candidate.delegation_id() else {
            continue;
        };
        let name = delegation_name(election.id, delegation_id);
        let why = if candidate.delegation_election != Some(election.id) {
            format!("the delegation is not one of elections/{}", election.id)
        } else {
            match facts.delegations.get(delegation_id) {
                None => format!("{name} does not exist"),
                Some(d) if d.deleted => format!("{name} is deleted"),
                Some(d) if d.organization_id != candidate.fields.organization_id => format!(
                    "{name} is sent by organizations/{}, the observer by organizations/{}",
                    d.organization_id, candidate.fields.organization_id
                ),
                Some(_) => continue,
            }
        };
        mismatches.push((candidate, why));
    }
    let Some((_, first)) = mismatches.first() else {
        return Ok(());
    };
    let refusal = Refusal::new(Rule::DelegationOrganizationMismatch, first.clone());
    Err(mismatches.iter().fold(refusal, |refusal, (c, why)| {
        refusal.field(c.field("delegation"), why.clone())
    }))
}

fn check_one_person_each(
    election: ElectionScope<'_>,
    candidates: &[Candidate<'_>],
    facts: &RegistrationFacts,
    disclosure: Disclosure,
) -> Result<(), Refusal> {
    let mut seen: HashMap<(CountryCode, &TravelDocumentNumber), &str> = HashMap::new();
    let mut repeated: Vec<(&Candidate, String)> = Vec::new();
    for candidate in candidates {
        let Some(person) = candidate.person() else {
            continue;
        };
        if let Some(first) = seen.insert(person, candidate.at) {
            repeated.push((
                candidate,
                format!("{} is the same person as {first}", candidate.at),
            ));
        }
    }
    let mut existing = None;
    if repeated.is_empty() {
        for candidate in candidates {
            let Some((citizenship, document)) = candidate.person() else {
                continue;
            };
            if let Some(id) = facts.registered.get(&(citizenship, document.clone())) {
                let name = super::observer_name(election.id, id);
                let why = match disclosure {
                    Disclosure::NameExisting => format!(
                        "the same person (citizenship and travel document) is already registered as {name}"
                    ),
                    Disclosure::Withhold => "the same person (citizenship and travel document) is \
                         already registered in this election"
                        .to_owned(),
                };
                existing.get_or_insert(name);
                repeated.push((candidate, why));
            }
        }
    }
    let Some((_, first)) = repeated.first() else {
        return Ok(());
    };
    let mut refusal = Refusal::new(Rule::DuplicateObserver, first.clone());
    if let (Some(name), Disclosure::NameExisting) = (existing, disclosure) {
        refusal = refusal.metadata("observer", name);
    }
    Err(repeated.iter().fold(refusal, |refusal, (c, _)| {
        refusal.field(
            c.field("travel_document_number"),
            "this person is already registered in the election",
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::observer::identity::PersonName;

    const ELECTION: &str = "kz-2023";

    fn scope() -> ElectionScope<'static> {
        ElectionScope {
            id: ELECTION,
            host_country: CountryCode::parse("KZ").unwrap(),
        }
    }

    fn person(citizenship: &str, document: &str, organization: &str) -> ObserverFields {
        ObserverFields {
            given_name: PersonName::parse("Anna").unwrap(),
            family_name: PersonName::parse("Lee").unwrap(),
            citizenship: CountryCode::parse(citizenship).unwrap(),
            organization_id: organization.to_owned(),
            delegation_id: None,
            role: None,
            travel_document_number: Some(TravelDocumentNumber::parse(document).unwrap()),
            date_of_birth: None,
            email: None,
            phone: None,
            deployment_region: String::new(),
        }
    }

    fn facts() -> RegistrationFacts {
        RegistrationFacts {
            organizations: ["osce".to_owned(), "cis".to_owned()].into(),
            ..Default::default()
        }
    }

    fn at<'a>(at: &'static str, fields: &'a ObserverFields) -> Candidate<'a> {
        Candidate {
            at,
            fields,
            delegation_election: fields.delegation_id.as_ref().map(|_| ELECTION),
        }
    }

    fn violations(refusal: &Refusal) -> Vec<&str> {
        refusal.fields.iter().map(|(f, _)| f.as_str()).collect()
    }

    #[test]
    fn citizens_of_the_host_country_are_not_international_observers() {
        let (a, b) = (
            person("KZ", "N00000001", "osce"),
            person("DE", "N00000002", "osce"),
        );
        let refusal = check(
            scope(),
            &[at("a", &a), at("b", &b)],
            &facts(),
            Disclosure::Withhold,
        )
        .unwrap_err();
        assert_eq!(refusal.rule, Rule::HostCountryCitizen);
        assert_eq!(violations(&refusal), ["a.citizenship"]);
    }

    #[test]
    fn unknown_organizations_are_named_per_entry() {
        let (a, b) = (
            person("DE", "N00000001", "nato"),
            person("DE", "N00000002", "osce"),
        );
        let refusal = check(
            scope(),
            &[at("a", &a), at("b", &b)],
            &facts(),
            Disclosure::Withhold,
        )
        .unwrap_err();
        assert_eq!(refusal.rule, Rule::InvalidArgument);
        assert_eq!(violations(&refusal), ["a.organization"]);
    }

    #[test]
    fn a_delegation_must_be_of_the_same_organization_and_alive() {
        let mut facts = facts();
        facts.delegations.insert(
            "cis-mission".to_owned(),
            DelegationFacts {
                organization_id: "cis".to_owned(),
                deleted: false,
            },
        );
        facts.delegations.insert(
            "old".to_owned(),
            DelegationFacts {
                organization_id: "osce".to_owned(),
                deleted: true,
            },
        );
        let mut a = person("DE", "N00000001", "osce");
        a.delegation_id = Some("cis-mission".to_owned());
        let mut b = person("DE", "N00000002", "osce");
        b.delegation_id = Some("old".to_owned());
        let mut c = person("DE", "N00000003", "cis");
        c.delegation_id = Some("cis-mission".to_owned());
        let refusal = check(
            scope(),
            &[at("a", &a), at("b", &b), at("c", &c)],
            &facts,
            Disclosure::Withhold,
        )
        .unwrap_err();
        assert_eq!(refusal.rule, Rule::DelegationOrganizationMismatch);
        assert_eq!(violations(&refusal), ["a.delegation", "b.delegation"]);
    }

    #[test]
    fn one_person_is_registered_once_even_within_a_batch() {
        let (a, b) = (
            person("DE", "AB 123-4567", "osce"),
            person("DE", "ab1234567", "osce"),
        );
        let refusal = check(
            scope(),
            &[at("a", &a), at("b", &b)],
            &facts(),
            Disclosure::NameExisting,
        )
        .unwrap_err();
        assert_eq!(refusal.rule, Rule::DuplicateObserver);
        assert_eq!(violations(&refusal), ["b.travel_document_number"]);
        // The same document of another country is another person.
        let c = person("FR", "AB1234567", "osce");
        assert!(
            check(
                scope(),
                &[at("a", &a), at("c", &c)],
                &facts(),
                Disclosure::Withhold
            )
            .is_ok()
        );
    }

    #[test]
    fn the_existing_registration_is_named_only_to_personal_data_readers() {
        let a = person("DE", "AB1234567", "osce");
        let mut facts = facts();
        facts.registered.insert(
            (a.citizenship, a.travel_document_number.clone().unwrap()),
            "obs-1".to_owned(),
        );
        let named = check(scope(), &[at("a", &a)], &facts, Disclosure::NameExisting).unwrap_err();
        assert_eq!(named.rule, Rule::DuplicateObserver);
        assert_eq!(
            named.metadata,
            vec![("observer", "elections/kz-2023/observers/obs-1".to_owned())]
        );
        let withheld = check(scope(), &[at("a", &a)], &facts, Disclosure::Withhold).unwrap_err();
        assert_eq!(withheld.rule, Rule::DuplicateObserver);
        assert!(withheld.metadata.is_empty());
        assert!(!withheld.message.contains("obs-1"));
        assert!(
            withheld
                .fields
                .iter()
                .all(|(_, why)| !why.contains("obs-1"))
        );
    }

    #[test]
    fn an_unchanged_membership_is_not_examined_again() {
        let before = person("DE", "N00000001", "osce");
        let mut after = before.clone();
        after.given_name = PersonName::parse("Hanna").unwrap();
        assert!(membership_unchanged(&before, &after));
        after.organization_id = "cis".to_owned();
        assert!(!membership_unchanged(&before, &after));
    }
}
