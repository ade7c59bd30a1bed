//! Verification over plain HTTP, without credentials, for phones and partners without gRPC:
//! `GET /v1/verify?token=…` answers the AccreditationCheck as
//! proto3 JSON, `GET /v1/badge-keys` the keys, and with `--badge-verify-url` the page a
//! badge's QR code opens, which checks the signature on the phone itself. Served on
//! `--verify-addr`, or beside `/metrics` on the admin port. Limited per client address.

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::api::audit::json;
use crate::api::verification::Verifier;
use crate::badge::guard::Gate;
use crate::error::Error;
use crate::pb::v1 as pb;
use crate::pb::v1::verify_accreditation_request::Subject;

/// The page and its assets, compiled in: the page works with nothing else.
const PAGE_HTML: &str = include_str!("badge/page/verify.html");
const PAGE_JS: &str = include_str!("badge/page/verify.js");
const PAGE_CSS: &str = include_str!("badge/page/verify.css");
/// Where the page's assets are served: under `/v1/`, which `VerifyUrl` keeps for the service.
pub const PAGE_JS_PATH: &str = "/v1/page/verify.js";
pub const PAGE_CSS_PATH: &str = "/v1/page/verify.css";

/// Scripts and styles of this origin only, and fetches only to it: a page that says whether
/// a badge is authentic must run nothing a third party could change.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// What the HTTP routes share: the verifier and the per-address gate.
#[derive(Debug, Clone)]
pub struct VerifyHttp {
    verifier: Verifier,
    gate: Arc<Gate<ClientKey>>,
    /// The page with the keys in it.
    page: Arc<str>,
}

impl VerifyHttp {
    pub fn new(verifier: Verifier) -> Self {
        let limits = verifier.badges.limits;
        // `<` escaped so that nothing in the data can close its script element.
        let keys = keys_json(&verifier).to_string().replace('<', "\\u003c");
        VerifyHttp {
            page: PAGE_HTML.replace("{{BADGE_KEYS}}", &keys).into(),
            gate: Arc::new(Gate::new(
                crate::metrics::VERIFICATION_HTTP,
                limits.per_address_per_second,
                limits.enumeration_threshold,
            )),
            verifier,
        }
    }

    /// Whom a request counts against: its TCP peer, or from a trusted proxy the client that
    /// proxy names in `X-Forwarded-For`.
    fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> ClientKey {
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let trusted = &self.verifier.badges.trusted_proxies;
        ClientKey::of(trusted.client(peer.ip(), &forwarded))
    }

    /// The routes, to serve alone or merged beside the admin port's. They need the peer's
    /// address: serve with `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn routes(self) -> Router {
        let mut router = Router::new()
            .route("/v1/verify", get(verify))
            .route("/v1/badge-keys", get(badge_keys));
        if let Some(url) = &self.verifier.badges.verify_url {
            router = router
                .route(url.path(), get(page))
                .route(PAGE_JS_PATH, get(script))
                .route(PAGE_CSS_PATH, get(style));
        }
        router
            .layer(middleware::from_fn(security_headers))
            .with_state(self)
    }
}

/// Serves only the verification routes on their own listener until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    routes: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(
        listener,
        routes.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("verification HTTP server failed")
}

/// Whom the per-address limit counts: an IPv4 address, or an IPv6 /64 (one host may hold a
/// whole /64 and would otherwise have millions of allowances).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let prefix = v6.to_bits() & !((1u128 << 64) - 1);
                    ClientKey(IpAddr::V6(Ipv6Addr::from_bits(prefix)))
                }
            },
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[derive(Debug, Deserialize)]
struct VerifyParams {
    token: Option<String>,
    accreditation_number: Option<String>,
}

async fn verify(
    State(http): State<VerifyHttp>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    params: Result<Query<VerifyParams>, QueryRejection>,
) -> Response {
    let client = http.client(peer, &headers);
    if let Err(wait) = http.gate.admit(&client) {
        return too_many(wait);
    }
    // A number alone is refused here: numbers run in sequence, and without credentials
    // anyone could walk them and read the register; a badge's token cannot be guessed.
    // Numbers are checked over gRPC, by an agency with the verifier role.
    let subject = match params {
        Ok(Query(VerifyParams {
            token: Some(token),
            accreditation_number: None,
        })) => Some(Subject::Token(token)),
        Ok(Query(VerifyParams {
            accreditation_number: Some(_),
            ..
        })) => {
            return error_json(Error::invalid(
                "accreditation_number",
                "is checked only with credentials (VerifyAccreditation, role verifier); \
                 give the badge's token",
            ));
        }
        Ok(Query(VerifyParams { token: None, .. })) => None,
        Err(_) => {
            return error_json(Error::invalid("token", "give the parameter token"));
        }
    };
    let verifier = &http.verifier;
    match verifier.db.in_scope(verifier.check(subject)).await {
        Ok((verdict, check)) => {
            http.gate.counted(client, verdict, verifier.metrics());
            json_response(StatusCode::OK, &json("AccreditationCheck", &check))
        }
        Err(error) => error_json(error),
    }
}

async fn badge_keys(State(http): State<VerifyHttp>) -> Response {
    json_response(StatusCode::OK, &keys_json(&http.verifier))
}

fn keys_json(verifier: &Verifier) -> serde_json::Value {
    let keys = pb::ListBadgeKeysResponse {
        keys: verifier.badges.keyring.list(),
    };
    json("ListBadgeKeysResponse", &keys)
}

async fn page(
    State(http): State<VerifyHttp>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(wait) = http.gate.admit(&http.client(peer, &headers)) {
        return too_many(wait);
    }
    static_file("text/html; charset=utf-8", http.page.to_string())
}

async fn script() -> Response {
    static_file("text/javascript; charset=utf-8", PAGE_JS)
}

async fn style() -> Response {
    static_file("text/css; charset=utf-8", PAGE_CSS)
}

fn static_file(content_type: &'static str, body: impl IntoResponse) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // The same for every badge (the token stays in the fragment, never sent).
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            // A verdict is of this moment: a revocation must show at the next scan.
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// 429 with `Retry-After` in whole seconds, rounded up.
fn too_many(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = error_json(Error::rate_limited("this address", wait));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// An error as JSON, shaped like Google's HTTP errors: the gRPC code's HTTP status, the
/// reason and the message. Internal errors are logged and answered generically,
/// as over gRPC (through the same conversion).
fn error_json(error: Error) -> Response {
    let reason = error.reason.as_str();
    let status = tonic::Status::from(error);
    let code = match status.code() {
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        tonic::Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = serde_json::json!({
        "error": {
            "code": code.as_u16(),
            "reason": reason,
            "message": status.message(),
        }
    });
    json_response(code, &body)
}

/// What every answer of these routes carries: no referrer leaves the page (the URL holds
/// the token), no type sniffing, and the page's content policy.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_ipv6_host_is_one_client_and_mapped_ipv4_is_its_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(a), ClientKey::of(b));
        assert_ne!(ClientKey::of(a), ClientKey::of(other));
        assert_eq!(ClientKey::of(a).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ClientKey::of(mapped).to_string(), "192.0.2.7");
    }
}
