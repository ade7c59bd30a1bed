//! Invitations between the contract and the domain: requests parsed into validated fields
//! (every bad field named at once), update masks as fields, and invitations encoded back.

use crate::aip::etag;
use crate::aip::field_mask::UpdatableField;
use crate::api::skeleton::Resource;
use crate::api::{optional_date, to_timestamp};
use crate::domain::date::format_date;
use crate::domain::invitation::{
    self, Answer, DECLINE_REASON, Invitation, InvitationFields, InvitationState,
};
use crate::domain::names;
use crate::domain::text::{LABEL, NOTE, REASON};
use crate::error::{Error, Result, Violations};
use crate::pb::v1 as pb;

/// Fields an update may not name: the server sets them, or they name the resource.
pub const OUTPUT_ONLY: &[&str] = &[
    "name",
    "state",
    "reply_date",
    "expected_observers",
    "reason",
    "create_time",
    "update_time",
    "etag",
];

/// The fields of an invitation an update may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationField {
    Organization,
    SendDate,
    Reference,
    Notes,
}

impl UpdatableField for InvitationField {
    const ALL: &'static [Self] = &[
        InvitationField::Organization,
        InvitationField::SendDate,
        InvitationField::Reference,
        InvitationField::Notes,
    ];

    fn path(self) -> &'static str {
        match self {
            InvitationField::Organization => "organization",
            InvitationField::SendDate => "send_date",
            InvitationField::Reference => "reference",
            InvitationField::Notes => "notes",
        }
    }
}

impl InvitationField {
    /// Copies this field from `changes` into `merged`.
    pub fn apply(self, merged: &mut pb::Invitation, changes: &pb::Invitation) {
        match self {
            InvitationField::Organization => merged.organization.clone_from(&changes.organization),
            InvitationField::SendDate => merged.send_date.clone_from(&changes.send_date),
            InvitationField::Reference => merged.reference.clone_from(&changes.reference),
            InvitationField::Notes => merged.notes.clone_from(&changes.notes),
        }
    }
}

impl Resource for pb::Invitation {
    const MESSAGE: &'static str = "Invitation";
    fn name(&self) -> &str {
        &self.name
    }
}

/// `elections/{election}/invitations/{invitation}` as its two ids; INVALID_ARGUMENT on
/// `field`.
pub fn parse_name<'a>(name: &'a str, field: &str) -> Result<(&'a str, &'a str)> {
    names::parse_child(name, "elections", "invitations").map_err(|e| Error::invalid(field, e))
}

/// The caller-set fields of an invitation, recording every bad one.
pub fn parse_fields(
    invitation: &pb::Invitation,
    violations: &mut Violations,
) -> Option<InvitationFields> {
    let organization_id = if invitation.organization.is_empty() {
        violations.add("invitation.organization", "is required");
        None
    } else {
        violations.check(
            "invitation.organization",
            names::parse_top_level(&invitation.organization, "organizations"),
        )
    };
    let send_date = if invitation.send_date.is_empty() {
        violations.add("invitation.send_date", "is required");
        None
    } else {
        optional_date(violations, "invitation.send_date", &invitation.send_date)
    };
    let reference = violations.check("invitation.reference", LABEL.parse(&invitation.reference));
    let notes = violations.check("invitation.notes", NOTE.parse(&invitation.notes));
    Some(InvitationFields {
        organization_id: organization_id?.to_owned(),
        send_date: send_date?,
        reference: reference?,
        notes: notes?,
    })
}

/// The invitation's fields with the masked ones taken from `changes`, parsed again as a
/// whole (an update must leave a valid invitation behind).
pub fn merge(
    current: &Invitation,
    changes: &pb::Invitation,
    masked: &[InvitationField],
) -> Result<InvitationFields> {
    let mut merged = to_proto(current);
    for field in masked {
        field.apply(&mut merged, changes);
    }
    let mut violations = Violations::new();
    let fields = parse_fields(&merged, &mut violations);
    violations.finish()?;
    fields.ok_or_else(|| Error::internal(anyhow::anyhow!("validation passed without values")))
}

/// A required reply date.
fn reply_date(value: &str, violations: &mut Violations) -> Option<chrono::NaiveDate> {
    if value.is_empty() {
        violations.add("reply_date", "is required");
        return None;
    }
    optional_date(violations, "reply_date", value)
}

/// AcceptInvitation's reply, every bad field named.
pub fn parse_accept(request: &pb::AcceptInvitationRequest) -> Result<Answer> {
    let mut violations = Violations::new();
    let reply_date = reply_date(&request.reply_date, &mut violations);
    let expected_observers = violations.check(
        "expected_observers",
        invitation::parse_expected_observers(request.expected_observers),
    );
    violations.finish()?;
    match (reply_date, expected_observers) {
        (Some(reply_date), Some(expected_observers)) => Ok(Answer::Accept {
            reply_date,
            expected_observers,
        }),
        _ => Err(Error::internal(anyhow::anyhow!(
            "validation passed without values"
        ))),
    }
}

/// DeclineInvitation's reply, every bad field named.
pub fn parse_decline(request: &pb::DeclineInvitationRequest) -> Result<Answer> {
    let mut violations = Violations::new();
    let reply_date = reply_date(&request.reply_date, &mut violations);
    let reason = violations.check("reason", DECLINE_REASON.parse(&request.reason));
    violations.finish()?;
    match (reply_date, reason) {
        (Some(reply_date), Some(reason)) => Ok(Answer::Decline { reply_date, reason }),
        _ => Err(Error::internal(anyhow::anyhow!(
            "validation passed without values"
        ))),
    }
}

/// WithdrawInvitation's reason.
pub fn parse_withdraw(request: &pb::WithdrawInvitationRequest) -> Result<Answer> {
    let reason = REASON
        .parse(&request.reason)
        .map_err(|e| Error::invalid("reason", e.to_string()))?;
    Ok(Answer::Withdraw { reason })
}

pub fn state_to_proto(state: InvitationState) -> pb::InvitationState {
    match state {
        InvitationState::Sent => pb::InvitationState::Sent,
        InvitationState::Accepted => pb::InvitationState::Accepted,
        InvitationState::Declined => pb::InvitationState::Declined,
        InvitationState::Withdrawn => pb::InvitationState::Withdrawn,
    }
}

pub fn to_proto(invitation: &Invitation) -> pb::Invitation {
    pb::Invitation {
        name: invitation.name(),
        organization: format!("organizations/{}", invitation.fields.organization_id),
        send_date: format_date(invitation.fields.send_date),
        reference: invitation.fields.reference.clone(),
        state: state_to_proto(invitation.state).into(),
        reply_date: invitation.reply_date.map(format_date).unwrap_or_default(),
        expected_observers: invitation.expected_observers,
        notes: invitation.fields.notes.clone(),
        reason: invitation.reason.clone(),
        create_time: Some(to_timestamp(invitation.create_time)),
        update_time: Some(to_timestamp(invitation.update_time)),
        etag: etag::format(invitation.etag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aip::field_mask::resolve_fields;

    fn valid() -> pb::Invitation {
        pb::Invitation {
            organization: "organizations/osce-odihr".into(),
            send_date: "2023-01-20".into(),
            ..Default::default()
        }
    }

    fn refused_fields(invitation: &pb::Invitation) -> Vec<String> {
        let mut violations = Violations::new();
        let _ = parse_fields(invitation, &mut violations);
        violations
            .finish()
            .unwrap_err()
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn an_empty_mask_updates_every_field_of_the_contract() {
        let all: Vec<InvitationField> = resolve_fields(None, OUTPUT_ONLY).unwrap();
        let paths: Vec<_> = all.iter().map(|f| f.path()).collect();
        assert_eq!(paths, ["organization", "send_date", "reference", "notes"]);
        let mask = prost_types::FieldMask {
            paths: vec!["expectedObservers".into()],
        };
        assert!(resolve_fields::<InvitationField>(Some(&mask), OUTPUT_ONLY).is_err());
    }

    #[test]
    fn every_state_has_its_contract_value() {
        for state in InvitationState::ALL {
            assert_eq!(state_to_proto(state).as_str_name(), state.as_str());
        }
    }

    #[test]
    fn organization_and_send_date_are_required_and_text_is_checked() {
        let mut violations = Violations::new();
        let fields = parse_fields(
            &pb::Invitation {
                reference: " No. 12-3/1456 ".into(),
                ..valid()
            },
            &mut violations,
        )
        .unwrap();
        assert!(violations.is_empty());
        assert_eq!(fields.reference, "No. 12-3/1456");
        assert_eq!(
            refused_fields(&pb::Invitation::default()),
            ["invitation.organization", "invitation.send_date"]
        );
        let bad = pb::Invitation {
            send_date: "2023-02-30".into(),
            reference: "line\none".into(),
            notes: "bell\u{7}".into(),
            ..valid()
        };
        assert_eq!(
            refused_fields(&bad),
            [
                "invitation.send_date",
                "invitation.reference",
                "invitation.notes"
            ]
        );
    }

    #[test]
    fn replies_name_each_bad_field() {
        let error = parse_accept(&pb::AcceptInvitationRequest {
            reply_date: String::new(),
            expected_observers: -1,
            ..Default::default()
        })
        .unwrap_err();
        let fields: Vec<_> = error.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["reply_date", "expected_observers"]);
        let declined = parse_decline(&pb::DeclineInvitationRequest {
            reply_date: "2023-02-01".into(),
            ..Default::default()
        })
        .unwrap();
        assert!(matches!(declined, Answer::Decline { reason, .. } if reason.is_empty()));
        let error = parse_withdraw(&pb::WithdrawInvitationRequest::default()).unwrap_err();
        assert_eq!(error.violations[0].field, "reason");
    }
}
