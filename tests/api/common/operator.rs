//! The real binary run as operators run it (subcommand, arguments, environment), with its JSON
//! log collected and its exit status. `binary.rs` is the one for a server driven by signals.
//! For what only the binary does: start-up, migration, connection settings.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

use super::TestApp;

/// A running `observer-registry` and the log lines it has written so far.
pub struct Binary {
    pub child: Child,
    pub address: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_observer-registry"));
    command
        .args(args)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("HEALTH_CHECK_INTERVAL", "100ms")
        // Elections of 2023 are past their retention by the system clock: the tests' data
        // stays as they made it (tests/api/retention.rs opts in with a clock of its own).
        .env("PERSONAL_DATA_ERASE_INTERVAL", "0s")
        .env("DB_STARTUP_TIMEOUT", "10s")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Collects the child's log lines as they come, so the child never blocks on a full pipe.
fn collect_log(
    child: &mut Child,
) -> (Arc<Mutex<Vec<String>>>, tokio::sync::mpsc::Receiver<String>) {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let (lines_tx, lines_rx) = tokio::sync::mpsc::channel(1024);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let collected = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            collected.lock().unwrap().push(line.clone());
            let _ = lines_tx.try_send(line);
        }
    });
    (log, lines_rx)
}

/// A started binary: its log so far, and each log line as it is written (for a test that
/// acts at a point of the run).
pub struct Running {
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
    pub lines: tokio::sync::mpsc::Receiver<String>,
}

/// Starts the binary, without waiting for anything.
pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut child = command(args, env).spawn().unwrap();
    let (log, lines) = collect_log(&mut child);
    Running { child, log, lines }
}

impl Running {
    /// Waits for the binary to end (60 s at most): its exit status and its log, stderr whole.
    pub async fn finish(mut self) -> (ExitStatus, String) {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("the binary did not exit within 60 s")
            .unwrap();
        // The last lines may still be on their way through the pipe.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let log = self.log.lock().unwrap().join("\n");
        (status, log)
    }
}

impl Binary {
    /// Starts the binary and waits until it serves gRPC (30 s at most).
    pub async fn start(args: &[&str], env: &[(&str, &str)]) -> Binary {
        let Running {
            child,
            log,
            mut lines,
        } = spawn(args, env);
        let serving = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.recv().await {
                let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                if entry["message"] == "serving gRPC" {
                    return Some(entry["address"].as_str().unwrap().to_owned());
                }
            }
            None
        })
        .await;
        let Ok(Some(address)) = serving else {
            panic!(
                "the binary did not serve within 30 s:\n{}",
                log.lock().unwrap().join("\n")
            );
        };
        Binary {
            child,
            address,
            log,
        }
    }

    /// A test app over the binary, for the registry's helpers; `pool` is the test's own.
    pub async fn app(&self, pool: PgPool) -> TestApp {
        let channel = Channel::from_shared(format!("http://{}", self.address))
            .unwrap()
            .connect()
            .await
            .unwrap();
        TestApp::attached(self.address.parse().unwrap(), channel, pool)
    }

    /// Stops the binary with SIGTERM and waits for it.
    pub async fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().unwrap();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the binary did not stop within 30 s")
            .unwrap()
    }
}

/// Runs the binary to its end (60 s at most): its exit status and its log, stderr whole.
pub async fn run(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String) {
    spawn(args, env).finish().await
}
