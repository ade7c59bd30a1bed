//! Reads why the service refused a call: the `ErrorReason` every error carries, and the field
//! violations of an INVALID_ARGUMENT. It makes three calls that fail — a registration with
//! bad fields (so nothing is written), a list with a bad filter, a read of a missing
//! observer — and explains each refusal.
//!
//! Against a local service (`cargo run` at the workspace root, and `cargo run -- demo` for
//! the Astana 2023 data; no token needed on 127.0.0.1):
//!
//! ```sh
//! cargo run -p observer-registry-client --example error_reasons -- http://127.0.0.1:50051 elections/kz-2023
//! ```

use observer_registry_client::pb::v1::{
    CreateObserverRequest, GetObserverRequest, ListObserversRequest, Observer,
};
use observer_registry_client::tonic::{Code, Status};
use observer_registry_client::{Client, ClientOptions, ErrorDetails, ErrorReason};

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

    println!("registering an observer with bad fields:");
    let refused = client
        .observers()
        .create_observer(CreateObserverRequest {
            parent: election.clone(),
            observer_id: "Not an id!".to_owned(),
            observer: Some(Observer {
                given_name: "Ann".to_owned(),
                // No family name, a citizenship that is no ISO 3166 code, no document.
                citizenship: "XX".to_owned(),
                organization: "organizations/sco".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    report(refused.map(|_| ()));

    println!("\nlisting with a filter on a field that cannot be filtered:");
    let mut listed = client.list_observers_stream(ListObserversRequest {
        parent: election.clone(),
        filter: "notes = \"x\"".to_owned(),
        ..Default::default()
    });
    // A paginator yields a refused page as its error.
    report(listed.next().await.transpose().map(|_| ()));

    println!("\nreading an observer that does not exist:");
    let missing = client
        .observers()
        .get_observer(GetObserverRequest {
            name: format!("{election}/observers/nobody"),
        })
        .await;
    report(missing.map(|_| ()));
    Ok(())
}

fn report(result: Result<(), Status>) {
    match result {
        Ok(()) => println!("  accepted"),
        Err(status) => explain(&status),
    }
}

/// What a partner system does with each reason: fix the input, read again, or give up.
fn explain(status: &Status) {
    match status.reason() {
        Some(ErrorReason::InvalidArgument) => {
            // One violation per bad field, its path as in the request.
            println!("  bad input:");
            for violation in status.field_violations() {
                println!("    {}: {}", violation.field, violation.description);
            }
        }
        Some(ErrorReason::InvalidFilter) => println!("  fix the filter: {}", status.message()),
        Some(ErrorReason::NotFound) => println!("  no such resource: {}", status.message()),
        // Someone changed the resource since it was read: read it again, then retry.
        Some(ErrorReason::EtagMismatch) => println!("  stale: read it again"),
        Some(ErrorReason::Unauthenticated | ErrorReason::PermissionDenied) => {
            println!("  check OBSERVER_REGISTRY_TOKEN: {}", status.message())
        }
        Some(reason) => println!("  refused ({reason}): {}", status.message()),
        // No ErrorInfo: the status came from the transport or a proxy.
        None if status.code() == Code::Unavailable => println!("  unreachable: retry later"),
        None => println!("  {:?}: {}", status.code(), status.message()),
    }
}
