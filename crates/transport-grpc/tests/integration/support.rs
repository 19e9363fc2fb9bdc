//! One node serving the peer service on a loopback port, and pools to call it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use geecache_group::{
    Group, LoadError, Loaded, PeerGetter, PeerPicker, Registry, Rejected, getter_fn,
};
use geecache_transport_grpc::{GrpcPool, PeerService};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub(crate) const GROUP: &str = "g";
pub(crate) const TOKEN: &str = "s3cret";

/// A node: one group whose loader answers `value-of-{key}`, `missing*` not found,
/// `bad*` rejected, `fail*` failed.
pub(crate) struct Node {
    pub(crate) url: String,
    pub(crate) group: Arc<Group>,
    pub(crate) loads: Arc<AtomicUsize>,
    /// Connections the node has accepted.
    pub(crate) connections: Arc<AtomicUsize>,
    server: JoinHandle<()>,
}

impl Node {
    pub(crate) async fn start(token: Option<&str>) -> Node {
        let registry = Registry::new();
        let loads = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&loads);
        let group = Group::builder(GROUP)
            .register(&registry)
            .getter(getter_fn(move |key: String| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    if key.starts_with("missing") {
                        Err(LoadError::NotFound)
                    } else if key.starts_with("bad") {
                        Err(LoadError::Rejected(Rejected::new("bad keys are refused")))
                    } else if key.starts_with("fail") {
                        Err(LoadError::failed("the source is down"))
                    } else if key.starts_with("ttl") {
                        Ok(Loaded::from(format!("value-of-{key}"))
                            .with_ttl(Duration::from_secs(60)))
                    } else {
                        Ok(Loaded::from(format!("value-of-{key}")))
                    }
                }
            }))
            .build()
            .unwrap();
        let service = PeerService::builder(registry)
            .max_key_bytes(64)
            .max_message_bytes(1 << 20)
            .peer_token(token.map(str::to_owned))
            .build()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = service.into_router();
        let connections = Arc::new(AtomicUsize::new(0));
        let counting = Counting {
            inner: listener,
            accepted: Arc::clone(&connections),
        };
        let server = tokio::spawn(async move {
            let _ = axum::serve(counting, app).await;
        });
        Node {
            url,
            group,
            loads,
            connections,
            server,
        }
    }

    /// A peer getter for this node, from a pool of a node at `http://127.0.0.1:1`.
    pub(crate) fn peer(&self, token: Option<&str>) -> Arc<dyn PeerGetter> {
        peer_at(&self.url, token, Duration::from_secs(20))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub(crate) fn peer_at(url: &str, token: Option<&str>, timeout: Duration) -> Arc<dyn PeerGetter> {
    let pool = GrpcPool::builder("http://127.0.0.1:1")
        .peer_token(token.map(str::to_owned))
        .timeout(timeout)
        .build()
        .unwrap();
    pool.set_peers(["http://127.0.0.1:1", url]).unwrap();
    pool.all_peers().pop().unwrap()
}

/// A listener that counts the connections it accepts.
struct Counting {
    inner: TcpListener,
    accepted: Arc<AtomicUsize>,
}

impl axum::serve::Listener for Counting {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok(accepted) = self.inner.accept().await {
                self.accepted.fetch_add(1, Ordering::SeqCst);
                return accepted;
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
