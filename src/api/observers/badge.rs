//! GetObserverBadge: parse → load the observer, its election and organization (one read
//! snapshot) → decide what the badge says (`domain::badge::claims`) → sign and draw the card.
//! A read: no audit event, no feed event.

use super::ObserverApi;
use crate::api::require_election;
use crate::badge::card::{self, Card};
use crate::domain::badge;
use crate::error::{Error, Reason, Result};
use crate::pb::v1 as pb;
use crate::store;

impl ObserverApi {
    pub(super) async fn badge(
        &self,
        request: pb::GetObserverBadgeRequest,
    ) -> Result<pb::ObserverBadge> {
        let name = &request.name;
        let (election_id, id) = super::parse_name(name, "name")?;
        let mut tx = self.state.db.read().await?;
        let observer = store::observers::get(&mut tx, election_id, id, false)
            .await?
            .filter(|o| o.delete_time.is_none())
            .ok_or_else(|| Error::not_found(name))?;
        let election = require_election(&mut tx, election_id).await?;
        // The observer's foreign key keeps its organization: none missing but by corruption.
        let organization =
            store::organizations::get(&mut tx, &observer.fields.organization_id, false)
                .await?
                .ok_or_else(|| {
                    Error::internal(anyhow::anyhow!(
                        "{name} refers to a missing organization {}",
                        observer.fields.organization_id
                    ))
                })?;
        drop(tx);

        let claims = badge::claims(&observer, &election, &organization.fields.display_name)?;
        let badges = &self.state.badges;
        let signer = badges.keyring.signer().ok_or_else(|| {
            Error::precondition(
                Reason::BadgeSigningDisabled,
                "the service has no badge signing key (--badge-signing-key)",
            )
        })?;
        // Signing and drawing the QR code (its mask selection) take milliseconds of CPU:
        // off the runtime's workers, so other calls are not held up meanwhile.
        let (token, svg) = {
            let (badges, claims) = (badges.clone(), claims.clone());
            let display_name = election.fields.display_name.clone();
            tokio::task::spawn_blocking(move || {
                let signer = badges.keyring.signer()?;
                let token = signer.sign(&claims);
                let svg = card::render(&Card {
                    election_display_name: &display_name,
                    claims: &claims,
                    qr_payload: &badges.qr_payload(&token),
                });
                Some((token, svg))
            })
            .await
            .map_err(|e| Error::internal(anyhow::anyhow!("drawing a badge failed: {e}")))?
            .ok_or_else(|| Error::internal(anyhow::anyhow!("the badge signing key vanished")))?
        };
        let svg = svg.map_err(|e| Error::internal(anyhow::Error::new(e).context(name.clone())))?;
        tracing::debug!(observer = %name, key_id = %signer.public().key_id, "badge made");
        Ok(pb::ObserverBadge {
            observer: name.clone(),
            accreditation_number: claims.accreditation_number.clone(),
            key_id: signer.public().key_id.clone(),
            expire_time: Some(prost_types::Timestamp {
                seconds: claims.expire_unix_seconds,
                nanos: 0,
            }),
            token,
            svg,
        })
    }
}
