//! The invitations: before any observer comes, the host state invites each of the story's
//! organizations and records its acceptance; the election then admits observers of invited
//! organizations only (`invitation_required`).

use super::calls::{failed, get_or_create, request_id};
use super::{Demo, story};
use crate::pb::v1 as pb;

/// Said on every invitation, because the article names no letters.
const NOTES: &str = "Dates and reference illustrative: the Kazinform article of 18 March 2023 \
                     names no invitations.";

impl Demo {
    /// Invites each organization and records its acceptance, unless recorded already.
    pub(super) async fn invitations(&mut self) -> anyhow::Result<()> {
        for plan in story::invitations() {
            let invitation = self.invitation(&plan).await?;
            match invitation.state() {
                pb::InvitationState::Sent => {
                    self.accept(&plan, invitation).await?;
                    self.report.accepted.created += 1;
                }
                pb::InvitationState::Accepted => self.report.accepted.present += 1,
                other => self.report.warn(format!(
                    "{} is {}; left as it is, so its observers are refused (NOT_INVITED)",
                    invitation.name,
                    other.as_str_name()
                )),
            }
        }
        Ok(())
    }

    async fn invitation(&mut self, plan: &story::Invitation) -> anyhow::Result<pb::Invitation> {
        let name = format!("{}/invitations/{}", story::ELECTION, plan.organization);
        let mut request = pb::CreateInvitationRequest {
            parent: story::ELECTION.to_owned(),
            invitation_id: plan.organization.to_owned(),
            invitation: Some(pb::Invitation {
                organization: format!("organizations/{}", plan.organization),
                send_date: plan.send_date.clone(),
                reference: plan.reference.clone(),
                notes: NOTES.to_owned(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        request.request_id = request_id("CreateInvitation", &request);
        let client = &self.invitations;
        let (invitation, outcome) = get_or_create(
            &name,
            || {
                let (mut client, name) = (client.clone(), name.clone());
                async move {
                    client
                        .get_invitation(pb::GetInvitationRequest { name })
                        .await
                }
            },
            || {
                let mut client = client.clone();
                async move { client.create_invitation(request).await }
            },
        )
        .await?;
        self.report.invitations.add(outcome);
        Ok(invitation)
    }

    async fn accept(
        &mut self,
        plan: &story::Invitation,
        invitation: pb::Invitation,
    ) -> anyhow::Result<pb::Invitation> {
        let name = invitation.name.clone();
        let accepted = self
            .invitations
            .accept_invitation(pb::AcceptInvitationRequest {
                name: invitation.name,
                reply_date: plan.reply_date.clone(),
                expected_observers: plan.expected_observers,
                etag: invitation.etag,
            })
            .await
            .map_err(|status| failed(&format!("accepting {name}"), status))?;
        Ok(accepted.into_inner())
    }

    /// Makes the election admit observers of invited organizations only, unless it does
    /// (an election an earlier version of the demo created).
    pub(super) async fn require_invitations(
        &mut self,
        election: pb::Election,
    ) -> anyhow::Result<pb::Election> {
        if election.invitation_required {
            return Ok(election);
        }
        let changed = pb::Election {
            invitation_required: true,
            ..election
        };
        let updated = self.update_election(changed, "invitation_required").await?;
        self.report.invitations_required = true;
        Ok(updated)
    }
}
