//! A partner system's first program: connect with the agency's token and page through the
//! accredited observers of an election.
//!
//! Against a local service (`cargo run` at the workspace root, and `cargo run -- demo` for
//! the Astana 2023 data; no token needed on 127.0.0.1):
//!
//! ```sh
//! OBSERVER_REGISTRY_TOKEN=… cargo run -p observer-registry-client --example accredited_observers \
//!     -- http://127.0.0.1:50051 elections/kz-2023
//! ```

use observer_registry_client::pb::v1::ListObserversRequest;
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

    // The stream fetches page after page under the same filter, 500 observers a call.
    let mut observers = client.list_observers_stream(ListObserversRequest {
        parent: election.clone(),
        filter: "accreditation.state = ACCREDITED".to_owned(),
        page_size: 500,
        ..Default::default()
    });
    let mut count = 0;
    while let Some(observer) = observers.next().await {
        let observer = observer?;
        let number = observer
            .accreditation
            .as_ref()
            .map_or("", |a| a.number.as_str());
        println!(
            "{number}\t{} {}\t{}",
            observer.given_name, observer.family_name, observer.citizenship
        );
        count += 1;
    }
    eprintln!("{count} accredited observers in {election}");
    Ok(())
}
