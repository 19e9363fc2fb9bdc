//! Keep-alive connections to one peer: HTTP/1.1 over TCP, one request at a time on each.
//!
//! A peer is one host, so its pool is a stack of idle connections behind a mutex that is held
//! for a push or a pop, never across an await. A request takes the most recently used idle
//! connection (warm in every cache), or opens a new one when none is idle; the connection goes
//! back on the stack once the response has been read whole. hyper-util's general-purpose
//! pooled client does more per request than a peer needs: it keys its pool by scheme and
//! authority, formats the `Host` header, rewrites the URI, and spawns a task per request to
//! put the connection back.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

type Sender = SendRequest<Full<Bytes>>;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No connection could be opened.
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        /// The `host:port` dialled.
        authority: String,
        /// What the dial said.
        source: io::Error,
    },
    /// The TLS handshake with the peer failed (its certificate was refused, or ours).
    #[error("TLS handshake with {authority} failed: {source}")]
    Tls {
        /// The `host:port` dialled.
        authority: String,
        /// What rustls said.
        source: io::Error,
    },
    /// The connection failed during the exchange.
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// The idle connections to one peer.
pub(crate) struct Connections {
    /// `host:port`, as dialled.
    authority: String,
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
    /// How to open a TLS session on each new connection, and the name the peer's
    /// certificate must carry; `None`: plain TCP.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

struct Idle {
    sender: Sender,
    since: Instant,
}

/// A connection lent to one request. [`release`](Lease::release) it once the response has
/// been read whole; dropping it instead closes the connection, the only safe end for one
/// whose response was cut short.
pub(crate) struct Lease<'a> {
    connections: &'a Connections,
    sender: Sender,
}

impl Connections {
    /// A pool for the peer at `authority` (`host:port`) that keeps at most `max_idle` idle
    /// connections, each for at most `idle_timeout`.
    pub(crate) fn new(authority: String, max_idle: usize, idle_timeout: Duration) -> Self {
        Connections {
            authority,
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
            tls: None,
        }
    }

    /// Opens every connection with a TLS session, checking that the peer's certificate names
    /// `name`. A kept-alive connection keeps its session, so the handshake is paid once per
    /// connection, not per request.
    pub(crate) fn with_tls(
        mut self,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> Self {
        self.tls = Some((TlsConnector::from(config), name));
        self
    }

    /// Sends `request` (its URI in origin form, its `Host` set) on an idle connection, or on a
    /// new one when none is idle or every idle one turns out closed.
    pub(crate) async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Lease<'_>), SendError> {
        while let Some(mut sender) = self.checkout().await {
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, self.lease(sender))),
                // The peer closed this connection before the request went out (its idle
                // timeout, a restart): nothing was sent, so the next connection may have it.
                Err(mut e) => match e.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(SendError::Http(e.into_error())),
                },
            }
        }
        let mut sender = self.connect().await?;
        let response = sender.send_request(request).await?;
        Ok((response, self.lease(sender)))
    }

    /// How many connections are idle now.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn lease(&self, sender: Sender) -> Lease<'_> {
        Lease {
            connections: self,
            sender,
        }
    }

    /// The most recently used idle connection that is still open, ready for a request.
    async fn checkout(&self) -> Option<Sender> {
        loop {
            let Idle { mut sender, since } = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()?;
            if sender.is_closed() || since.elapsed() >= self.idle_timeout {
                continue; // dropping the sender ends its connection
            }
            // Ready as soon as the connection's task has finished with the last response,
            // which it has usually done by now; an error means the connection is gone.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self) -> Result<Sender, SendError> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|source| SendError::Connect {
                authority: self.authority.clone(),
                source,
            })?;
        // Requests are small and latency-bound; Nagle would hold the request line back.
        let _ = stream.set_nodelay(true);
        let Some((connector, name)) = &self.tls else {
            return handshake(stream).await;
        };
        let session = connector
            .connect(name.clone(), stream)
            .await
            .map_err(|source| SendError::Tls {
                authority: self.authority.clone(),
                source,
            })?;
        handshake(session).await
    }
}

/// Starts HTTP/1.1 on an open connection, plain or TLS.
async fn handshake<S>(stream: S) -> Result<Sender, SendError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    // The connection's task ends when the peer closes it or every sender is dropped.
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "peer connection ended with an error");
        }
    });
    Ok(sender)
}

impl Lease<'_> {
    /// Puts the connection back for the next request, unless enough are idle already.
    pub(crate) fn release(self) {
        let mut idle = self
            .connections
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.connections.max_idle {
            idle.push(Idle {
                sender: self.sender,
                since: Instant::now(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use tokio::net::TcpListener;

    use super::*;

    /// A server on loopback that answers every request with `ok`, adding `Connection: close`
    /// when `close` is set; returns its address and the count of connections it accepted.
    async fn server(close: bool) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let service = service_fn(move |_request| async move {
                    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                    if close {
                        response
                            .headers_mut()
                            .insert(http::header::CONNECTION, "close".parse().unwrap());
                    }
                    Ok::<_, Infallible>(response)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        (addr, accepted)
    }

    /// A pool for `addr` keeping up to `max_idle` connections for a minute.
    fn pool(addr: SocketAddr, max_idle: usize) -> Connections {
        Connections::new(addr.to_string(), max_idle, Duration::from_secs(60))
    }

    fn request(addr: SocketAddr) -> Request<Full<Bytes>> {
        Request::builder()
            .uri("/x")
            .header(http::header::HOST, addr.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap()
    }

    /// Sends one request, reads the body whole and releases the connection.
    async fn exchange(connections: &Connections, addr: SocketAddr) -> Bytes {
        let (response, lease) = connections.send(request(addr)).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        lease.release();
        body
    }

    #[tokio::test]
    async fn sequential_requests_share_one_connection() {
        let (addr, accepted) = server(false).await;
        let connections = pool(addr, 4);
        for _ in 0..10 {
            assert_eq!(exchange(&connections, addr).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(connections.idle(), 1);
    }

    #[tokio::test]
    async fn connections_the_peer_closed_are_replaced() {
        let (addr, accepted) = server(true).await;
        let connections = pool(addr, 4);
        for _ in 0..5 {
            assert_eq!(exchange(&connections, addr).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_connection_not_released_is_closed_not_reused() {
        let (addr, accepted) = server(false).await;
        let connections = pool(addr, 4);
        let (_response, lease) = connections.send(request(addr)).await.unwrap();
        drop(lease); // as after a body cut short
        assert_eq!(connections.idle(), 0);
        assert_eq!(exchange(&connections, addr).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn no_more_than_max_idle_connections_are_kept() {
        let (addr, accepted) = server(false).await;
        let connections = pool(addr, 2);
        let mut leases = Vec::new();
        for _ in 0..3 {
            let (response, lease) = connections.send(request(addr)).await.unwrap();
            response.into_body().collect().await.unwrap();
            leases.push(lease);
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            3,
            "all three were busy at once"
        );
        leases.into_iter().for_each(Lease::release);
        assert_eq!(connections.idle(), 2);
    }

    #[tokio::test]
    async fn an_expired_idle_connection_is_not_reused() {
        let (addr, accepted) = server(false).await;
        let connections = Connections::new(addr.to_string(), 4, Duration::ZERO);
        exchange(&connections, addr).await;
        exchange(&connections, addr).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_address() {
        // Bound and dropped: nothing listens there any more.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let connections = pool(addr, 4);
        let error = connections.send(request(addr)).await.err().unwrap();
        assert!(matches!(error, SendError::Connect { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot connect to {addr}: "))
        );
    }
}
