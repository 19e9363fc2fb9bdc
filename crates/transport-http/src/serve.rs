//! Serving a router on a listener, with a graceful shutdown that drains in-flight requests.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Request, Version, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::Service;

use crate::tls::{self, HandshakeFailure, HandshakeObserver};

/// How long a client may take to send a request's headers. Bounds what a slow or idle client
/// can hold: a connection that sends nothing is closed after this long.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The most requests one HTTP/2 connection may have in flight at once. A peer multiplexes
/// every call to this node on one connection; past this many it waits for a stream to end.
const MAX_STREAMS: u32 = 256;

/// How long a client may take to open a TLS session, from the connection's accept to the
/// handshake's last byte. A client that stalls half-way (slowloris on the handshake) holds its
/// connection, counted against the limit, no longer than this.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often, at most, a node logs that it refused connections over its limit. A flood is one
/// line per interval with a count, not one line per connection.
const REFUSALS_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The answer a connection over the limit gets before it is closed: written without reading
/// the request, in one non-blocking write that a fresh socket's buffer always takes.
const BUSY_ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
connection: close\r\n\
content-type: text/plain; charset=utf-8\r\n\
retry-after: 1\r\n\
x-geecache-error: too-many-connections\r\n\
content-length: 21\r\n\
\r\n\
too many connections\n";

/// Limits on what the clients of a [`serve_with`] server may hold, and TLS.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ServeConfig {
    max_connections: Option<usize>,
    tls: Option<Arc<Tls>>,
}

/// A serving port's TLS: the acceptor and what happens around its handshakes.
struct Tls {
    acceptor: TlsAcceptor,
    timeout: Duration,
    observer: Option<HandshakeObserver>,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("max_connections", &self.max_connections)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl ServeConfig {
    /// No limits beyond the fixed ones (a header read timeout, streams per HTTP/2 connection).
    #[must_use]
    pub fn new() -> Self {
        ServeConfig::default()
    }

    /// Keeps at most `n` connections open. A connection accepted beyond them is answered
    /// `503` with `connection: close` and closed at once, so a flood of idle connections
    /// cannot take every file descriptor the process has (which would stop it from reaching
    /// its peers and its sources, and leave `accept` failing). Refusals are logged once per
    /// 10 s with a count. `0` is taken as 1.
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n.max(1));
        self
    }

    /// Serves every connection over TLS with `config`. Its ALPN list, when empty, becomes
    /// `h2` and `http/1.1`, so gRPC peers (HTTP/2) and HTTP clients share the port as they do
    /// without TLS. A client certificate is asked for, and checked, as `config`'s verifier
    /// says; the certificate and verifier may change inside `config` (a resolver that swaps
    /// them) to rotate keys without restarting.
    ///
    /// The handshake runs in the connection's own task, never in the accept loop, and must
    /// finish within 10 s of the connection's accept; a connection counts against
    /// [`max_connections`](Self::max_connections) from its accept, so clients stalling in the
    /// handshake cannot hold more than the limit. A client that sends plain HTTP is answered
    /// `400` with `x-geecache-error: tls-required` and a line saying to use `https://`, then
    /// the connection is closed.
    #[must_use]
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        let config = if config.alpn_protocols.is_empty() {
            let mut config = (*config).clone();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Arc::new(config)
        } else {
            config
        };
        let (timeout, observer) = match self.tls.take() {
            Some(old) => (old.timeout, old.observer.clone()),
            None => (HANDSHAKE_TIMEOUT, None),
        };
        self.tls = Some(Arc::new(Tls {
            acceptor: TlsAcceptor::from(config),
            timeout,
            observer,
        }));
        self
    }

    /// Tells `observer` of every handshake that fails, with its reason (to count them). Call
    /// after [`tls`](Self::tls); without TLS there is no handshake.
    #[must_use]
    pub fn on_handshake_failure(mut self, observer: HandshakeObserver) -> Self {
        self.tls = self.tls.take().map(|tls| {
            Arc::new(Tls {
                acceptor: tls.acceptor.clone(),
                timeout: tls.timeout,
                observer: Some(observer),
            })
        });
        self
    }

    /// How long a TLS handshake may take. Default 10 s.
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.tls = self.tls.take().map(|tls| {
            Arc::new(Tls {
                acceptor: tls.acceptor.clone(),
                timeout,
                observer: tls.observer.clone(),
            })
        });
        self
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then shuts down gracefully, with no
/// limit on connections: [`serve_with`] with the default [`ServeConfig`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, ServeConfig::default(), shutdown).await
}

/// Serves `app` on `listener` until `shutdown` completes, then shuts down gracefully.
///
/// Each connection speaks HTTP/1.1 or, when the client starts with the HTTP/2 preface, HTTP/2
/// without TLS (h2c): that is how gRPC peers reach a service merged into `app` on the same
/// port as the HTTP routes.
///
/// On shutdown it stops accepting connections, still serves a request that arrives on a
/// connection already open (answering with `Connection: close`, so the client takes its next
/// request elsewhere; an HTTP/2 connection gets GOAWAY at once, which lets its streams in
/// flight finish and refuses new ones, so gRPC callers see UNAVAILABLE and go elsewhere),
/// waits for every request being handled to finish, then closes the connections and returns. A client of a draining node sees answers and closed connections,
/// never an error: what a rolling restart needs.
/// There is no deadline of its own: to bound the drain, wrap the call in
/// [`tokio::time::timeout`]; dropping the future closes every connection at once.
///
/// Bind the listener to `127.0.0.1:0` to run a node inside a test.
///
/// # Errors
///
/// None so far: errors accepting a connection are logged and retried, errors on a connection
/// end that connection only. The `Result` leaves room for errors that must stop the server.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain = Arc::new(Drain::default());
    let open = Arc::new(AtomicUsize::new(0));
    let mut refusals = Refusals::default();
    let (stage, closing) = watch::channel(Stage::Open);
    // The connections live in a `JoinSet`, not in detached tasks: if this future is dropped,
    // every connection is aborted with it instead of outliving the server.
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Some(slot) = Slot::take(&open, config.max_connections) else {
                        refusals.refuse(stream, config.max_connections.unwrap_or(0));
                        continue;
                    };
                    connections.spawn(connection(
                        stream,
                        config.tls.clone(),
                        app.clone(),
                        Arc::clone(&drain),
                        closing.clone(),
                        slot,
                    ));
                }
                Err(error) => accept_failed(&error).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Refuse new connections right away: a load balancer moves on to another node.
    drop(listener);
    drain.begin();
    let _ = stage.send(Stage::Draining);
    tracing::info!(
        in_flight = drain.in_flight(),
        "shutting down; draining in-flight requests"
    );
    drain.until_idle().await;
    // Idle keep-alive connections close now; busy ones after their current response.
    let _ = stage.send(Stage::Closing);
    while connections.join_next().await.is_some() {}
    tracing::info!("server stopped");
    Ok(())
}

/// Errors from `accept` are about one connection (reset before accept) or a shortage of
/// resources (out of file descriptors); neither should stop the server. The pause on the
/// second kind keeps a full descriptor table from turning the loop into a busy spin.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    ) {
        return;
    }
    tracing::warn!(%error, "accept failed; pausing before the next attempt");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn connection(
    stream: TcpStream,
    tls: Option<Arc<Tls>>,
    app: Router,
    drain: Arc<Drain>,
    mut closing: watch::Receiver<Stage>,
    // Held until the connection is closed, whichever way its task ends.
    _slot: Slot,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        None => serve_connection(stream, app, drain, closing).await,
        Some(tls) => {
            // Given up when shutdown begins: a connection that has not said a word yet has
            // no request to drain.
            let handshake = tokio::select! {
                session = handshake(stream, &tls) => session,
                _ = closing.wait_for(|stage| *stage != Stage::Open) => return,
            };
            if let Some(session) = handshake {
                serve_connection(session, app, drain, closing).await;
            }
        }
    }
}

/// The TLS session of `stream`, or `None` when the handshake failed (told to the observer).
async fn handshake(
    mut stream: TcpStream,
    tls: &Tls,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let peer = stream.peer_addr().ok();
    let attempt = async {
        // Peeked, not read: the acceptor reads the record itself.
        let mut first = [0_u8; 1];
        match stream.peek(&mut first).await {
            // Closed before a byte (a TCP health check, a port scan): no handshake was tried.
            Ok(0) | Err(_) => return Err(None),
            Ok(_) => {}
        }
        if first[0] != tls::TLS_HANDSHAKE_RECORD {
            if tls::looks_like_http(first[0]) {
                // The request is read (most of it; one read) before the answer, so closing
                // does not reset the connection with unread bytes and lose the answer.
                let mut request = [0_u8; 4096];
                let _ = stream.read(&mut request).await;
                let _ = stream.write_all(tls::PLAINTEXT_ANSWER).await;
                let _ = stream.shutdown().await;
            }
            return Err(Some(HandshakeFailure::Plaintext));
        }
        tls.acceptor
            .accept(stream)
            .await
            .map_err(|error| Some(HandshakeFailure::of(&error)))
    };
    let failure = match tokio::time::timeout(tls.timeout, attempt).await {
        Ok(Ok(session)) => return Some(session),
        Ok(Err(None)) => return None,
        Ok(Err(Some(reason))) => reason,
        Err(_) => HandshakeFailure::Timeout,
    };
    tracing::debug!(peer = ?peer, reason = %failure, "TLS handshake failed");
    if let Some(observer) = &tls.observer {
        observer(failure);
    }
    None
}

/// Serves HTTP/1.1 and HTTP/2 on one connection, plain or TLS, until it closes or shutdown
/// closes it.
async fn serve_connection<S>(
    stream: S,
    app: Router,
    drain: Arc<Drain>,
    mut closing: watch::Receiver<Stage>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Whether the client speaks HTTP/2 here (its requests say so), and a wake-up for the
    // connection when such a request arrives during the drain.
    let multiplexed = Arc::new(AtomicBool::new(false));
    let goaway = Arc::new(Notify::new());
    let (seen, wake) = (Arc::clone(&multiplexed), Arc::clone(&goaway));
    let service = service_fn(move |request: Request<Incoming>| {
        let mut app = app.clone();
        let drain = Arc::clone(&drain);
        let http2 = request.version() == Version::HTTP_2;
        if http2 {
            seen.store(true, Ordering::Relaxed);
        }
        let wake = Arc::clone(&wake);
        async move {
            let (_guard, draining) = drain.enter();
            // The router is always ready (axum documents it), so `call` without `poll_ready`
            // is sound; its error type is `Infallible`.
            let mut response = app.call(request).await?;
            if draining {
                if http2 {
                    // HTTP/2 has no `Connection: close`: the connection sends GOAWAY instead.
                    wake.notify_one();
                } else {
                    // Answered, but the client must not send anything more here: hyper
                    // closes the connection after this response.
                    (response.headers_mut())
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
            }
            Ok::<_, Infallible>(response)
        }
    });
    // HTTP/1.1 for clients and Go peers; HTTP/2 without TLS (h2c, prior knowledge) for gRPC
    // peers, whose calls all share one connection. The builder tells them apart by the first
    // bytes, so both are served on the one port.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Bounds what one connection can have in flight: a stream is a task here.
        .max_concurrent_streams(MAX_STREAMS)
        // A peer that vanished without closing is found by pings, not kept for ever.
        .keep_alive_interval(Some(HEADER_READ_TIMEOUT))
        .keep_alive_timeout(Duration::from_secs(20));
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = pin!(conn);
    // The connection closes when shutdown reaches it: an HTTP/2 one as soon as the drain
    // begins (GOAWAY lets the streams in flight finish and tells the client to send the next
    // ones elsewhere; waiting for the node to be idle could wait for ever on a connection
    // that multiplexes a steady flow), an HTTP/1.1 one once the node is idle (until then,
    // each answer tells its client to close).
    let close = async {
        tokio::select! {
            _ = closing.wait_for(|stage| match stage {
                Stage::Open => false,
                Stage::Draining => multiplexed.load(Ordering::Relaxed),
                Stage::Closing => true,
            }) => {}
            () = goaway.notified() => {}
        }
    };
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        () = close => {
            conn.as_mut().graceful_shutdown();
            if let Err(error) = conn.await {
                tracing::debug!(%error, "connection ended with an error while closing");
            }
        }
    }
}

/// One open connection, counted against the limit until dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// Counts a connection in, unless `limit` connections are open already.
    fn take(open: &Arc<AtomicUsize>, limit: Option<usize>) -> Option<Slot> {
        // Only the accept loop counts in, so a load and an add cannot race with another
        // taker; connections counted out meanwhile only make room.
        if limit.is_some_and(|limit| open.load(Ordering::Acquire) >= limit) {
            return None;
        }
        open.fetch_add(1, Ordering::AcqRel);
        Some(Slot(Arc::clone(open)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Connections refused over the limit since the last log line.
#[derive(Default)]
struct Refusals {
    unreported: u64,
    last_report: Option<tokio::time::Instant>,
}

impl Refusals {
    /// Answers `stream` 503 and closes it; logs at most once per interval.
    fn refuse(&mut self, stream: TcpStream, limit: usize) {
        // Best effort, never waiting: a client that reads it knows why, and one that does not
        // sees the connection close.
        let _ = stream.try_write(BUSY_ANSWER);
        drop(stream);
        self.unreported += 1;
        let now = tokio::time::Instant::now();
        if self
            .last_report
            .is_none_or(|last| now.duration_since(last) >= REFUSALS_LOG_INTERVAL)
        {
            tracing::warn!(
                refused = self.unreported,
                max_connections = limit,
                "connections over the limit refused with 503 (logged at most every 10 s)"
            );
            self.unreported = 0;
            self.last_report = Some(now);
        }
    }
}

/// Where shutdown is, as each connection sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Serving.
    Open,
    /// Draining: HTTP/2 connections close (GOAWAY), HTTP/1.1 answers carry `Connection: close`.
    Draining,
    /// Idle: every connection closes.
    Closing,
}

/// Counts requests in flight, and refuses new ones once shutdown has begun.
#[derive(Default)]
struct Drain {
    shutting_down: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Drain {
    /// Counts a request in, and says whether shutdown has begun (its connection must close).
    ///
    /// The count goes up *before* the flag is read, and `begin` sets the flag before it reads
    /// the count (both `SeqCst`): so either the request sees the flag and closes its
    /// connection, or the drain sees the request and waits for it. Both happen to a request
    /// that arrives during the drain, which is counted too: the drain waits for it. No request
    /// slips between the two, and none can prolong the drain much, since each closes its
    /// connection and the listener is closed.
    fn enter(self: &Arc<Self>) -> (InFlight, bool) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(Arc::clone(self));
        (guard, self.shutting_down.load(Ordering::SeqCst))
    }

    fn begin(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    async fn until_idle(&self) {
        loop {
            let idle = self.idle.notified();
            let mut idle = pin!(idle);
            // Registered before the check, so a request that finishes in between still wakes us.
            idle.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// One admitted request; dropping it (when the handler finishes or is cancelled) counts it out.
struct InFlight(Arc<Drain>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
