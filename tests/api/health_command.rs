//! `observer-registry health --addr …`, the container health check: exit 0 only when the
//! service says SERVING.

use std::process::Output;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::common::*;

async fn health(args: &[&str]) -> Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_observer-registry"))
        .arg("health")
        .args(args)
        .env_remove("OBSERVER_REGISTRY_SERVER")
        .env_remove("OBSERVER_REGISTRY_TOKEN")
        .env_remove("IDENTITIES_FILE")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the health command did not exit")
        .unwrap()
}

#[sqlx::test]
async fn health_exits_0_for_a_serving_server_and_1_for_an_unknown_service(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.wait_for_health("", SERVING).await;
    let addr = app.addr.to_string();

    let serving = health(&["--addr", &addr]).await;
    assert!(serving.status.success(), "{serving:?}");
    assert_eq!(String::from_utf8_lossy(&serving.stdout), "SERVING\n");
    let liveness = health(&["--addr", &format!("http://{addr}"), "--service", "liveness"]).await;
    assert!(liveness.status.success(), "{liveness:?}");

    let unknown = health(&["--addr", &addr, "--service", "no.such.Service"]).await;
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");
    assert_eq!(
        String::from_utf8_lossy(&unknown.stdout),
        "SERVICE_UNKNOWN\n"
    );
}

#[tokio::test]
async fn health_exits_non_zero_when_nothing_answers() {
    // A port that was just free: nothing listens on it.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let started = Instant::now();
    let refused = health(&["--addr", &closed.to_string(), "--timeout", "3s"]).await;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("error"),
        "{refused:?}"
    );

    // A port that accepts and never answers: the timeout ends the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let hung = health(&[
        "--addr",
        &silent.local_addr().unwrap().to_string(),
        "--timeout",
        "1s",
    ])
    .await;
    assert_eq!(hung.status.code(), Some(2), "{hung:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
