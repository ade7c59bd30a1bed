//! The 793 observers of the story: the one the article names, then each organization's
//! synthetic observers, with names, documents and regions that never repeat.

use super::{HEAD_OF_CEC_TJ, HEADED_DELEGATION, ORGANIZATIONS};
use crate::pb::v1::ObserverRole;

/// One observer to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observer {
    /// `obs-0001` …
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub citizenship: &'static str,
    pub organization: &'static str,
    pub delegation: Option<&'static str>,
    pub role: ObserverRole,
    pub travel_document_number: String,
    pub deployment_region: &'static str,
}

// 29 × 31 = 899 ≥ 793 combinations, so no two synthetic observers share a name.
const GIVEN_NAMES: [&str; 29] = [
    "Adam", "Aida", "Alexei", "Amina", "Anna", "Arif", "Bora", "Chen", "Dana", "Elena", "Emre",
    "Farid", "Greta", "Hana", "Ivan", "Jonas", "Karin", "Leyla", "Marco", "Nadia", "Oleg", "Priya",
    "Rustam", "Sara", "Tomas", "Umar", "Vera", "Yusuf", "Zara",
];
const FAMILY_NAMES: [&str; 31] = [
    "Abbasov", "Bauer", "Ceban", "Dorj", "Eriksen", "Fischer", "Garcia", "Horvath", "Ismoilov",
    "Jensen", "Kaya", "Lambert", "Moreau", "Novak", "Ortiz", "Petrov", "Quinn", "Rossi",
    "Sokolova", "Tanaka", "Usmonov", "Vasile", "Weber", "Xu", "Yilmaz", "Zhukov", "Aliyev",
    "Batbayar", "Costa", "Demir", "Egorov",
];
/// Kazakhstan's regions and cities of republican significance (2023).
const REGIONS: [&str; 20] = [
    "Astana",
    "Almaty",
    "Shymkent",
    "Abai Region",
    "Akmola Region",
    "Aktobe Region",
    "Almaty Region",
    "Atyrau Region",
    "East Kazakhstan Region",
    "Jambyl Region",
    "Jetisu Region",
    "Karaganda Region",
    "Kostanay Region",
    "Kyzylorda Region",
    "Mangystau Region",
    "North Kazakhstan Region",
    "Pavlodar Region",
    "Turkistan Region",
    "Ulytau Region",
    "West Kazakhstan Region",
];

/// All 793 observers: `obs-0001` is Bakhtiyor Hudoerzoda, then each organization's
/// synthetic observers in the order of [`ORGANIZATIONS`]. Observer `i` carries the travel
/// document `{citizenship}{i:07}`, unique by construction.
pub fn observers() -> Vec<Observer> {
    let head = &HEAD_OF_CEC_TJ;
    let mut all = vec![Observer {
        id: observer_id(1),
        given_name: head.given_name.to_owned(),
        family_name: head.family_name.to_owned(),
        citizenship: head.citizenship,
        organization: head.organization,
        delegation: Some(HEADED_DELEGATION),
        role: head.role,
        travel_document_number: format!("{}{:07}", head.citizenship, 1),
        deployment_region: head.deployment_region,
    }];
    for organization in ORGANIZATIONS {
        let named = usize::from(organization.id == head.organization);
        for local in 0..organization.observers.saturating_sub(named) {
            let index = all.len() + 1;
            let citizenship = organization.citizenships[local % organization.citizenships.len()];
            all.push(Observer {
                id: observer_id(index),
                given_name: GIVEN_NAMES[index % GIVEN_NAMES.len()].to_owned(),
                family_name: FAMILY_NAMES[(index / GIVEN_NAMES.len()) % FAMILY_NAMES.len()]
                    .to_owned(),
                citizenship,
                organization: organization.id,
                delegation: organization.delegation.map(|_| organization.id),
                role: match index % 25 {
                    0 => ObserverRole::LongTermObserver,
                    12 => ObserverRole::Expert,
                    24 => ObserverRole::Interpreter,
                    _ => ObserverRole::ShortTermObserver,
                },
                travel_document_number: format!("{citizenship}{index:07}"),
                deployment_region: REGIONS[index % REGIONS.len()],
            });
        }
    }
    all
}

pub fn observer_id(index: usize) -> String {
    format!("obs-{index:04}")
}
