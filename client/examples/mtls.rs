//! Connects over TLS with everything a partner's production setup may need: the CA that
//! signed the registry's certificate, the agency's client certificate and key (mutual TLS),
//! and a bearer token. Either credential alone identifies the agency; with both, the token
//! wins. It lists the elections the agency can see, and says which certificate is wrong when
//! the handshake fails.
//!
//! Against a local service with TLS (certificates of your own CA, the agency named by a DNS
//! name of its certificate in `agencies.toml`: see "Authentication" in the README at the
//! workspace root):
//!
//! ```sh
//! cargo run -- --identities agencies.toml \
//!     --tls-cert server.pem --tls-key server.key --tls-client-ca agencies-ca.pem
//! REGISTRY_CA=ca.pem AGENCY_CERT=mfa.pem AGENCY_KEY=mfa.key OBSERVER_REGISTRY_TOKEN=… \
//!     cargo run -p observer-registry-client --example mtls -- https://localhost:50051
//! ```

use std::time::Duration;

use observer_registry_client::pb::v1::ListElectionsRequest;
use observer_registry_client::{Client, ClientOptions, TlsFailure};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "https://localhost:50051".to_owned());
    let file = |variable: &str| -> Result<Option<Vec<u8>>, Box<dyn std::error::Error>> {
        match std::env::var(variable) {
            Ok(path) => Ok(Some(
                std::fs::read(&path).map_err(|error| format!("{variable}={path}: {error}"))?,
            )),
            Err(_) => Ok(None),
        }
    };
    let client_identity_pem = match (file("AGENCY_CERT")?, file("AGENCY_KEY")?) {
        (Some(certificate), Some(key)) => Some((certificate, key)),
        (None, None) => None,
        _ => return Err("set both AGENCY_CERT and AGENCY_KEY, or neither".into()),
    };
    let options = ClientOptions {
        // Without it the system's roots are trusted (the `tls-native-roots` feature).
        ca_certificate_pem: file("REGISTRY_CA")?,
        client_identity_pem,
        token: std::env::var("OBSERVER_REGISTRY_TOKEN").ok(),
        // When the certificate names the registry differently from the URL's host, e.g.
        // behind a load balancer reached by address.
        tls_domain_name: std::env::var("REGISTRY_TLS_NAME").ok(),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    // ClientError's message names the certificate at fault.
    let client = match Client::connect(server, options).await {
        Ok(client) => client,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    };

    let mut elections = client.list_elections_stream(ListElectionsRequest::default());
    while let Some(election) = elections.next().await {
        match election {
            Ok(election) => println!("{}\t{}", election.name, election.display_name),
            Err(status) => {
                // Under TLS 1.3 the server refuses a client certificate after the handshake,
                // so it shows at the first call rather than at connect.
                match TlsFailure::find(&status) {
                    Some(failure) => eprintln!("TLS failed: {failure}"),
                    None => eprintln!("refused: {:?} {}", status.code(), status.message()),
                }
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
