//! A PgBouncer of the test's own in transaction mode, in front of the machine's PostgreSQL,
//! and the real binary behind it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use observer_registry::client::{Client, ClientOptions, RetryPolicy};
use sqlx::PgPool;

use crate::common::TestApp;
use crate::common::binary::{self, Binary};

/// Server connections per database and user: fewer than the service's connections, so that
/// its transactions really take turns on PostgreSQL sessions that others used before.
pub const SERVER_CONNECTIONS: usize = 2;

/// Where Debian puts it (not on a non-root user's PATH).
const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

pub struct Bouncer {
    child: tokio::process::Child,
    pub port: u16,
    dir: PathBuf,
}

impl Bouncer {
    /// PgBouncer in transaction mode on a free port, every database of the local PostgreSQL
    /// behind it, logging in as postgres/postgres. `extra` lines go into `[pgbouncer]`.
    pub async fn start(extra: &str) -> Bouncer {
        assert!(
            Path::new(PGBOUNCER).exists(),
            "{PGBOUNCER} is missing: these tests need Debian's PgBouncer (as root: \
             DEBIAN_FRONTEND=noninteractive apt-get install -y pgbouncer; .ci/run does it)"
        );
        let dir = std::env::temp_dir().join(format!("pgbouncer-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let config = format!(
            "[databases]\n\
             * = host=127.0.0.1 port=5432\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = scram-sha-256\n\
             auth_file = {userlist}\n\
             pool_mode = transaction\n\
             default_pool_size = {SERVER_CONNECTIONS}\n\
             max_client_conn = 200\n\
             {extra}\n",
            userlist = dir.join("userlist.txt").display(),
        );
        std::fs::write(dir.join("pgbouncer.ini"), config).unwrap();
        std::fs::write(dir.join("userlist.txt"), "\"postgres\" \"postgres\"\n").unwrap();
        // PgBouncer refuses to run as root: as root, it switches to postgres, who must read
        // its files.
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
        for path in [&dir, &dir.join("pgbouncer.ini"), &dir.join("userlist.txt")] {
            use std::os::unix::fs::PermissionsExt;
            let mode = if path.is_dir() { 0o755 } else { 0o644 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let mut command = tokio::process::Command::new(PGBOUNCER);
        if root {
            command.args(["-u", "postgres"]);
        }
        let log = std::fs::File::create(dir.join("pgbouncer.log")).unwrap();
        let child = command
            .arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let bouncer = Bouncer { child, port, dir };
        bouncer.wait_until_listening().await;
        bouncer
    }

    async fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "PgBouncer did not listen on {}:\n{}",
                self.port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The URL of `pool`'s database through this PgBouncer.
    pub fn url(&self, pool: &PgPool) -> String {
        let database = pool.connect_options().get_database().unwrap().to_owned();
        format!(
            "postgres://postgres:postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// What PgBouncer logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The service behind its PgBouncer, and the test's direct view of the database.
pub struct Pooled {
    pub bouncer: Bouncer,
    pub binary: Binary,
    /// The registry's one-line helpers, through the binary.
    pub app: TestApp,
}

impl Pooled {
    /// The binary with `--database-pooler transaction` behind a fresh PgBouncer, its LISTEN
    /// (and migrations) on the direct connection.
    pub async fn start(pool: PgPool) -> Pooled {
        Self::start_with(pool, "", &[("DATABASE_POOLER", "transaction")]).await
    }

    /// The same with PgBouncer's `extra` settings and the binary's `env`, which names no
    /// pooler unless it says so.
    pub async fn start_with(pool: PgPool, extra: &str, env: &[(&str, &str)]) -> Pooled {
        let bouncer = Bouncer::start(extra).await;
        let direct = binary::database_url(&pool);
        let mut env = env.to_vec();
        env.extend([
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("LISTEN_DATABASE_URL", direct.as_str()),
            // More connections to PgBouncer than it has to PostgreSQL.
            ("DB_POOL_SIZE", "8"),
        ]);
        let binary = Binary::start(&bouncer.url(&pool), &env).await;
        let app = TestApp::attached(binary.address, binary.channel().await, pool);
        Pooled {
            bouncer,
            binary,
            app,
        }
    }

    /// The shipped client, anonymous (every role on a loopback address), each call once.
    pub async fn client(&self) -> Client {
        let options = ClientOptions {
            timeout: Some(Duration::from_secs(10)),
            retry: RetryPolicy::never(),
            ..Default::default()
        };
        Client::connect(format!("http://{}", self.binary.address), options)
            .await
            .unwrap()
    }
}
