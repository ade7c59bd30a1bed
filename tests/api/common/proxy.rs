//! A TCP proxy that a test can cut and restore: in front of PostgreSQL, to make the database
//! unreachable for the server without touching the PostgreSQL other tests share; in front of
//! the service, to make it unreachable for a client, or to lose its answers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    /// Where new connections go (`retarget`); open ones stay where they went.
    target: Arc<Mutex<SocketAddr>>,
    up: Arc<AtomicBool>,
    /// The next connection forwards what the client sends but loses every answer, and is
    /// closed after a while: the server did the work, the client never hears of it.
    lose_next_answers: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

/// How long a connection whose answers are lost stays open.
const LOST_ANSWERS_FOR: Duration = Duration::from_millis(500);

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let lose_next_answers = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let target = Arc::new(Mutex::new(target));
        let accept = {
            let (up, links, target) = (up.clone(), links.clone(), target.clone());
            let (lose_next_answers, connections) = (lose_next_answers.clone(), connections.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    connections.fetch_add(1, Ordering::SeqCst);
                    if !up.load(Ordering::SeqCst) {
                        drop(client); // refused: the "database" is down
                        continue;
                    }
                    let lose_answers = lose_next_answers.swap(false, Ordering::SeqCst);
                    let target = *target.lock().unwrap();
                    let link = tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(target).await else {
                            return;
                        };
                        if lose_answers {
                            let (mut from_client, _) = client.split();
                            let (mut from_server, mut to_server) = server.split();
                            let forward = tokio::io::copy(&mut from_client, &mut to_server);
                            let discard = async {
                                let mut buffer = [0u8; 4096];
                                while from_server.read(&mut buffer).await.is_ok_and(|n| n > 0) {}
                            };
                            let _ = tokio::time::timeout(LOST_ANSWERS_FOR, async {
                                tokio::join!(forward, discard)
                            })
                            .await;
                            return;
                        }
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    });
                    links.lock().unwrap().push(link.abort_handle());
                }
            })
            .abort_handle()
        };
        Proxy {
            addr,
            target,
            up,
            lose_next_answers,
            connections,
            links,
            accept,
        }
    }

    /// Sends new connections to `target`, as a Kubernetes Service does when its endpoint
    /// moves to another pod: open connections stay with the old one.
    pub fn retarget(&self, target: SocketAddr) {
        *self.target.lock().unwrap() = target;
    }

    /// The next connection loses every answer and then closes; later ones work again.
    pub fn lose_answers_of_next_connection(&self) {
        self.lose_next_answers.store(true, Ordering::SeqCst);
    }

    /// Connections attempted so far, refused ones included.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
