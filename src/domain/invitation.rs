//! Invitations of the host state to send observers, and their rules: the state machine
//! (`SENT → ACCEPTED | DECLINED | WITHDRAWN`, `ACCEPTED → WITHDRAWN`), a reply not before the
//! letter, a bounded number of observers, changes only while SENT, and NOT_INVITED — only an
//! organization with an ACCEPTED invitation sends observers where the election requires it.
//! PostgreSQL holds each again (migrations/20261201000100_invitations.sql).

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::date::format_date;
use super::refusal::{Refusal, Rule};
use super::text::{self, TextKind};

/// The most observers one organization says it sends: above any mission ever sent (the
/// largest OSCE/ODIHR missions count under a thousand), low enough to catch a typo of
/// digits. PostgreSQL: `invitations_expected_observers_range`.
pub const MAX_EXPECTED_OBSERVERS: i32 = 10_000;

/// Why an organization declined: it need not say.
pub const DECLINE_REASON: TextKind = TextKind {
    required: false,
    ..text::REASON
};

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationState {
    Sent,
    Accepted,
    Declined,
    Withdrawn,
}

impl InvitationState {
    /// The stored (and filter) names, in the order of [`InvitationState::ALL`].
    pub const NAMES: &[&str] = &["SENT", "ACCEPTED", "DECLINED", "WITHDRAWN"];
    pub const ALL: [InvitationState; 4] = [
        InvitationState::Sent,
        InvitationState::Accepted,
        InvitationState::Declined,
        InvitationState::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvitationState::Sent => "SENT",
            InvitationState::Accepted => "ACCEPTED",
            InvitationState::Declined => "DECLINED",
            InvitationState::Withdrawn => "WITHDRAWN",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// Whether the machine goes from `self` to `to`.
    pub fn can_become(self, to: InvitationState) -> bool {
        use InvitationState::*;
        matches!(
            (self, to),
            (Sent, Accepted | Declined | Withdrawn) | (Accepted, Withdrawn)
        )
    }
}

/// The fields of an invitation a caller sets, validated: what the letter says.
#[derive(Debug, Clone, PartialEq)]
pub struct InvitationFields {
    pub organization_id: String,
    pub send_date: NaiveDate,
    pub reference: String,
    pub notes: String,
}

/// A stored invitation.
#[derive(Debug, Clone, PartialEq)]
pub struct Invitation {
    pub election_id: String,
    pub id: String,
    pub fields: InvitationFields,
    pub state: InvitationState,
    pub reply_date: Option<NaiveDate>,
    pub expected_observers: i32,
    pub reason: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub etag: Uuid,
}

impl Invitation {
    pub fn name(&self) -> String {
        invitation_name(&self.election_id, &self.id)
    }
}

pub fn invitation_name(election_id: &str, id: &str) -> String {
    format!("elections/{election_id}/invitations/{id}")
}

/// The number of observers of an acceptance: 0 to [`MAX_EXPECTED_OBSERVERS`].
pub fn parse_expected_observers(value: i32) -> Result<i32, String> {
    if (0..=MAX_EXPECTED_OBSERVERS).contains(&value) {
        Ok(value)
    } else {
        Err(format!("must be 0 to {MAX_EXPECTED_OBSERVERS}"))
    }
}

/// What the protocol office records of a reply or a withdrawal, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Accept {
        reply_date: NaiveDate,
        expected_observers: i32,
    },
    Decline {
        reply_date: NaiveDate,
        reason: String,
    },
    Withdraw {
        reason: String,
    },
}

impl Answer {
    pub fn target(&self) -> InvitationState {
        match self {
            Answer::Accept { .. } => InvitationState::Accepted,
            Answer::Decline { .. } => InvitationState::Declined,
            Answer::Withdraw { .. } => InvitationState::Withdrawn,
        }
    }
}

/// An invitation's new state and what is recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: InvitationState,
    pub reply_date: Option<NaiveDate>,
    pub expected_observers: i32,
    pub reason: String,
}

/// Decides `answer` for `invitation`: a transition of the machine
/// (INVALID_STATE_TRANSITION otherwise), with a reply not dated before the letter
/// (INVALID_ARGUMENT on `reply_date`). A withdrawal keeps the reply on record.
pub fn answer(invitation: &Invitation, answer: Answer) -> Result<Outcome, Refusal> {
    let target = answer.target();
    if !invitation.state.can_become(target) {
        return Err(Refusal::new(
            Rule::InvalidStateTransition,
            format!(
                "{} is {}; it cannot become {}",
                invitation.name(),
                invitation.state.as_str(),
                target.as_str()
            ),
        )
        .metadata("state", invitation.state.as_str()));
    }
    let reply_not_before_letter = |reply_date: NaiveDate| {
        if reply_date >= invitation.fields.send_date {
            return Ok(Some(reply_date));
        }
        let why = format!(
            "must not be before the invitation's send_date {}",
            format_date(invitation.fields.send_date)
        );
        Err(
            Refusal::new(Rule::InvalidArgument, format!("reply_date: {why}"))
                .field("reply_date", why),
        )
    };
    Ok(match answer {
        Answer::Accept {
            reply_date,
            expected_observers,
        } => Outcome {
            state: target,
            reply_date: reply_not_before_letter(reply_date)?,
            expected_observers,
            reason: String::new(),
        },
        Answer::Decline { reply_date, reason } => Outcome {
            state: target,
            reply_date: reply_not_before_letter(reply_date)?,
            expected_observers: 0,
            reason,
        },
        Answer::Withdraw { reason } => Outcome {
            state: target,
            reply_date: invitation.reply_date,
            expected_observers: invitation.expected_observers,
            reason,
        },
    })
}

/// What the letter says is changed, or the invitation deleted, only while no reply is on
/// record (SENT); after that it is history, and a withdrawal is the way out.
pub fn check_changeable(invitation: &Invitation, change: &str) -> Result<(), Refusal> {
    if invitation.state == InvitationState::Sent {
        return Ok(());
    }
    Err(Refusal::new(
        Rule::InvalidStateTransition,
        format!(
            "{} is {}: only a SENT invitation is {change}",
            invitation.name(),
            invitation.state.as_str()
        ),
    )
    .metadata("state", invitation.state.as_str()))
}

/// One organization a request names where NOT_INVITED applies: the request field that names
/// it (`observer.organization`, `requests[2].observer.organization`, `names[0]`) and its id.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub at: &'a str,
    pub organization_id: &'a str,
}

/// NOT_INVITED: when the election requires invitations, every sender's organization has an
/// ACCEPTED invitation (`accepted`, the organizations that do). A refusal names every field
/// at fault, and the first organization in its metadata.
pub fn check_invited(
    required: bool,
    accepted: &HashSet<String>,
    senders: &[Sender<'_>],
) -> Result<(), Refusal> {
    if !required {
        return Ok(());
    }
    let uninvited: Vec<&Sender> = senders
        .iter()
        .filter(|s| !accepted.contains(s.organization_id))
        .collect();
    let Some(first) = uninvited.first() else {
        return Ok(());
    };
    let refusal = Refusal::new(
        Rule::NotInvited,
        format!(
            "organizations/{} has no accepted invitation to this election, which requires one",
            first.organization_id
        ),
    )
    .metadata(
        "organization",
        format!("organizations/{}", first.organization_id),
    );
    Err(uninvited.iter().fold(refusal, |refusal, s| {
        refusal.field(
            s.at,
            format!(
                "organizations/{} has no accepted invitation",
                s.organization_id
            ),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        crate::domain::date::parse_date(text).unwrap()
    }

    fn invitation(state: InvitationState) -> Invitation {
        Invitation {
            election_id: "kz".into(),
            id: "odihr".into(),
            fields: InvitationFields {
                organization_id: "osce-odihr".into(),
                send_date: day("2023-01-20"),
                reference: "No. 12-3/1456".into(),
                notes: String::new(),
            },
            state,
            reply_date: None,
            expected_observers: 0,
            reason: String::new(),
            create_time: Utc::now(),
            update_time: Utc::now(),
            etag: Uuid::nil(),
        }
    }

    fn accept(on: &str, observers: i32) -> Answer {
        Answer::Accept {
            reply_date: day(on),
            expected_observers: observers,
        }
    }

    #[test]
    fn the_machine_goes_from_sent_to_a_reply_and_from_accepted_to_withdrawn_only() {
        use InvitationState::*;
        let allowed: Vec<_> = InvitationState::ALL
            .into_iter()
            .flat_map(|from| InvitationState::ALL.map(|to| (from, to)))
            .filter(|(from, to)| from.can_become(*to))
            .collect();
        assert_eq!(
            allowed,
            [
                (Sent, Accepted),
                (Sent, Declined),
                (Sent, Withdrawn),
                (Accepted, Withdrawn)
            ]
        );
        for state in InvitationState::ALL {
            assert_eq!(InvitationState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn an_acceptance_records_the_reply_and_a_withdrawal_keeps_it() {
        let accepted = answer(
            &invitation(InvitationState::Sent),
            accept("2023-02-01", 300),
        )
        .unwrap();
        assert_eq!(accepted.state, InvitationState::Accepted);
        assert_eq!(accepted.reply_date, Some(day("2023-02-01")));
        assert_eq!(accepted.expected_observers, 300);

        let current = Invitation {
            state: InvitationState::Accepted,
            reply_date: accepted.reply_date,
            expected_observers: 300,
            ..invitation(InvitationState::Sent)
        };
        let withdrawn = answer(
            &current,
            Answer::Withdraw {
                reason: "the mission was called off".into(),
            },
        )
        .unwrap();
        assert_eq!(withdrawn.state, InvitationState::Withdrawn);
        assert_eq!(withdrawn.reply_date, Some(day("2023-02-01")));
        assert_eq!(withdrawn.reason, "the mission was called off");
    }

    #[test]
    fn refused_transitions_name_the_current_state() {
        for (state, answer_given) in [
            (InvitationState::Accepted, accept("2023-02-01", 1)),
            (
                InvitationState::Declined,
                Answer::Withdraw { reason: "r".into() },
            ),
            (
                InvitationState::Withdrawn,
                Answer::Decline {
                    reply_date: day("2023-02-01"),
                    reason: String::new(),
                },
            ),
        ] {
            let refusal = answer(&invitation(state), answer_given).unwrap_err();
            assert_eq!(refusal.rule, Rule::InvalidStateTransition);
            assert_eq!(refusal.metadata, [("state", state.as_str().to_owned())]);
        }
    }

    #[test]
    fn a_reply_is_not_dated_before_the_letter() {
        let refusal =
            answer(&invitation(InvitationState::Sent), accept("2023-01-19", 1)).unwrap_err();
        assert_eq!(refusal.rule, Rule::InvalidArgument);
        assert_eq!(refusal.fields[0].0, "reply_date");
        // The same day is a reply.
        assert!(answer(&invitation(InvitationState::Sent), accept("2023-01-20", 1)).is_ok());
    }

    #[test]
    fn expected_observers_are_bounded() {
        assert_eq!(parse_expected_observers(0), Ok(0));
        assert_eq!(parse_expected_observers(10_000), Ok(10_000));
        assert!(parse_expected_observers(-1).is_err());
        assert!(parse_expected_observers(10_001).is_err());
    }

    #[test]
    fn only_a_sent_invitation_changes() {
        assert!(check_changeable(&invitation(InvitationState::Sent), "updated").is_ok());
        let refusal =
            check_changeable(&invitation(InvitationState::Accepted), "deleted").unwrap_err();
        assert_eq!(refusal.rule, Rule::InvalidStateTransition);
    }

    #[test]
    fn not_invited_names_every_sender_without_an_accepted_invitation() {
        let accepted: HashSet<String> = ["osce-odihr".to_owned()].into();
        let senders = [
            Sender {
                at: "requests[0].observer.organization",
                organization_id: "osce-odihr",
            },
            Sender {
                at: "requests[1].observer.organization",
                organization_id: "cis",
            },
            Sender {
                at: "requests[2].observer.organization",
                organization_id: "sco",
            },
        ];
        let refusal = check_invited(true, &accepted, &senders).unwrap_err();
        assert_eq!(refusal.rule, Rule::NotInvited);
        let fields: Vec<_> = refusal.fields.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "requests[1].observer.organization",
                "requests[2].observer.organization"
            ]
        );
        assert_eq!(
            refusal.metadata,
            [("organization", "organizations/cis".to_owned())]
        );
        // Not required: nobody is refused.
        assert!(check_invited(false, &HashSet::new(), &senders).is_ok());
        assert!(check_invited(true, &accepted, &senders[..1]).is_ok());
    }
}
