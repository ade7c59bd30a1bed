//! The default transport under [`RegistryChannel`](crate::RegistryChannel): plain-text HTTP/2
//! connections driven by `h2` directly, one per address, calls spread over them round robin.
//!
//! tonic's `Channel` passes every call through a buffer task and hyper's client, which
//! sends a request's HEADERS, waits for flow-control capacity and then sends its DATA: two
//! writes per burst of calls here and two reads in the server. Here a request whose body is
//! ready at once (every unary call and every Watch) has both frames queued before the
//! connection task runs, so a burst leaves in one write, with no task between the caller and
//! the connection (BENCHMARKS.md: about 40 % less client CPU per GetObserver call).
//!
//! What `Channel` gave partners and this keeps: a broken or closed connection (restart,
//! GOAWAY) is replaced at the next call; a call that could not even be sent on a dying
//! connection is sent again on a new one; HTTP/2 keepalive pings; the connect timeout; and,
//! with several addresses, an address that refuses connections is skipped for a while.
//! Deadlines and retries stay in `RegistryChannel`, above any transport. TLS stays with
//! `Channel` (`Client::connect` chooses it for `https://`).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::HeaderValue;
use http::uri::{Authority, Scheme};
use http_body::Body as _;
use tokio::time::Instant;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, StdError};

use crate::Keepalive;

/// How long an address that refused a connection is passed over while others are up.
const DOWN_FOR: Duration = Duration::from_secs(1);

/// What an address is, parsed once.
#[derive(Clone, Debug)]
pub(crate) struct Address {
    authority: Authority,
    /// The host as a socket address wants it (no brackets around IPv6).
    host: String,
    port: u16,
}

impl Address {
    /// `http://host[:port]`; none for another scheme or a URL without a host.
    pub(crate) fn parse(url: &str) -> Option<Address> {
        let uri: http::Uri = url.parse().ok()?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return None;
        }
        let authority = uri.authority()?.clone();
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(80);
        Some(Address {
            authority,
            host,
            port,
        })
    }
}

/// Connection settings from [`ClientOptions`](crate::ClientOptions).
#[derive(Clone)]
pub(crate) struct Settings {
    pub connect_timeout: Duration,
    pub keepalive: Option<Keepalive>,
    pub user_agent: Option<HeaderValue>,
}

/// HTTP/2 connections to one or more addresses of the service.
#[derive(Clone)]
pub(crate) struct Http2Transport {
    shared: Arc<Shared>,
}

struct Shared {
    slots: Vec<Slot>,
    next: AtomicUsize,
    settings: Settings,
}

/// One address and its connection, if there is one.
struct Slot {
    address: Address,
    state: Mutex<SlotState>,
    /// Held while connecting, so that the calls that find no connection wait for one
    /// connection instead of each opening their own.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct SlotState {
    live: Option<Live>,
    /// Set when a connection was refused: until then the address is passed over if another
    /// is up.
    down_until: Option<Instant>,
}

#[derive(Clone)]
struct Live {
    sender: h2::client::SendRequest<Bytes>,
    /// Set by the connection's task when the connection ended.
    closed: Arc<AtomicBool>,
    /// Calls open on the connection: keepalive pings only while there are some, unless
    /// `while_idle`.
    open_calls: Arc<AtomicUsize>,
}

impl Live {
    fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }
}

impl Http2Transport {
    pub(crate) fn new(addresses: Vec<Address>, settings: Settings) -> Self {
        let slots = addresses
            .into_iter()
            .map(|address| Slot {
                address,
                state: Mutex::new(SlotState::default()),
                connecting: tokio::sync::Mutex::new(()),
            })
            .collect();
        Http2Transport {
            shared: Arc::new(Shared {
                slots,
                next: AtomicUsize::new(0),
                settings,
            }),
        }
    }

    /// Connects to every address now; fails only when none can be reached, with the last
    /// failure. An address that cannot be reached is marked down and tried again later.
    pub(crate) async fn connect_all(&self) -> Result<(), StdError> {
        let mut last_error = None;
        let mut connected = false;
        for slot in &self.shared.slots {
            match slot.sender(&self.shared.settings).await {
                Ok(_) => connected = true,
                Err(error) => last_error = Some(error),
            }
        }
        match (connected, last_error) {
            (true, _) => Ok(()),
            (false, error) => Err(error.unwrap_or_else(|| "no address to connect to".into())),
        }
    }

    /// The slots in the order this call tries them: round robin, addresses marked down
    /// last.
    fn order(&self) -> Vec<&Slot> {
        let slots = &self.shared.slots;
        if slots.len() == 1 {
            return vec![&slots[0]];
        }
        let start = self.shared.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let rotated = (0..slots.len()).map(|i| &slots[(start + i) % slots.len()]);
        let (mut up, down): (Vec<&Slot>, Vec<&Slot>) = rotated.partition(|slot| !slot.is_down(now));
        up.extend(down);
        up
    }

    async fn send(self, request: http::Request<Body>) -> Result<http::Response<Body>, StdError> {
        let (mut head, mut body) = request.into_parts();
        head.version = http::Version::HTTP_2;
        if let Some(user_agent) = &self.shared.settings.user_agent {
            head.headers
                .entry(http::header::USER_AGENT)
                .or_insert_with(|| user_agent.clone());
        }
        let ready = take_ready(&mut body)?;
        // Sent again, once, on a new connection when nothing of it reached the server (the
        // connection was closing), and only when it is whole in hand.
        let mut attempts_left = if ready.ended { 2 } else { 1 };
        let mut body = Some(body);
        let mut last_error: StdError = "no address to connect to".into();
        let slots = self.order();
        let mut index = 0;
        while let Some(slot) = slots.get(index) {
            let live = match slot.sender(&self.shared.settings).await {
                Ok(live) => live,
                Err(error) => {
                    // Refused: the next address.
                    last_error = error;
                    index += 1;
                    continue;
                }
            };
            head.uri = with_origin(&head.uri, &slot.address.authority)?;
            match open_stream(&live, &head, &ready, &mut body).await {
                Ok(response) => return Ok(response),
                Err(Failure::Sent(error)) => return Err(error),
                Err(Failure::Unsent(error)) => {
                    // The same address again, on its replacement connection.
                    slot.forget(&live);
                    attempts_left -= 1;
                    if attempts_left == 0 {
                        return Err(error);
                    }
                    last_error = error;
                }
            }
        }
        Err(last_error)
    }
}

impl tower::Service<http::Request<Body>> for Http2Transport {
    type Response = http::Response<Body>;
    type Error = StdError;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call waits for its connection's readiness (the server's stream limit) itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(self.clone().send(request))
    }
}

impl Slot {
    fn is_down(&self, now: Instant) -> bool {
        let state = self.lock();
        state.live.is_none() && state.down_until.is_some_and(|until| until > now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        // A panic while holding this lock leaves nothing half-done.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open(&self) -> Option<Live> {
        let mut state = self.lock();
        match &state.live {
            Some(live) if live.is_open() => Some(live.clone()),
            Some(_) => {
                state.live = None;
                None
            }
            None => None,
        }
    }

    /// Drops `live` if it is still this slot's connection: the next call connects anew.
    fn forget(&self, live: &Live) {
        let mut state = self.lock();
        if state
            .live
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(&current.closed, &live.closed))
        {
            live.closed.store(true, Ordering::Release);
            state.live = None;
        }
    }

    /// This address's connection, connecting if there is none.
    async fn sender(&self, settings: &Settings) -> Result<Live, StdError> {
        if let Some(live) = self.open() {
            return Ok(live);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(live) = self.open() {
            return Ok(live);
        }
        match connect(&self.address, settings).await {
            Ok(live) => {
                let mut state = self.lock();
                state.live = Some(live.clone());
                state.down_until = None;
                Ok(live)
            }
            Err(error) => {
                self.lock().down_until = Some(Instant::now() + DOWN_FOR);
                Err(error)
            }
        }
    }
}

async fn connect(address: &Address, settings: &Settings) -> Result<Live, StdError> {
    let connecting = async {
        let stream = tokio::net::TcpStream::connect((address.host.as_str(), address.port)).await?;
        stream.set_nodelay(true)?;
        // hyper's window sizes, as under `Channel` (h2's own 64 KiB would stall a page of
        // ~30 KB on round trips).
        let handshake = h2::client::Builder::new()
            .initial_window_size(2 << 20)
            .initial_connection_window_size(5 << 20)
            .handshake::<_, Bytes>(stream)
            .await?;
        Ok::<_, StdError>(handshake)
    };
    let (sender, mut connection) = tokio::time::timeout(settings.connect_timeout, connecting)
        .await
        .map_err(|_| -> StdError {
            format!("connecting to {} timed out", address.authority).into()
        })??;
    let live = Live {
        sender,
        closed: Arc::new(AtomicBool::new(false)),
        open_calls: Arc::new(AtomicUsize::new(0)),
    };
    let ping_pong = connection.ping_pong();
    let (closed, open_calls) = (live.closed.clone(), live.open_calls.clone());
    let (keepalive, authority) = (settings.keepalive, address.authority.clone());
    tokio::spawn(async move {
        let pings = keep_alive(ping_pong, keepalive, open_calls);
        tokio::select! {
            ended = connection => if let Err(error) = ended {
                tracing::debug!(%authority, %error, "connection to the service ended");
            },
            () = pings => tracing::debug!(%authority, "the service stopped answering pings"),
        }
        // Dropping `connection` fails the calls still open on it.
        closed.store(true, Ordering::Release);
    });
    Ok(live)
}

/// Pings every `interval` (while calls are open, unless `while_idle`); returns when a ping
/// goes unanswered for `timeout`, and never without keepalive.
async fn keep_alive(
    ping_pong: Option<h2::PingPong>,
    keepalive: Option<Keepalive>,
    open_calls: Arc<AtomicUsize>,
) {
    let (Some(mut ping_pong), Some(keepalive)) = (ping_pong, keepalive) else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(keepalive.interval).await;
        if !keepalive.while_idle && open_calls.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let pong = tokio::time::timeout(keepalive.timeout, ping_pong.ping(h2::Ping::opaque()));
        if !matches!(pong.await, Ok(Ok(_))) {
            return;
        }
    }
}

/// The part of a request body that was ready at once.
struct Ready {
    data: Bytes,
    trailers: Option<http::HeaderMap>,
    /// The whole body: nothing more will come.
    ended: bool,
}

/// Takes what `body` holds now without waiting: all of a unary request, and the first
/// messages of a client stream.
fn take_ready(body: &mut Body) -> Result<Ready, StdError> {
    let mut context = Context::from_waker(std::task::Waker::noop());
    let mut data = BytesMut::new();
    loop {
        match Pin::new(&mut *body).poll_frame(&mut context) {
            Poll::Ready(Some(frame)) => match frame?.into_data() {
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(frame) => {
                    return Ok(Ready {
                        data: data.freeze(),
                        trailers: frame.into_trailers().ok(),
                        ended: true,
                    });
                }
            },
            Poll::Ready(None) => {
                return Ok(Ready {
                    data: data.freeze(),
                    trailers: None,
                    ended: true,
                });
            }
            Poll::Pending => {
                return Ok(Ready {
                    data: data.freeze(),
                    trailers: None,
                    ended: false,
                });
            }
        }
    }
}

fn with_origin(uri: &http::Uri, authority: &Authority) -> Result<http::Uri, StdError> {
    let mut parts = uri.clone().into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority.clone());
    Ok(http::Uri::from_parts(parts)?)
}

/// Why a call's stream could not be opened.
enum Failure {
    /// Nothing of the call reached the server: it may be sent on another connection.
    Unsent(StdError),
    /// The call may have reached the server: the retry policy above decides.
    Sent(StdError),
}

/// Opens the call's stream on `live` and waits for the response's headers.
async fn open_stream(
    live: &Live,
    head: &http::request::Parts,
    ready: &Ready,
    body: &mut Option<Body>,
) -> Result<http::Response<Body>, Failure> {
    let open_call = OpenCall::new(&live.open_calls);
    let mut sender = live
        .sender
        .clone()
        .ready()
        .await
        .map_err(|error| Failure::Unsent(error.into()))?;
    let mut request = http::Request::new(());
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = head.uri.clone();
    *request.version_mut() = http::Version::HTTP_2;
    *request.headers_mut() = head.headers.clone();
    let empty = ready.ended && ready.data.is_empty() && ready.trailers.is_none();
    let (response, mut send) = sender
        .send_request(request, empty)
        .map_err(|error| Failure::Unsent(error.into()))?;
    if ready.ended {
        if !empty {
            let end = ready.trailers.is_none();
            if !ready.data.is_empty() || end {
                // Queued now, with the HEADERS: h2 holds what the window cannot take yet.
                let _ = send.send_data(ready.data.clone(), end);
            }
            if let Some(trailers) = &ready.trailers {
                let _ = send.send_trailers(trailers.clone());
            }
        }
    } else {
        if !ready.data.is_empty() {
            let _ = send.send_data(ready.data.clone(), false);
        }
        // The rest of a client stream, as its caller produces it, within flow control.
        if let Some(body) = body.take() {
            tokio::spawn(pump(body, send));
        }
    }
    let response = response.await.map_err(|error| {
        // Not processed by the server: refused (RFC 9113, 8.7), or above the last stream of
        // a graceful GOAWAY (6.8), which the server sends as it shuts down or ages the
        // connection out while this call was on its way.
        let unprocessed = error.reason() == Some(h2::Reason::REFUSED_STREAM)
            || (error.is_go_away()
                && error.is_remote()
                && error.reason() == Some(h2::Reason::NO_ERROR));
        if unprocessed && ready.ended {
            Failure::Unsent(error.into())
        } else {
            Failure::Sent(error.into())
        }
    })?;
    Ok(response.map(|received| {
        Body::new(ReceivedBody {
            received,
            data_done: false,
            _open_call: open_call,
        })
    }))
}

/// Sends the rest of a request body, waiting for flow-control capacity; stops when the
/// server resets the stream.
async fn pump(mut body: Body, mut send: h2::SendStream<Bytes>) {
    loop {
        let frame = std::future::poll_fn(|cx| {
            if send.poll_reset(cx).is_ready() {
                return Poll::Ready(None);
            }
            Pin::new(&mut body).poll_frame(cx).map(Some)
        })
        .await;
        let frame = match frame {
            // Reset by the server: nobody reads the rest.
            None => return,
            Some(None) => {
                let _ = send.send_data(Bytes::new(), true);
                return;
            }
            Some(Some(Err(_))) => {
                send.send_reset(h2::Reason::CANCEL);
                return;
            }
            Some(Some(Ok(frame))) => frame,
        };
        match frame.into_data() {
            Ok(data) => {
                if !send_within_window(&mut send, data).await {
                    return;
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    let _ = send.send_trailers(trailers);
                }
                return;
            }
        }
    }
}

/// Sends `data` as the peer's window allows; false when the stream is gone.
async fn send_within_window(send: &mut h2::SendStream<Bytes>, mut data: Bytes) -> bool {
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(Ok(0)) => continue,
            Some(Ok(capacity)) => {
                let chunk = data.split_to(capacity.min(data.len()));
                if send.send_data(chunk, false).is_err() {
                    return false;
                }
            }
            Some(Err(_)) | None => return false,
        }
    }
    true
}

/// Counts a call as open from its start until its response body is dropped.
struct OpenCall(Arc<AtomicUsize>);

impl OpenCall {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        OpenCall(count.clone())
    }
}

impl Drop for OpenCall {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body read from `h2`, giving flow-control window back as it is read.
struct ReceivedBody {
    received: h2::RecvStream,
    data_done: bool,
    _open_call: OpenCall,
}

impl http_body::Body for ReceivedBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match std::task::ready!(self.received.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.received.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => self.data_done = true,
            }
        }
        match std::task::ready!(self.received.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.received.is_end_stream()
    }
}
