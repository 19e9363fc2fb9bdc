//! `GET /metrics`: the node's figures in the OpenMetrics text format, or the Prometheus text
//! format 0.0.4 for a scraper that asks for it ([`format`](mod@format)).
//!
//! Two kinds of figures live here:
//!
//! - **Read at scrape time**: every counter of every group's [`geecache_group::Stats`], and
//!   the caches' bytes and items. The group already counts them; copying them into
//!   Prometheus counters on every request would count twice and drift. A custom
//!   [`Collector`] snapshots `Group::stats()` when Prometheus asks instead.
//! - **Observed as they happen**: latency histograms, which no snapshot can rebuild: peer
//!   requests (through the pool's [`PeerObserver`] hook, which the HTTP and the gRPC pool
//!   both take, so the series are the same whichever the transport), loader calls (a
//!   [`TimedGetter`] wrapped around each group's source) and client-route requests ([`api`],
//!   a middleware).
//!
//! The process's own figures (CPU, memory, descriptors) are read from `/proc` at scrape time
//! ([`process`]).
//!
//! Each node has its own registry, not a process-wide one, so the demo's three in-process
//! nodes report three sets of figures.

pub(crate) mod api;
mod format;
#[cfg(test)]
mod lint;
mod process;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use geecache_group::{
    CacheStats, Cluster, FieldKind, Getter, LoadError, Loaded, PeerObserver, PeerOutcome,
    PeerState, Rejected, Stats,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

pub(crate) use api::ApiMetrics;
pub(crate) use format::Format;

/// Labels of the peer request histogram: the peer's URL and how the request ended.
type PeerLabels = [(&'static str, String); 2];
/// The label sets the peer request histogram has series for.
type SeenPeers = Arc<Mutex<HashSet<PeerLabels>>>;
/// Labels of the loader histogram: the group and how the load ended.
type LoadLabels = [(&'static str, String); 2];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// 0.5 ms to about 16 s in doublings: a loopback peer hit lands in the first buckets, a slow
/// origin or a timed-out peer in the last.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_5, 2.0, 16))
}

/// One node's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// The peers whose health is reported, once the node has its pool.
    peers_health: Arc<OnceLock<Arc<Cluster>>>,
    peer_requests: HistogramFamily<PeerLabels>,
    /// Which peers `peer_requests` has series for, so that those of departed peers can go.
    seen_peers: SeenPeers,
    loads: HistogramFamily<LoadLabels>,
    peers: Gauge,
    api: ApiMetrics,
    /// Failed TLS handshakes on the serving port, by reason.
    handshake_failures: Family<[(&'static str, &'static str); 1], Counter>,
}

impl Metrics {
    /// Metrics for a node whose groups live in `groups`.
    pub(crate) fn new(groups: geecache_group::Registry) -> Self {
        let mut registry = Registry::default();
        let peer_requests: HistogramFamily<PeerLabels> =
            Family::new_with_constructor(latency_histogram);
        let loads: HistogramFamily<LoadLabels> = Family::new_with_constructor(latency_histogram);
        let peers = Gauge::default();
        registry.register_with_unit(
            "geecache_peer_request_duration",
            "Time to fetch one key from a peer, by peer and outcome",
            Unit::Seconds,
            peer_requests.clone(),
        );
        registry.register_with_unit(
            "geecache_load_duration",
            "Time the local source took to load one key, by group and outcome",
            Unit::Seconds,
            loads.clone(),
        );
        registry.register(
            "geecache_peers",
            "Members of the hash ring, this node included",
            peers.clone(),
        );
        let api = ApiMetrics::register(&mut registry);
        let handshake_failures = Family::<[(&'static str, &'static str); 1], Counter>::default();
        registry.register(
            "geecache_tls_handshake_failures",
            "TLS handshakes refused or failed on the serving port, by reason: expired, \
             unknown_ca, bad_name, no_client_cert, plaintext (plain HTTP sent to the TLS port), \
             timeout, other",
            handshake_failures.clone(),
        );
        registry.register_collector(Box::new(GroupCollector { groups }));
        registry.register_collector(Box::new(BuildInfo));
        registry.register_collector(Box::new(process::ProcessCollector));
        let peers_health = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(HealthCollector {
            pool: Arc::clone(&peers_health),
        }));
        Metrics {
            registry,
            peers_health,
            peer_requests,
            seen_peers: SeenPeers::default(),
            loads,
            peers,
            api,
            handshake_failures,
        }
    }

    /// The hook to give a TLS server: counts each failed handshake by its reason. Asking for
    /// it makes every reason's series, at zero, so a node serving TLS exports them all from
    /// the start (`increase()` over a series that appears with its first failure misses it).
    pub(crate) fn handshake_observer(&self) -> geecache_transport_http::tls::HandshakeObserver {
        for reason in geecache_transport_http::HandshakeFailure::ALL {
            let _ = (self.handshake_failures).get_or_create(&[("reason", reason.as_str())]);
        }
        let failures = self.handshake_failures.clone();
        Arc::new(move |reason: geecache_transport_http::HandshakeFailure| {
            failures.get_or_create(&[("reason", reason.as_str())]).inc();
        })
    }

    /// The hook to give the peer pool.
    pub(crate) fn peer_observer(&self) -> Arc<dyn PeerObserver> {
        Arc::new(PeerMetrics {
            requests: self.peer_requests.clone(),
            seen: Arc::clone(&self.seen_peers),
        })
    }

    /// The client routes' counters, for the middleware ([`api::observe`]) around the router.
    pub(crate) fn api(&self) -> ApiMetrics {
        self.api.clone()
    }

    /// Wraps a group's loader so each call is timed.
    pub(crate) fn timed<G: Getter>(&self, group: &str, getter: G) -> TimedGetter<G> {
        let for_outcome = |outcome: &str| {
            self.loads.get_or_create_owned(&[
                ("group", group.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
        };
        TimedGetter {
            inner: getter,
            ok: for_outcome("ok"),
            not_found: for_outcome("not_found"),
            rejected: for_outcome("rejected"),
            error: for_outcome("error"),
        }
    }

    /// Reports the health of the peers of `cluster` (the pool's, whatever its transport) from
    /// now on (the pool is built after the metrics, since it takes their peer observer).
    pub(crate) fn watch_peers(&self, cluster: Arc<Cluster>) {
        let _ = self.peers_health.set(cluster);
    }

    /// Records how many ring members there are (called by the membership source).
    pub(crate) fn set_peer_count(&self, n: usize) {
        self.peers.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The exposition for a scrape that sent `Accept: accept`: its content type and text.
    pub(crate) fn render(&self, accept: Option<&str>) -> (&'static str, String) {
        let format = Format::negotiate(accept);
        let text = match format {
            Format::OpenMetrics => self.encode(),
            Format::PrometheusText => format::to_prometheus_text(&self.encode()),
        };
        (format.content_type(), text)
    }

    /// The OpenMetrics exposition text, ending with `# EOF`.
    pub(crate) fn encode(&self) -> String {
        self.forget_departed_peers();
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error would mean a bug in a collector,
        // and a partial scrape is more useful than none.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
            let _ = writeln!(out, "# EOF");
        }
        out
    }
}

impl Metrics {
    /// Drops the peer request series of peers that are no longer members, so that a cluster
    /// whose members come and go (every deploy, with DNS or etcd) does not grow the
    /// exposition forever. Done at scrape time, when the member list is read anyway; a fetch
    /// from a departed peer that finishes later makes its series again, until the next scrape.
    fn forget_departed_peers(&self) {
        let Some(pool) = self.peers_health.get() else {
            return;
        };
        let members: HashSet<String> = pool.health().into_iter().map(|p| p.name).collect();
        let mut seen = self
            .seen_peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        seen.retain(|labels| {
            let keep = members.contains(&labels[0].1);
            if !keep {
                self.peer_requests.remove(labels);
            }
            keep
        });
    }
}

/// Feeds the peer request histogram from the pool.
#[derive(Debug)]
struct PeerMetrics {
    requests: HistogramFamily<PeerLabels>,
    seen: SeenPeers,
}

impl PeerObserver for PeerMetrics {
    fn on_peer_request(&self, peer: &str, outcome: PeerOutcome, elapsed: Duration) {
        let labels = [
            ("peer", peer.to_owned()),
            ("outcome", outcome.as_str().to_owned()),
        ];
        self.requests
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if !seen.contains(&labels) {
            seen.insert(labels);
        }
    }
}

/// A loader that records how long each call took, by outcome.
#[derive(Debug)]
pub(crate) struct TimedGetter<G> {
    inner: G,
    ok: Histogram,
    not_found: Histogram,
    rejected: Histogram,
    error: Histogram,
}

impl<G: Getter> Getter for TimedGetter<G> {
    async fn get(&self, key: &str) -> Result<Loaded, LoadError> {
        let start = Instant::now();
        let result = self.inner.get(key).await;
        let histogram = match &result {
            Ok(_) => &self.ok,
            Err(LoadError::NotFound) => &self.not_found,
            Err(LoadError::Rejected(_)) => &self.rejected,
            Err(_) => &self.error,
        };
        histogram.observe(start.elapsed().as_secs_f64());
        result
    }

    fn check_key(&self, key: &str) -> Result<(), Rejected> {
        self.inner.check_key(key)
    }
}

/// Reads every group's counters when scraped.
#[derive(Debug)]
struct GroupCollector {
    groups: geecache_group::Registry,
}

/// A group's figures at one scrape: its counters and its budget.
struct Snapshot {
    stats: Stats,
    limit: u64,
}

fn widen(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn metric_type(kind: FieldKind) -> MetricType {
    match kind {
        FieldKind::Counter => MetricType::Counter,
        _ => MetricType::Gauge,
    }
}

fn encode_value(
    encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
    kind: MetricType,
    value: u64,
) -> Result<(), std::fmt::Error> {
    match kind {
        MetricType::Counter => {
            encoder.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&value, None)
        }
        _ => encoder.encode_gauge(&value),
    }
}

impl Collector for GroupCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        // One snapshot per group per scrape, so all figures of a group agree with each other
        // as far as `Group::stats` allows.
        let snapshots: Vec<(String, Snapshot)> = self
            .groups
            .all()
            .iter()
            .map(|g| {
                (
                    g.name().to_owned(),
                    Snapshot {
                        stats: g.stats(),
                        limit: widen(g.cache_bytes()),
                    },
                )
            })
            .collect();
        if snapshots.is_empty() {
            return Ok(());
        }
        // Every counter the group declares, named after its field: `gets` becomes
        // `geecache_group_gets`. The field table is the one list; nothing here repeats it.
        for field in Stats::FIELDS {
            let name = format!("geecache_group_{}", field.name());
            let kind = metric_type(field.kind());
            let mut metric = encoder.encode_descriptor(&name, field.help(), None, kind)?;
            for (group, snapshot) in &snapshots {
                let labels = [("group", group.as_str())];
                let mut sample = metric.encode_family(&labels)?;
                encode_value(&mut sample, kind, field.read(&snapshot.stats))?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "geecache_group_cache_limit_bytes",
            "Byte budget of the main and hot caches together (0: unbounded)",
            None,
            MetricType::Gauge,
        )?;
        for (group, snapshot) in &snapshots {
            let labels = [("group", group.as_str())];
            let mut sample = metric.encode_family(&labels)?;
            encode_value(&mut sample, MetricType::Gauge, snapshot.limit)?;
        }
        for field in CacheStats::FIELDS {
            let name = format!("geecache_cache_{}", field.name());
            let kind = metric_type(field.kind());
            let mut metric = encoder.encode_descriptor(&name, field.help(), None, kind)?;
            for (group, snapshot) in &snapshots {
                for (cache, stats) in [("main", &snapshot.stats.main), ("hot", &snapshot.stats.hot)]
                {
                    let labels = [("group", group.as_str()), ("cache", cache)];
                    let mut sample = metric.encode_family(&labels)?;
                    encode_value(&mut sample, kind, field.read(stats))?;
                }
            }
        }
        Ok(())
    }
}

/// Each peer's circuit, read at scrape time: a peer that left the cluster leaves the series.
#[derive(Debug)]
struct HealthCollector {
    pool: Arc<OnceLock<Arc<Cluster>>>,
}

impl Collector for HealthCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(pool) = self.pool.get() else {
            return Ok(());
        };
        let health = pool.health();
        if health.is_empty() {
            return Ok(());
        }
        let mut metric = encoder.encode_descriptor(
            "geecache_peer_state",
            "1 for the state each peer's circuit is in (closed: used; open: skipped, its keys go \
             to the next member; half-open: being probed), 0 for the others",
            None,
            MetricType::Gauge,
        )?;
        for peer in &health {
            for state in [PeerState::Closed, PeerState::Open, PeerState::HalfOpen] {
                let labels = [("peer", peer.name.as_str()), ("state", state.as_str())];
                let mut sample = metric.encode_family(&labels)?;
                encode_value(
                    &mut sample,
                    MetricType::Gauge,
                    u64::from(peer.state == state),
                )?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "geecache_peer_circuit_openings",
            "Times each peer's circuit opened since the peer joined",
            None,
            MetricType::Counter,
        )?;
        for peer in &health {
            let labels = [("peer", peer.name.as_str())];
            let mut sample = metric.encode_family(&labels)?;
            encode_value(&mut sample, MetricType::Counter, peer.openings)?;
        }
        Ok(())
    }
}

/// `geecache_build_info{version="..."} 1`, the Prometheus convention for build facts: a
/// gauge at 1 whose labels carry the facts, joinable onto any other series.
#[derive(Debug)]
struct BuildInfo;

impl Collector for BuildInfo {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new(1_i64);
        let mut metric = encoder.encode_descriptor(
            "geecache_build_info",
            "Build facts of this binary, as labels; the value is always 1",
            None,
            gauge.metric_type(),
        )?;
        let labels = [("version", env!("CARGO_PKG_VERSION"))];
        let sample = metric.encode_family(&labels)?;
        gauge.encode(sample)
    }
}
