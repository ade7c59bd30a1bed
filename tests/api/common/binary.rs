//! The real binary as a child process: its settings, its JSON log lines as they come, its
//! address, and signals.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tonic::transport::Channel;

pub fn database_url(pool: &PgPool) -> String {
    let options = pool.connect_options();
    format!(
        "postgres://postgres:postgres@127.0.0.1:{}/{}",
        options.get_port(),
        options.get_database().unwrap()
    )
}

/// The binary with these settings (and no agencies or anonymity inherited from the
/// environment), its JSON log lines as they come.
pub fn command(database_url: &str, env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_observer-registry"));
    command
        .env_remove("IDENTITIES_FILE")
        .env_remove("ALLOW_ANONYMOUS")
        .env_remove("TLS_CERT_FILE")
        .env_remove("TLS_KEY_FILE")
        .env_remove("TLS_CLIENT_CA_FILE")
        .env_remove("RUST_LOG")
        .env("DATABASE_URL", database_url)
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("SHUTDOWN_GRACE_PERIOD", "1s")
        .env("HEALTH_CHECK_INTERVAL", "100ms")
        // Elections of 2023 are past their retention by the system clock: the tests' data
        // stays as they made it (tests/api/retention.rs opts in with a clock of its own).
        .env("PERSONAL_DATA_ERASE_INTERVAL", "0s")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

pub struct Binary {
    pub child: tokio::process::Child,
    /// The address it serves on, as it logged it.
    pub address: SocketAddr,
    pub logs: mpsc::UnboundedReceiver<serde_json::Value>,
}

impl Binary {
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> Binary {
        let mut child = command(database_url, env).spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (tx, mut logs) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let log = serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line));
                if tx.send(log).is_err() {
                    break;
                }
            }
        });
        let serving = wait_for_log(&mut logs, "serving gRPC", Duration::from_secs(30)).await;
        let mut address: SocketAddr = serving["address"].as_str().unwrap().parse().unwrap();
        if address.ip().is_unspecified() {
            address.set_ip([127, 0, 0, 1].into());
        }
        Binary {
            child,
            address,
            logs,
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// The next log line whose message is `message`, failing with what was logged instead.
pub async fn wait_for_log(
    logs: &mut mpsc::UnboundedReceiver<serde_json::Value>,
    message: &str,
    timeout: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, logs.recv()).await {
            Ok(Some(log)) if log["message"] == message => return log,
            Ok(Some(log)) => seen.push(log.to_string()),
            Ok(None) => panic!(
                "the binary exited before logging {message:?}:\n{}",
                seen.join("\n")
            ),
            Err(_) => panic!("no {message:?} logged in time:\n{}", seen.join("\n")),
        }
    }
}

pub fn kill(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("the binary is running").to_string();
    let status = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(status.success());
}
