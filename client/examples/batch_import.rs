//! Imports observers from a tab-separated file with BatchCreateObservers, safe to run again:
//! each batch goes out under a `request_id` kept in a file beside the input, so a batch the
//! service already took — the program crashed, or the answer was lost — returns the observers
//! created the first time instead of registering them twice. Within one run the client also
//! repeats a batch by itself after UNAVAILABLE, under the same id.
//!
//! The input has one observer a line: `id`, given name, family name, citizenship (ISO 3166
//! alpha-2), organization id and travel document number, separated by tabs.
//!
//! Against a local service (`cargo run` at the workspace root, and `cargo run -- demo` for
//! the election and organizations; no token needed on 127.0.0.1):
//!
//! ```sh
//! printf 'li-wei\tWei\tLi\tCN\tsco\tE12345678\n' > observers.tsv
//! cargo run -p observer-registry-client --example batch_import \
//!     -- http://127.0.0.1:50051 elections/kz-2023 observers.tsv
//! ```
//!
//! The request ids go to `observers.tsv.request-ids`; delete it before importing a changed
//! file. The service remembers a request id for 48 hours.

use std::time::Duration;

use observer_registry_client::pb::v1::{
    BatchCreateObserversRequest, CreateObserverRequest, Observer,
};
use observer_registry_client::{Client, ClientOptions, ErrorDetails, ErrorReason};

/// The most entries the service takes in one batch.
const BATCH_SIZE: usize = 1000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let election = args
        .next()
        .unwrap_or_else(|| "elections/kz-2023".to_owned());
    let input = args.next().unwrap_or_else(|| "observers.tsv".to_owned());
    let options = ClientOptions {
        token: std::env::var("OBSERVER_REGISTRY_TOKEN").ok(),
        // A batch of 1000 takes longer than a read; retries stay within this deadline.
        timeout: Some(Duration::from_secs(120)),
        ..Default::default()
    };
    let client = Client::connect(server, options).await?;

    let entries = read_entries(&std::fs::read_to_string(&input)?)?;
    let batches: Vec<&[CreateObserverRequest]> = entries.chunks(BATCH_SIZE).collect();
    let request_ids = request_ids(&format!("{input}.request-ids"), batches.len())?;

    let mut observers = client.observers();
    for (number, (batch, request_id)) in batches.into_iter().zip(&request_ids).enumerate() {
        let request = BatchCreateObserversRequest {
            parent: election.clone(),
            requests: batch.to_vec(),
            request_id: request_id.clone(),
            validate_only: false,
        };
        match observers.batch_create_observers(request).await {
            Ok(response) => {
                let created = response.into_inner().observers;
                eprintln!("batch {}: {} observers", number + 1, created.len());
            }
            Err(status) if status.reason() == Some(ErrorReason::InvalidArgument) => {
                // The service checks every entry and names each bad field, so one run
                // lists every line to fix.
                eprintln!("batch {} refused, nothing of it registered:", number + 1);
                for violation in status.field_violations() {
                    // e.g. `requests[3].observer.citizenship`: the 4th entry of this batch.
                    eprintln!("  {}: {}", violation.field, violation.description);
                }
                return Err("fix the entries above and run again".into());
            }
            Err(status) => {
                return Err(format!(
                    "batch {} failed ({:?}, {}): run again to go on, under the same request ids",
                    number + 1,
                    status.reason(),
                    status.message()
                )
                .into());
            }
        }
    }
    Ok(())
}

/// One create request a line; blank lines are skipped.
fn read_entries(text: &str) -> Result<Vec<CreateObserverRequest>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
            let [
                id,
                given_name,
                family_name,
                citizenship,
                organization,
                document,
            ] = fields[..]
            else {
                return Err(format!("line {}: 6 tab-separated fields wanted", index + 1));
            };
            Ok(CreateObserverRequest {
                observer_id: id.to_owned(),
                observer: Some(Observer {
                    given_name: given_name.to_owned(),
                    family_name: family_name.to_owned(),
                    citizenship: citizenship.to_owned(),
                    organization: format!("organizations/{organization}"),
                    travel_document_number: document.to_owned(),
                    ..Default::default()
                }),
                // The batch's parent and request id apply to its entries.
                ..Default::default()
            })
        })
        .collect()
}

/// The request id of each of `count` batches: those kept in `path` by an earlier run, and
/// new ones for the rest, written to `path` before any batch is sent.
fn request_ids(path: &str, count: usize) -> std::io::Result<Vec<String>> {
    let mut ids: Vec<String> = match std::fs::read_to_string(path) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error),
    };
    if ids.len() < count {
        ids.resize_with(count, || uuid::Uuid::new_v4().to_string());
        std::fs::write(path, ids.join("\n") + "\n")?;
    }
    Ok(ids)
}
