//! Follows the changes to an election's observers, and resumes where it stopped after a
//! restart of its own: the last resume token is kept in a file.
//!
//! Against a local service (`cargo run` at the workspace root; `cargo run -- demo` in another
//! terminal then makes changes to follow; no token needed on 127.0.0.1):
//!
//! ```sh
//! OBSERVER_REGISTRY_TOKEN=… cargo run -p observer-registry-client --example follow_observers \
//!     -- http://127.0.0.1:50051 elections/kz-2023 observers.resume
//! ```

use observer_registry_client::{Client, ClientOptions, ErrorDetails};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let election = args
        .next()
        .unwrap_or_else(|| "elections/kz-2023".to_owned());
    let token_file = args.next().unwrap_or_else(|| "observers.resume".to_owned());
    let options = ClientOptions {
        token: std::env::var("OBSERVER_REGISTRY_TOKEN").ok(),
        ..Default::default()
    };
    let client = Client::connect(server, options).await?;

    // No file yet: follow the changes from now on.
    let resume_token = std::fs::read_to_string(&token_file).unwrap_or_default();
    let mut feed = client.follow_observers(&election, resume_token.trim());
    loop {
        // The feed reconnects by itself; what it returns, a reconnection cannot fix.
        let event = match feed.next().await {
            Ok(event) => event,
            Err(status) => {
                eprintln!(
                    "the feed stopped: {:?} {}",
                    status.reason(),
                    status.message()
                );
                return Err(status.into());
            }
        };
        let name = event.observer.as_ref().map_or("", |o| o.name.as_str());
        println!("{:?}\t{name}", event.r#type());
        // Written after the event is handled: a crash before it replays the event, never
        // skips it.
        std::fs::write(&token_file, feed.resume_token())?;
    }
}
