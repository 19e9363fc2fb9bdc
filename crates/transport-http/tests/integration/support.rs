//! A loopback cluster of real nodes in this process, a recording loader, and a small client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use geecache_group::{Group, LoadError, Loaded, PeerPicker, Registry, Rejected};
use geecache_transport_http::{HttpPool, PeerObserver, PeerOutcome, RouterConfig, router, serve};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

/// The group every node serves.
pub(crate) const GROUP: &str = "g";

/// Long enough never to fire on a loaded machine: tests that want a timeout set their own.
pub(crate) const PATIENT: Duration = Duration::from_secs(20);

/// The value a loader returns for `key` while the cluster is at `generation`.
pub(crate) fn value_of(key: &str, generation: u64) -> String {
    format!("value-of-{key}@{generation}")
}

/// One call of a loader: which node loaded which key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Load {
    pub(crate) node: String,
    pub(crate) key: String,
}

/// Holds loads of keys starting with `slow` until released, and says when one has started.
#[derive(Clone)]
pub(crate) struct Gate {
    entered: mpsc::UnboundedSender<String>,
    release: Arc<Semaphore>,
}

pub(crate) struct GateControl {
    pub(crate) entered: mpsc::UnboundedReceiver<String>,
    release: Arc<Semaphore>,
}

impl GateControl {
    /// Lets `n` held loads go on.
    pub(crate) fn release(&self, n: usize) {
        self.release.add_permits(n);
    }

    /// Waits (bounded) until a held load has started; returns its key.
    pub(crate) async fn next_entered(&mut self) -> String {
        tokio::time::timeout(PATIENT, self.entered.recv())
            .await
            .expect("a load entered the gate in time")
            .expect("the gate is still open")
    }
}

pub(crate) fn gate() -> (Gate, GateControl) {
    let (tx, rx) = mpsc::unbounded_channel();
    let release = Arc::new(Semaphore::new(0));
    (
        Gate {
            entered: tx,
            release: Arc::clone(&release),
        },
        GateControl {
            entered: rx,
            release,
        },
    )
}

/// What every node of a cluster shares: the log of loads and the data's generation.
#[derive(Clone, Default)]
pub(crate) struct World {
    pub(crate) loads: Arc<Mutex<Vec<Load>>>,
    pub(crate) generation: Arc<AtomicU64>,
}

impl World {
    pub(crate) fn loads(&self) -> Vec<Load> {
        self.loads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn loads_of(&self, key: &str) -> Vec<String> {
        self.loads()
            .into_iter()
            .filter(|l| l.key == key)
            .map(|l| l.node)
            .collect()
    }

    /// Changes the source of truth: every key's value is new from now on.
    pub(crate) fn bump(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

/// Keys: `missing*` are not found, `fail*` fail, `ttl*` live 60 s, `echo*`... and everything
/// else is `value_of(key, generation)`. `slow*` wait at the node's gate if it has one.
#[derive(Clone)]
pub(crate) struct Loader {
    pub(crate) node: String,
    pub(crate) world: World,
    pub(crate) gate: Option<Gate>,
}

impl geecache_group::Getter for Loader {
    async fn get(&self, key: &str) -> Result<Loaded, LoadError> {
        self.world
            .loads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Load {
                node: self.node.clone(),
                key: key.to_owned(),
            });
        if key.starts_with("slow")
            && let Some(gate) = &self.gate
        {
            let _ = gate.entered.send(key.to_owned());
            let permit = gate.release.acquire().await.expect("gate open");
            permit.forget();
        }
        if key.starts_with("missing") {
            return Err(LoadError::NotFound);
        }
        if key.starts_with("fail") {
            return Err(LoadError::failed(format!("the source is down for {key}")));
        }
        if key.starts_with("deny") {
            return Err(Rejected::new(format!("the source refuses {key}")).into());
        }
        let value = Loaded::from(value_of(key, self.world.generation()));
        if key.starts_with("ttl") {
            return Ok(value.with_ttl(Duration::from_secs(60)));
        }
        Ok(value)
    }

    /// Keys starting with `bad` are refused by their text alone, before any cache.
    fn check_key(&self, key: &str) -> Result<(), Rejected> {
        match key.starts_with("bad") {
            true => Err(Rejected::new("keys may not start with 'bad'")),
            false => Ok(()),
        }
    }
}

/// Records the outcome of every peer fetch.
#[derive(Default)]
pub(crate) struct Outcomes(Mutex<Vec<(String, PeerOutcome)>>);

impl Outcomes {
    pub(crate) fn all(&self) -> Vec<(String, PeerOutcome)> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl PeerObserver for Outcomes {
    fn on_peer_request(&self, peer: &str, outcome: PeerOutcome, _elapsed: Duration) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((peer.to_owned(), outcome));
    }
}

#[derive(Clone)]
pub(crate) struct Options {
    pub(crate) nodes: usize,
    pub(crate) hot_admission: u32,
    /// Admit hot copies by the owner's rate, at this threshold, instead of `hot_admission`.
    pub(crate) hot_qps: Option<f64>,
    /// What the servers require.
    pub(crate) server_token: Option<String>,
    /// What the pools send.
    pub(crate) pool_token: Option<String>,
    /// The groups' peer timeout.
    pub(crate) timeout: Duration,
    pub(crate) max_response_bytes: usize,
    /// The pools' budget of peer answer bytes being received at once.
    pub(crate) max_bytes_in_flight: usize,
    /// Nodes (by index) whose loaders hold `slow*` keys at a gate.
    pub(crate) gated: Vec<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 3,
            hot_admission: 0,
            hot_qps: None,
            server_token: None,
            pool_token: None,
            timeout: PATIENT,
            max_response_bytes: 64 << 20,
            max_bytes_in_flight: usize::MAX,
            gated: Vec::new(),
        }
    }
}

pub(crate) struct Node {
    pub(crate) url: String,
    pub(crate) group: Arc<Group>,
    pub(crate) pool: Arc<HttpPool>,
    pub(crate) outcomes: Arc<Outcomes>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Node {
    /// Kills the node as a crash would: connections drop mid-request, the port stops answering.
    pub(crate) fn kill(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// Stops the node gracefully and waits (bounded) for it.
    pub(crate) async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(PATIENT, server)
                .await
                .expect("server stopped in time")
                .expect("server task did not panic")
                .expect("server returned Ok");
        }
    }

    pub(crate) fn api(&self, key: &str) -> String {
        format!(
            "{}/api/{GROUP}/{}",
            self.url,
            geecache_transport_http::path::encode(key)
        )
    }

    pub(crate) fn peer_route(&self, key: &str) -> String {
        format!(
            "{}/_geecache/{GROUP}/{}",
            self.url,
            geecache_transport_http::path::encode(key)
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Node>,
    pub(crate) world: World,
    pub(crate) gates: Vec<Option<GateControl>>,
}

impl Cluster {
    pub(crate) async fn start(options: Options) -> Cluster {
        let mut listeners = Vec::new();
        for _ in 0..options.nodes {
            listeners.push(loopback().await);
        }
        let urls: Vec<String> = listeners
            .iter()
            .map(|l| format!("http://{}", l.local_addr().expect("bound")))
            .collect();
        let world = World::default();
        let mut nodes = Vec::new();
        let mut gates = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let url = urls[i].clone();
            let outcomes = Arc::new(Outcomes::default());
            let pool = HttpPool::builder(url.as_str())
                .max_response_bytes(options.max_response_bytes)
                .max_bytes_in_flight(options.max_bytes_in_flight)
                .peer_token(options.pool_token.clone())
                .observer(outcomes.clone())
                .build()
                .expect("valid pool");
            pool.set_peers(&urls).expect("valid peers");
            let (gate, control) = if options.gated.contains(&i) {
                let (g, c) = gate();
                (Some(g), Some(c))
            } else {
                (None, None)
            };
            gates.push(control);
            let registry = Registry::new();
            let mut group = Group::builder(GROUP).hot_admission(options.hot_admission);
            if let Some(qps) = options.hot_qps {
                group = group.hot_qps(qps);
            }
            let group = group
                .register(&registry)
                .peer_timeout(options.timeout)
                .peers(pool.clone())
                .getter(Loader {
                    node: url.clone(),
                    world: world.clone(),
                    gate,
                })
                .build()
                .expect("valid group");
            let app = router(
                RouterConfig::new(registry)
                    .pool(pool.clone())
                    .peer_token(options.server_token.clone()),
            );
            let (stop, stopped) = oneshot::channel::<()>();
            let server = tokio::spawn(serve(listener, app, async {
                let _ = stopped.await;
            }));
            nodes.push(Node {
                url,
                group,
                pool,
                outcomes,
                server: Some(server),
                stop: Some(stop),
            });
        }
        Cluster {
            nodes,
            world,
            gates,
        }
    }

    /// The index of the node that owns `key`; every node must agree.
    pub(crate) fn owner(&self, key: &str) -> usize {
        let owners: Vec<String> = self
            .nodes
            .iter()
            .map(|n| n.pool.owner_of(key).expect("non-empty ring"))
            .collect();
        assert!(
            owners.windows(2).all(|w| w[0] == w[1]),
            "rings disagree: {owners:?}"
        );
        self.nodes
            .iter()
            .position(|n| n.url == owners[0])
            .expect("owner is a node")
    }

    /// The first key `prefix{i}` owned by node `owner` (searching a bounded range).
    /// The index of the node that `asker` asks for `key` once `failed` failed it: the
    /// stand-in every node picks (`asker` itself when it is the stand-in).
    pub(crate) fn stand_in(&self, asker: usize, key: &str, failed: usize) -> usize {
        let pick = self.nodes[asker]
            .pool
            .pick_after(key, &self.nodes[failed].url);
        pick.peer.map_or(asker, |peer| {
            (self.nodes.iter())
                .position(|n| n.url == peer.name())
                .expect("a member")
        })
    }

    /// A key with `prefix` that `owner` owns and whose stand-in, for `asker`, is `stand_in`.
    pub(crate) fn key_standing_in(
        &self,
        owner: usize,
        stand_in: usize,
        asker: usize,
        prefix: &str,
    ) -> String {
        (0..10_000)
            .map(|i| format!("{prefix}{i}"))
            .find(|k| self.owner(k) == owner && self.stand_in(asker, k, owner) == stand_in)
            .expect("some key in range has every order")
    }

    pub(crate) fn key_owned_by(&self, owner: usize, prefix: &str) -> String {
        (0..10_000)
            .map(|i| format!("{prefix}{i}"))
            .find(|k| self.owner(k) == owner)
            .expect("some key in range is owned by every node")
    }
}

pub(crate) async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port")
}

/// An answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub(crate) fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub(crate) async fn send(method: Method, url: &str, headers: &[(&str, &str)]) -> Answer {
    exchange(method, url, headers, Vec::new()).await
}

/// A request with `body` (and no other header).
pub(crate) async fn send_body(method: Method, url: &str, body: Vec<u8>) -> Answer {
    exchange(method, url, &[], body).await
}

pub(crate) async fn exchange(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = (request.body(Full::new(Bytes::from(body)))).expect("valid request");
    let work = async {
        let response = client().request(request).await.expect("node answers");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("whole body").to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    };
    tokio::time::timeout(PATIENT, work)
        .await
        .expect("answered in time")
}

pub(crate) async fn get(url: &str) -> Answer {
    send(Method::GET, url, &[]).await
}
