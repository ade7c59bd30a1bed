//! A PostgreSQL primary and its streaming-replication standby, two local clusters of their own
//! (`initdb`, `pg_basebackup -R`) on free ports, never the machine's cluster on 5432 that the
//! other tests share. Run as the `postgres` user when the test runs as root (PostgreSQL refuses
//! root), in a directory of their own that is removed, clusters stopped, when the pair is
//! dropped, also on panic.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// The newest installed PostgreSQL's programs (Debian's layout; `.ci/run` installs them).
fn bin() -> PathBuf {
    std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server programs under /usr/lib/postgresql")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("bin/initdb").exists())
        .max_by_key(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        })
        .map(|entry| entry.path().join("bin"))
        .expect("initdb under /usr/lib/postgresql/*/bin")
}

/// How the primary waits for the standby at commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// `synchronous_standby_names = '*'`, `synchronous_commit = on`: a commit is acknowledged
    /// only once the standby has flushed its WAL.
    Synchronous,
    /// The default: a commit is acknowledged once it is on the primary's disk.
    Asynchronous,
}

pub struct Pair {
    dir: PathBuf,
    pub primary: SocketAddr,
    pub standby: SocketAddr,
}

impl Pair {
    /// A primary with data, and a standby streaming from it and caught up.
    pub async fn start(replication: Replication) -> Pair {
        let dir = std::env::temp_dir().join(format!("switchover-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let pair = Pair {
            primary: SocketAddr::from(([127, 0, 0, 1], free_port())),
            standby: SocketAddr::from(([127, 0, 0, 1], free_port())),
            dir,
        };
        if is_root() {
            run("chown", &["postgres:postgres", pair.dir.to_str().unwrap()]);
        }
        let primary = pair.data("primary");
        as_postgres(
            "initdb",
            &[
                "-D",
                &primary,
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        let synchronous = match replication {
            Replication::Synchronous => "'*'",
            Replication::Asynchronous => "''",
        };
        pair.configure(
            "primary",
            &format!(
                "port = {}\nwal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n\
                 synchronous_standby_names = {synchronous}\nsynchronous_commit = on\n",
                pair.primary.port()
            ),
        );
        pair.ctl("primary", &["start", "-w", "-t", "60"]);
        let standby = pair.data("standby");
        as_postgres(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pair.primary.port().to_string(),
                "-U",
                "postgres",
                "-D",
                &standby,
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        // The standby's own port; and once promoted it has no standby to wait for (with the
        // primary's `'*'` every commit would wait for ever).
        pair.configure(
            "standby",
            &format!(
                "port = {}\nsynchronous_standby_names = ''\n",
                pair.standby.port()
            ),
        );
        pair.ctl("standby", &["start", "-w", "-t", "60"]);
        pair.wait_for_streaming(replication).await;
        pair
    }

    /// `postgres` on `address`, without TLS (these clusters have none).
    pub fn url(address: SocketAddr, database: &str) -> String {
        format!("postgres://postgres@{address}/{database}?sslmode=disable")
    }

    pub async fn connect(address: SocketAddr, database: &str) -> PgConnection {
        let options: PgConnectOptions = Pair::url(address, database).parse().unwrap();
        PgConnection::connect_with(&options).await.unwrap()
    }

    /// Stops the primary: `fast` (sessions ended, WAL shipped to the standby before exit, a
    /// clean switchover) or `immediate` (a crash: what the standby has not received is lost).
    pub fn stop_primary(&self, mode: &str) {
        self.ctl("primary", &["stop", "-w", "-m", mode]);
    }

    /// Promotes the standby and waits until it accepts writes.
    pub fn promote_standby(&self) {
        self.ctl("standby", &["promote", "-w", "-t", "60"]);
    }

    fn data(&self, cluster: &str) -> String {
        self.dir.join(cluster).to_str().unwrap().to_owned()
    }

    fn configure(&self, cluster: &str, settings: &str) {
        use std::io::Write;
        let path = Path::new(&self.data(cluster)).join("postgresql.conf");
        let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        // Sockets in the pair's directory, not beside the machine's cluster; TCP on loopback.
        write!(
            file,
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nmax_connections = 60\n{settings}",
            self.dir.display()
        )
        .unwrap();
    }

    fn ctl(&self, cluster: &str, args: &[&str]) {
        let data = self.data(cluster);
        let log = self.dir.join(format!("{cluster}.log"));
        let mut all = vec!["-D", &data, "-l", log.to_str().unwrap()];
        all.extend(args);
        as_postgres("pg_ctl", &all);
    }

    /// Waits until the primary sees the standby streaming (as its synchronous standby when
    /// replication is synchronous).
    async fn wait_for_streaming(&self, replication: Replication) {
        let mut primary = Pair::connect(self.primary, "postgres").await;
        let want = match replication {
            Replication::Synchronous => "sync",
            Replication::Asynchronous => "async",
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let streaming: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT FROM pg_stat_replication \
                 WHERE state = 'streaming' AND sync_state = $1)",
            )
            .bind(want)
            .fetch_one(&mut primary)
            .await
            .unwrap();
            if streaming {
                return;
            }
            assert!(Instant::now() < deadline, "the standby did not stream");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for cluster in ["primary", "standby"] {
            let data = self.data(cluster);
            if Path::new(&data).join("postmaster.pid").exists() {
                let _ = postgres_command("pg_ctl")
                    .args(["-D", &data, "stop", "-w", "-m", "immediate"])
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// PostgreSQL's `program`, as the `postgres` user when the test runs as root.
fn postgres_command(program: &str) -> Command {
    let path = bin().join(program);
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(&path);
        command
    } else {
        Command::new(path)
    }
}

fn as_postgres(program: &str, args: &[&str]) {
    let output = postgres_command(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?}: {status}");
}
