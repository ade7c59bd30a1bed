//! Between the contract's `Election` and the domain's: every caller-set field parsed (each
//! bad one a violation), masks over `ElectionField`, and encoding back.

use crate::aip::etag;
use crate::aip::field_mask::UpdatableField;
use crate::api::skeleton::Resource;
use crate::api::{from_timestamp, to_timestamp};
use crate::domain::country::CountryCode;
use crate::domain::date::{format_date, parse_date};
use crate::domain::election::{BadgeValidity, Election, ElectionField, ElectionFields, Retention};
use crate::domain::text;
use crate::error::Violations;
use crate::pb::v1 as pb;

impl UpdatableField for ElectionField {
    const ALL: &'static [Self] = &ElectionField::ALL;

    fn path(self) -> &'static str {
        ElectionField::path(self)
    }
}

/// Paths an update mask may not name.
pub const OUTPUT_ONLY: &[&str] = &[
    "name",
    "create_time",
    "update_time",
    "etag",
    "personal_data_erase_time",
];

/// Parses the caller-set fields of an election, recording every bad one.
pub fn parse(election: &pb::Election, violations: &mut Violations) -> Option<ElectionFields> {
    let display_name = violations.check(
        "election.display_name",
        text::NAME.parse(&election.display_name),
    );
    let description = violations.check(
        "election.description",
        text::NOTE.parse(&election.description),
    );
    let host_country = if election.host_country.is_empty() {
        violations.add("election.host_country", "is required");
        None
    } else {
        violations.check(
            "election.host_country",
            CountryCode::parse(&election.host_country),
        )
    };
    let voting_day = if election.voting_day.is_empty() {
        violations.add("election.voting_day", "is required");
        None
    } else {
        violations.check("election.voting_day", parse_date(&election.voting_day))
    };
    let accreditation_deadline = match &election.accreditation_deadline {
        Some(deadline) => {
            Some(violations.check("election.accreditation_deadline", from_timestamp(deadline))?)
        }
        None => None,
    };
    let badge_validity_days = violations.check(
        "election.badge_validity_days",
        BadgeValidity::parse(election.badge_validity_days),
    );
    let personal_data_retention = violations.check(
        "election.personal_data_retention_days",
        Retention::parse(election.personal_data_retention_days),
    );
    Some(ElectionFields {
        display_name: display_name?,
        host_country: host_country?,
        voting_day: voting_day?,
        accreditation_deadline,
        description: description?,
        decision_required: election.decision_required,
        badge_validity_days: badge_validity_days?,
        invitation_required: election.invitation_required,
        personal_data_retention: personal_data_retention?,
    })
}

/// Copies the masked fields of `changes` onto `current` (message form), so that the merged
/// election is parsed as a whole.
pub fn merge(
    current: &pb::Election,
    changes: &pb::Election,
    mask: &[ElectionField],
) -> pb::Election {
    let mut merged = current.clone();
    for field in mask {
        match field {
            ElectionField::DisplayName => merged.display_name.clone_from(&changes.display_name),
            ElectionField::HostCountry => merged.host_country.clone_from(&changes.host_country),
            ElectionField::VotingDay => merged.voting_day.clone_from(&changes.voting_day),
            ElectionField::AccreditationDeadline => {
                merged.accreditation_deadline = changes.accreditation_deadline
            }
            ElectionField::Description => merged.description.clone_from(&changes.description),
            ElectionField::DecisionRequired => merged.decision_required = changes.decision_required,
            ElectionField::BadgeValidityDays => {
                merged.badge_validity_days = changes.badge_validity_days
            }
            ElectionField::InvitationRequired => {
                merged.invitation_required = changes.invitation_required
            }
            ElectionField::PersonalDataRetentionDays => {
                merged.personal_data_retention_days = changes.personal_data_retention_days
            }
        }
    }
    merged
}

pub fn to_proto(election: &Election) -> pb::Election {
    pb::Election {
        name: election.name(),
        display_name: election.fields.display_name.clone(),
        host_country: election.fields.host_country.to_string(),
        voting_day: format_date(election.fields.voting_day),
        accreditation_deadline: election.fields.accreditation_deadline.map(to_timestamp),
        description: election.fields.description.clone(),
        create_time: Some(to_timestamp(election.create_time)),
        update_time: Some(to_timestamp(election.update_time)),
        etag: etag::format(election.etag),
        decision_required: election.fields.decision_required,
        badge_validity_days: election.fields.badge_validity_days.days(),
        invitation_required: election.fields.invitation_required,
        personal_data_retention_days: Some(election.fields.personal_data_retention.days()),
        personal_data_erase_time: election.personal_data_erase_time.map(to_timestamp),
    }
}

impl Resource for pb::Election {
    const MESSAGE: &'static str = "Election";

    fn name(&self) -> &str {
        &self.name
    }
}
