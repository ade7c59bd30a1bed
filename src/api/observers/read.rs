//! Reads: GetObserver (coalesced point reads), ListObservers, ListPublicRegister and the
//! change feed. Personal data is cleared for callers without `personal-data-reader`.

use std::sync::Arc;

use super::ObserverApi;
use super::convert::{for_caller, into_proto, to_proto};
use crate::aip::paging::{ListRequest, Page};
use crate::api::{parse_parent, require_election, require_election_of_page, total_size};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::pb::v1 as pb;
use crate::store;
use crate::store::listing::KeptPage;

impl ObserverApi {
    pub(super) async fn get(
        &self,
        caller: &Caller,
        request: pb::GetObserverRequest,
    ) -> Result<pb::Observer> {
        let (election_id, id) = super::parse_name(&request.name, "name")?;
        let observer = self
            .state
            .point_reads
            .observer(election_id, id)
            .await?
            .ok_or_else(|| Error::not_found(&request.name))?;
        // Nearly always this call's alone (the keep holds copies, not the batch's observers):
        // its strings move into the message instead of being copied.
        Ok(for_caller(
            caller,
            into_proto(Arc::unwrap_or_clone(observer)),
        ))
    }

    pub(super) async fn list(
        &self,
        caller: &Caller,
        request: pb::ListObserversRequest,
    ) -> Result<pb::ListObserversResponse> {
        let election_id = parse_parent(&request.parent)?;
        let query = self.state.page_tokens.prepare(
            &store::observers::LIST_SPEC,
            &ListRequest {
                parent: &request.parent,
                page_size: request.page_size,
                page_token: &request.page_token,
                filter: &request.filter,
                order_by: &request.order_by,
                show_deleted: request.show_deleted,
                personal_data: caller.reads_personal_data(),
            },
        )?;
        // Everything that makes the statement: the same request of any caller is the same
        // page (personal data are cleared per caller below).
        let key = format!("{election_id}\0{query:?}");
        let kept = match self.state.observer_pages.get(&key) {
            Some(page) if self.state.point_reads.position(election_id).await? == page.position => {
                Some((page.rows, page.total))
            }
            _ => None,
        };
        let (rows, total) = match kept {
            // Shared with later calls: its observers are copied into the answer.
            Some((rows, total)) => ((*rows).clone(), total),
            None => {
                let mut conn = self.state.db.read().await?;
                let (rows, total, position) =
                    store::observers::list(&mut conn, election_id, &query, &self.state.list_counts)
                        .await?;
                require_election_of_page(&mut conn, election_id, rows.is_empty()).await?;
                if let Some(position) = position {
                    let page = KeptPage {
                        position,
                        rows: Arc::new(rows.clone()),
                        total,
                    };
                    self.state.observer_pages.keep(key, page);
                }
                (rows, total)
            }
        };
        let page = Page::from_rows(&self.state.page_tokens, &query, rows, total);
        Ok(pb::ListObserversResponse {
            observers: page
                .items
                .into_iter()
                .map(|o| for_caller(caller, into_proto(o)))
                .collect(),
            next_page_token: page.next_page_token,
            total_size: total_size(page.total_size),
        })
    }

    /// Accredited observers for the public portal: name, citizenship and sending body only.
    pub(super) async fn public_register(
        &self,
        request: pb::ListPublicRegisterRequest,
    ) -> Result<pb::ListPublicRegisterResponse> {
        let election_id = parse_parent(&request.parent)?;
        let query = self.state.page_tokens.prepare(
            &store::figures::PUBLIC_REGISTER_SPEC,
            &ListRequest {
                parent: &request.parent,
                page_size: request.page_size,
                page_token: &request.page_token,
                filter: &request.filter,
                ..Default::default()
            },
        )?;
        let mut conn = self.state.db.read().await?;
        require_election(&mut conn, election_id).await?;
        let (rows, total) = store::figures::public_register(&mut conn, election_id, &query).await?;
        let page = Page::from_rows(&self.state.page_tokens, &query, rows, total);
        Ok(pb::ListPublicRegisterResponse {
            entries: page
                .items
                .into_iter()
                .map(|entry| pb::PublicRegisterEntry {
                    given_name: entry.given_name,
                    family_name: entry.family_name,
                    citizenship: entry.citizenship,
                    organization: format!("organizations/{}", entry.organization_id),
                    organization_display_name: entry.organization_display_name,
                    accreditation_number: entry.accreditation_number.unwrap_or_default(),
                })
                .collect(),
            next_page_token: page.next_page_token,
            total_size: total_size(page.total_size),
        })
    }

    pub(super) async fn watch(
        &self,
        caller: Caller,
        request: pb::WatchObserversRequest,
    ) -> Result<tonic::codegen::BoxStream<pb::ObserverEvent>> {
        let election_id = parse_parent(&request.parent)?;
        let make_event: crate::api::watch::MakeEvent<pb::ObserverEvent> =
            Box::new(|caller, meta, row, resume_token| {
                let observer = store::observers::from_change_row(row)?;
                Ok(pb::ObserverEvent {
                    r#type: crate::api::watch::change_type(meta)?.into(),
                    observer: Some(for_caller(caller, to_proto(&observer))),
                    event_time: Some(crate::api::to_timestamp(meta.change_time)),
                    resume_token,
                })
            });
        self.state
            .watch(
                caller,
                store::observers::FEED,
                election_id,
                &request.resume_token,
                make_event,
            )
            .await
    }
}
