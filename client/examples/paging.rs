//! Pages through lists with the client's paginators: each `list_*_stream` call is a `Stream`
//! of items that fetches page after page under the request's filter, order and page size,
//! so `futures`' combinators (collect, fold, take) work on a whole list.
//!
//! Against a local service (`cargo run` at the workspace root, and `cargo run -- demo` for
//! the Astana 2023 data; no token needed on 127.0.0.1):
//!
//! ```sh
//! cargo run -p observer-registry-client --example paging -- http://127.0.0.1:50051 elections/kz-2023
//! ```

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use observer_registry_client::pb::v1::{
    Delegation, ListAuditEventsRequest, ListDelegationsRequest, ListObserversRequest,
};
use observer_registry_client::{Client, ClientOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let election = args
        .next()
        .unwrap_or_else(|| "elections/kz-2023".to_owned());
    let options = ClientOptions {
        token: std::env::var("OBSERVER_REGISTRY_TOKEN").ok(),
        ..Default::default()
    };
    let client = Client::connect(server, options).await?;

    // Every delegation, by name: the order holds across pages. The first failed page ends
    // the collection with its error.
    let delegations: Vec<Delegation> = client
        .list_delegations_stream(ListDelegationsRequest {
            parent: election.clone(),
            order_by: "display_name".to_owned(),
            page_size: 100,
            ..Default::default()
        })
        .try_collect()
        .await?;
    println!("{} delegations", delegations.len());
    for delegation in &delegations {
        println!(
            "{:>5}  {}",
            delegation.member_count, delegation.display_name
        );
    }

    // A tally over every observer, holding one page (1000 observers) at a time.
    let by_citizenship = client
        .list_observers_stream(ListObserversRequest {
            parent: election.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .try_fold(BTreeMap::new(), |mut tally, observer| async move {
            *tally.entry(observer.citizenship).or_insert(0) += 1;
            Ok(tally)
        })
        .await?;
    println!("\nobservers by citizenship");
    for (citizenship, count) in by_citizenship {
        println!("{count:>5}  {citizenship}");
    }

    // The ten latest changes: `take` stops reading after them, so no second page is asked
    // for.
    println!("\nlatest changes");
    let mut latest = client
        .list_audit_events_stream(ListAuditEventsRequest {
            parent: election,
            order_by: "event_time desc".to_owned(),
            page_size: 10,
            ..Default::default()
        })
        .take(10);
    while let Some(event) = latest.next().await {
        let event = event?;
        let time = event
            .event_time
            .map(|time| time.to_string())
            .unwrap_or_default();
        println!(
            "{time}  {}  {}  {}",
            event.actor, event.method, event.resource
        );
    }
    Ok(())
}
