//! The effective configuration of `geecache serve`: flags over `GEECACHE_*` variables over the
//! config file over defaults, checked once at start.
//!
//! Everything is validated before anything is bound or spawned, so a bad setting stops the
//! process with one precise message and exit status 2, instead of failing later on the first
//! request that happens to touch it.
//!
//! - `layers.rs`: which layer a value comes from, and the names (flag, variable, file key)
//!   an error gives it, read off clap's definition of the arguments.
//! - `values.rs`: checks of single settings; peer URLs and the base path use the transport's
//!   own rules.
//! - `groups.rs`: the group-spec language. `etcd.rs`: the etcd settings. `dns.rs`: the DNS
//!   membership settings.
//! - `file.rs`: the TOML file as written. `units.rs`: sizes and durations.
//! - `descriptors.rs`: the open-file limit, which the default connection limit comes from.
//! - `tls.rs`: the TLS files and mode, and the rule that a cluster is all `https://` or all
//!   `http://`.

mod descriptors;
mod dns;
pub(crate) mod error;
mod etcd;
pub(crate) mod file;
mod groups;
mod hot;
mod layers;
mod tls;
pub(crate) mod units;
mod values;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) use error::ConfigError;
use file::FileConfig;
use geecache_consistenthash::Preset;
use geecache_transport_http::path::Decoding;
pub(crate) use hot::{HotConfig, Qps};
use layers::{Layers, ids};
use units::{SIZE_FORMS, format_duration, format_size, parse_size};
use values::{
    checked_base_path, checked_key_encoding, checked_log_level, checked_max_batch_bytes,
    checked_max_batch_keys, checked_max_connections, checked_peers, checked_replicas, checked_ring,
    checked_threads, checked_transport, duration_or_zero, duration_setting, node_url,
    positive_size, token_setting,
};

use crate::cli::ServeArgs;
use crate::node::Transport;
use crate::tls::TlsFiles;
use tls::{check_schemes, resolve_tls};

/// Defaults, named so docs and `--help` can point at one place.
pub(crate) mod defaults {
    use std::time::Duration;

    /// Where a node listens unless told otherwise.
    pub(crate) const LISTEN: &str = "127.0.0.1:8001";
    /// groupcache's base path, with our name.
    pub(crate) const BASE_PATH: &str = "/_geecache/";
    /// How long after a change of membership keys are taken from their previous owner.
    pub(crate) const HANDOFF: Duration = Duration::from_secs(60);
    /// The ring: even shares. Go groupcache's is for mixed clusters only.
    pub(crate) const RING: geecache_consistenthash::Preset =
        geecache_consistenthash::Preset::Balanced;
    /// Per-group cache budget.
    pub(crate) const CACHE_BYTES: u64 = 64 << 20;
    /// How long to wait for a peer before asking the key's next member or loading locally.
    pub(crate) const PEER_TIMEOUT: Duration = Duration::from_secs(1);
    /// Longest key accepted.
    pub(crate) const MAX_KEY_BYTES: u64 = 64 << 10;
    /// How long to wait for an HTTP origin.
    pub(crate) const ORIGIN_TIMEOUT: Duration = Duration::from_secs(5);
    /// Largest value a `dir:` or `http:` source returns.
    pub(crate) const MAX_VALUE_BYTES: u64 = 64 << 20;
    /// How long a shutdown waits for in-flight requests.
    pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
    /// Log filter.
    pub(crate) const LOG_LEVEL: &str = "info";
    /// Bytes of peer answers a node receives at once, over all peers: four answers of the
    /// largest size a peer may send.
    pub(crate) const MAX_PEER_BYTES_IN_FLIGHT: u64 = 256 << 20;
    /// Keys in one batch get: the transport's default.
    pub(crate) const MAX_BATCH_KEYS: usize = 1000;
    /// Bytes of a batch get's request body: the transport's default.
    pub(crate) const MAX_BATCH_BYTES: usize = 4 << 20;
    /// Bytes of a value a client sets: the transport's default.
    pub(crate) const MAX_SET_BYTES: usize = 8 << 20;
}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Config {
    /// Where to listen.
    pub(crate) listen: SocketAddr,
    /// The URL peers reach this node at; `None`: `http://` + the bound address.
    pub(crate) self_url: Option<String>,
    /// The cluster's members (this node may or may not be among them).
    pub(crate) peers: Vec<String>,
    /// Membership through etcd instead of a fixed peer list.
    pub(crate) etcd: Option<EtcdConfig>,
    /// Membership through a DNS name's records instead of a fixed peer list.
    pub(crate) dns: Option<DnsConfig>,
    /// Peer route prefix, starting and ending with `/`.
    pub(crate) base_path: String,
    /// The protocol between peers.
    pub(crate) transport: Transport,
    /// The ring that places keys on nodes.
    pub(crate) ring: Preset,
    /// Virtual nodes per node on the ring; 0: the ring's default.
    pub(crate) replicas: usize,
    /// How long after a change of membership keys are taken from their previous owner.
    pub(crate) handoff: Duration,
    /// The groups, sorted by name.
    pub(crate) groups: Vec<GroupConfig>,
    /// Peer request timeout.
    pub(crate) peer_timeout: Duration,
    /// Longest key accepted.
    pub(crate) max_key_bytes: usize,
    /// A `tracing` filter directive.
    pub(crate) log_level: String,
    /// Shared secret for peer and admin routes.
    pub(crate) peer_token: Option<String>,
    /// Secret for client routes.
    pub(crate) api_token: Option<String>,
    /// Bound on the drain at shutdown.
    pub(crate) drain_timeout: Duration,
    /// Runtime worker threads; `None`: one per CPU the process may use.
    pub(crate) threads: Option<usize>,
    /// Most connections open at once; beyond it a connection is answered 503 and closed.
    pub(crate) max_connections: usize,
    /// Most bytes of peer answers received at once, over all peers.
    pub(crate) max_peer_bytes_in_flight: usize,
    /// How the peer route reads a `+` in a key: `query` (a space) or `path` (a plus).
    pub(crate) peer_key_encoding: Decoding,
    /// Most keys in one batch get, from a client or a peer.
    pub(crate) max_batch_keys: usize,
    /// Most bytes in a batch get's request body.
    pub(crate) max_batch_bytes: usize,
    /// Largest value a client may set.
    pub(crate) max_set_bytes: usize,
    /// TLS for every route and every peer; `None`: plain HTTP.
    pub(crate) tls: Option<TlsFiles>,
}

/// Where etcd is and which cluster this node belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EtcdConfig {
    /// etcd client URLs.
    pub(crate) endpoints: Vec<String>,
    /// The cluster name: one path segment.
    pub(crate) cluster: String,
    /// Lease time to live; `None`: the discovery crate's default.
    pub(crate) ttl: Option<Duration>,
}

/// Which DNS name lists the cluster's members, and how it is followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DnsConfig {
    /// `NAME:PORT` (A/AAAA records) or `NAME` (SRV records), already checked.
    pub(crate) target: String,
    /// How often it is looked up again.
    pub(crate) interval: Duration,
    /// The one server to ask; `None`: the system's resolver configuration.
    pub(crate) server: Option<SocketAddr>,
    /// Whether the members are `https://` URLs (the node speaks TLS); records carry no
    /// scheme, the cluster's setting does.
    pub(crate) https: bool,
}

/// One group's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupConfig {
    /// The group's name.
    pub(crate) name: String,
    /// Where its values come from.
    pub(crate) source: SourceSpec,
    /// Cache budget (main + hot), 0 = unbounded.
    pub(crate) cache_bytes: u64,
    /// Default time to live; `None`: values never expire.
    pub(crate) ttl: Option<Duration>,
    /// Timeout of an `http:` origin request.
    pub(crate) origin_timeout: Duration,
    /// Largest value a `dir:` or `http:` source returns.
    pub(crate) max_value_bytes: u64,
    /// Which entries the caches give up first.
    pub(crate) policy: geecache_group::Policy,
    /// What the cache budget counts of each entry.
    pub(crate) charge: geecache_group::Charge,
    /// How long the owner of a key its source does not have answers "not found" without
    /// asking again; `None`: every miss asks.
    pub(crate) negative_ttl: Option<Duration>,
    /// How values fetched from peers are admitted to the hot cache.
    pub(crate) hot: HotConfig,
    /// How long single fetches to one peer gather into one batch request; zero: off.
    pub(crate) peer_batch_window: Duration,
}

/// Where a group's values come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SourceSpec {
    /// The built-in table of synthetic rows.
    Demo,
    /// Files under a directory; the key is the relative path.
    Dir(PathBuf),
    /// An HTTP origin; the key is appended, percent-encoded, to this URL.
    Http(String),
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Demo => f.write_str("demo"),
            SourceSpec::Dir(path) => write!(f, "dir:{}", path.display()),
            SourceSpec::Http(url) => write!(f, "http:{url}"),
        }
    }
}

impl Config {
    /// The effective configuration in one line, secrets redacted, for the start-up log.
    pub(crate) fn summary(&self) -> String {
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|g| {
                let mut s = format!(
                    "{}={} cache={}",
                    g.name,
                    g.source,
                    format_size(g.cache_bytes)
                );
                if let Some(ttl) = g.ttl {
                    s.push_str(&format!(" ttl={}", format_duration(ttl)));
                }
                if g.policy == geecache_group::Policy::Lru {
                    s.push_str(" policy=lru");
                }
                if g.charge == geecache_group::Charge::Memory {
                    s.push_str(" charge=memory");
                }
                if let Some(ttl) = g.negative_ttl {
                    s.push_str(&format!(" negative_ttl={}", format_duration(ttl)));
                }
                match g.hot {
                    HotConfig::Rate(None) => {}
                    HotConfig::Rate(Some(Qps(qps))) => s.push_str(&format!(" hot_qps={qps}")),
                    HotConfig::Random => s.push_str(" hot=random"),
                }
                if !g.peer_batch_window.is_zero() {
                    let window = format_duration(g.peer_batch_window);
                    s.push_str(&format!(" peer_batch_window={window}"));
                }
                s
            })
            .collect();
        let membership = match (&self.etcd, &self.dns) {
            (None, Some(dns)) => format!(
                "peers_dns={} dns_interval={} dns_server={}",
                dns.target,
                format_duration(dns.interval),
                dns.server
                    .map_or_else(|| "system".to_owned(), |s| s.to_string())
            ),
            (None, None) => format!("peers=[{}]", self.peers.join(",")),
            (Some(etcd), _) => format!(
                "etcd=[{}] cluster={} etcd_ttl={}",
                etcd.endpoints.join(","),
                etcd.cluster,
                etcd.ttl
                    .map_or_else(|| "default".to_owned(), format_duration)
            ),
        };
        format!(
            "listen={} self_url={} {} base_path={} transport={} ring={} replicas={} handoff={} groups=[{}] \
             peer_timeout={} max_key_bytes={} log_level={} peer_token={} api_token={} \
             drain_timeout={} threads={} max_connections={} max_peer_bytes_in_flight={} \
             peer_key_encoding={} max_batch_keys={} max_batch_bytes={} max_set_bytes={} tls={}",
            self.listen,
            self.self_url.as_deref().unwrap_or("(from bound address)"),
            membership,
            self.base_path,
            self.transport,
            self.ring,
            match self.replicas {
                0 => self.ring.default_replicas(),
                n => n,
            },
            format_duration(self.handoff),
            groups.join("; "),
            format_duration(self.peer_timeout),
            self.max_key_bytes,
            self.log_level,
            if self.peer_token.is_some() {
                "set"
            } else {
                "unset"
            },
            if self.api_token.is_some() {
                "set"
            } else {
                "unset"
            },
            format_duration(self.drain_timeout),
            self.threads
                .map_or_else(|| "one per CPU".to_owned(), |n| n.to_string()),
            self.max_connections,
            format_size(self.max_peer_bytes_in_flight as u64),
            match self.peer_key_encoding {
                Decoding::Percent => "path",
                _ => "query",
            },
            self.max_batch_keys,
            format_size(self.max_batch_bytes as u64),
            format_size(self.max_set_bytes as u64),
            match &self.tls {
                None => "off".to_owned(),
                Some(tls) => format!(
                    "cert={} key={} ca={} client_auth={}",
                    tls.cert.display(),
                    tls.key.display(),
                    tls.ca.display(),
                    tls.client_auth.as_str()
                ),
            },
        )
    }
}

/// Reads the config file named by `args` (if any), merges it under the flags and variables,
/// and validates the result.
pub(crate) fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
    let (file, file_path) = match &args.config {
        None => (FileConfig::default(), String::new()),
        Some(path) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: shown.clone(),
                message: format!("cannot read it: {e}"),
            })?;
            let file = file::parse(&text).map_err(|message| ConfigError::File {
                path: shown.clone(),
                message,
            })?;
            (file, shown)
        }
    };
    let layers = Layers {
        args,
        file: &file,
        file_path,
    };
    resolve(&layers)
}

/// Parses a config file's text alone, as if only `args` were given (for tests, docs checks and
/// the fuzz targets).
pub(crate) fn from_toml(text: &str, args: &ServeArgs) -> Result<Config, ConfigError> {
    let file = file::parse(text).map_err(|message| ConfigError::File {
        path: "test.toml".into(),
        message,
    })?;
    resolve(&Layers {
        args,
        file: &file,
        file_path: "test.toml".into(),
    })
}

fn resolve(layers: &Layers<'_>) -> Result<Config, ConfigError> {
    let args = layers.args;
    let file = layers.file;

    let listen = match layers.pick(ids::LISTEN, args.listen.as_ref(), file.listen.as_ref()) {
        None => defaults::LISTEN.parse().expect("the default listen address parses"),
        Some((text, field)) => text.trim().parse::<SocketAddr>().map_err(|_| {
            ConfigError::invalid(
                &field,
                &text,
                "not an IP:PORT socket address (host names are not resolved)",
                "expected e.g. 127.0.0.1:8001, 0.0.0.0:8001 or [::1]:8001; port 0 picks a free port",
            )
        })?,
    };

    let self_url = match layers.pick(
        ids::SELF_URL,
        args.self_url.as_ref(),
        file.self_url.as_ref(),
    ) {
        Some((text, field)) => Some(node_url(&text, &field)?),
        None if listen.ip().is_unspecified() => {
            return Err(ConfigError::Missing(format!(
                "--self-url (or self_url) is required when --listen is {listen}: an unspecified \
                 address is not one peers can connect to; give the URL they should use, e.g. \
                 http://10.0.0.5:{}",
                listen.port()
            )));
        }
        None => None,
    };

    let peers = match (&args.peers, &file.peers) {
        (Some(list), _) => checked_peers(list, &layers.cli_field(ids::PEERS))?,
        (None, Some(list)) => checked_peers(list, &layers.file_field(ids::PEERS))?,
        (None, None) => Vec::new(),
    };
    let etcd = etcd::resolve_etcd(layers)?;
    if etcd.is_some() && !peers.is_empty() {
        return Err(ConfigError::Missing(
            "--etcd and --peers (or etcd and peers in the config file) are both set: the member \
             list comes from one place; keep --etcd to follow the live nodes, or --peers for a \
             fixed list"
                .to_owned(),
        ));
    }
    let dns = dns::resolve_dns(layers)?;
    if dns.is_some() && (etcd.is_some() || !peers.is_empty()) {
        let other = if etcd.is_some() { "--etcd" } else { "--peers" };
        return Err(ConfigError::Missing(format!(
            "--peers-dns and {other} (or their keys in the config file) are both set: the member \
             list comes from one place; keep --peers-dns to follow a DNS name (e.g. a Kubernetes \
             headless Service), --etcd to follow nodes registered in etcd, or --peers for a fixed \
             list"
        )));
    }

    let base_path = match layers.pick(
        ids::BASE_PATH,
        args.base_path.as_ref(),
        file.base_path.as_ref(),
    ) {
        None => defaults::BASE_PATH.to_owned(),
        Some((text, field)) => checked_base_path(&text, &field)?,
    };
    let transport = match layers.pick(
        ids::TRANSPORT,
        args.transport.as_ref(),
        file.transport.as_ref(),
    ) {
        None => Transport::Http,
        Some((text, field)) => checked_transport(&text, &field)?,
    };
    let ring = match layers.pick(ids::RING, args.ring.as_ref(), file.ring.as_ref()) {
        None => defaults::RING,
        Some((text, field)) => checked_ring(&text, &field)?,
    };
    // Go groupcache nodes pick owners with groupcache's ring. A node that speaks their
    // protocol with another ring would disagree with them on nearly every key's owner, and
    // both would load and cache it: refuse the mix rather than let it run half-working.
    if base_path == geecache_transport_http::GROUPCACHE_BASE_PATH && ring != Preset::Groupcache {
        return Err(ConfigError::Missing(format!(
            "the base path {base_path} is Go groupcache's protocol, and Go compatibility needs \
             --ring groupcache (GEECACHE_RING=groupcache, or ring = \"groupcache\" in the config \
             file): with the {ring} ring, Go and geecache nodes would pick different owners for \
             almost every key"
        )));
    }
    // Go groupcache nodes speak HTTP only: a gRPC node would ask them in a protocol they do
    // not answer, and every such call would fail over to a local load.
    if base_path == geecache_transport_http::GROUPCACHE_BASE_PATH && transport == Transport::Grpc {
        return Err(ConfigError::Missing(format!(
            "the base path {base_path} is Go groupcache's protocol, and Go nodes speak HTTP only: \
             use --transport http (GEECACHE_TRANSPORT=http, or transport = \"http\" in the \
             config file) beside Go nodes"
        )));
    }
    let replicas = match layers.pick(
        ids::REPLICAS,
        args.replicas.as_ref(),
        file.replicas.as_ref().map(|s| &s.0),
    ) {
        None => 0,
        Some((text, field)) => checked_replicas(&text, &field)?,
    };
    let handoff = match layers.pick(ids::HANDOFF, args.handoff.as_ref(), file.handoff.as_ref()) {
        None => defaults::HANDOFF,
        Some((text, field)) => duration_or_zero(&text, &field)?,
    };

    let peer_timeout = duration_setting(
        layers.pick(
            ids::PEER_TIMEOUT,
            args.peer_timeout.as_ref(),
            file.peer_timeout.as_ref(),
        ),
        defaults::PEER_TIMEOUT,
    )?;
    let drain_timeout = duration_setting(
        layers.pick(
            ids::DRAIN_TIMEOUT,
            args.drain_timeout.as_ref(),
            file.drain_timeout.as_ref(),
        ),
        defaults::DRAIN_TIMEOUT,
    )?;

    let max_key_bytes = match layers.pick(
        ids::MAX_KEY_BYTES,
        args.max_key_bytes.as_ref(),
        file.max_key_bytes.as_ref().map(|s| &s.0),
    ) {
        None => defaults::MAX_KEY_BYTES,
        Some((text, field)) => match parse_size(&text) {
            Some(n) if (1..=1 << 20).contains(&n) => n,
            Some(_) => {
                return Err(ConfigError::invalid(
                    &field,
                    &text,
                    "out of range",
                    "expected between 1 byte and 1MiB (the default is 64KiB)",
                ));
            }
            None => {
                return Err(ConfigError::invalid(
                    &field,
                    &text,
                    "not a size",
                    format!("expected {SIZE_FORMS}"),
                ));
            }
        },
    };

    let log_level = match layers.pick(
        ids::LOG_LEVEL,
        args.log_level.as_ref(),
        file.log_level.as_ref(),
    ) {
        None => defaults::LOG_LEVEL.to_owned(),
        Some((text, field)) => checked_log_level(&text, &field)?,
    };

    let peer_token = token_setting(layers.pick(
        ids::PEER_TOKEN,
        args.peer_token.as_ref(),
        file.peer_token.as_ref(),
    ))?;
    let api_token = token_setting(layers.pick(
        ids::API_TOKEN,
        args.api_token.as_ref(),
        file.api_token.as_ref(),
    ))?;

    let threads = match layers.pick(
        ids::THREADS,
        args.threads.as_ref(),
        file.threads.as_ref().map(|s| &s.0),
    ) {
        None => None,
        Some((text, field)) => Some(checked_threads(&text, &field)?),
    };

    let max_connections = match layers.pick(
        ids::MAX_CONNECTIONS,
        args.max_connections.as_ref(),
        file.max_connections.as_ref().map(|s| &s.0),
    ) {
        None => descriptors::default_max_connections(descriptors::soft_limit()),
        Some((text, field)) => checked_max_connections(&text, &field)?,
    };

    let max_peer_bytes_in_flight = match layers.pick(
        ids::MAX_PEER_BYTES_IN_FLIGHT,
        args.max_peer_bytes_in_flight.as_ref(),
        file.max_peer_bytes_in_flight.as_ref().map(|s| &s.0),
    ) {
        None => defaults::MAX_PEER_BYTES_IN_FLIGHT,
        Some((text, field)) => match parse_size(&text) {
            Some(n) if n >= 1 << 20 => n,
            Some(_) => {
                return Err(ConfigError::invalid(
                    &field,
                    &text,
                    "out of range",
                    "expected at least 1MiB (the default is 256MiB)",
                ));
            }
            None => {
                return Err(ConfigError::invalid(
                    &field,
                    &text,
                    "not a size",
                    format!("expected {SIZE_FORMS}"),
                ));
            }
        },
    };

    let peer_key_encoding = match layers.pick(
        ids::PEER_KEY_ENCODING,
        args.peer_key_encoding.as_ref(),
        file.peer_key_encoding.as_ref(),
    ) {
        None => Decoding::Form,
        Some((text, field)) => checked_key_encoding(&text, &field)?,
    };

    let max_batch_keys = match layers.pick(
        ids::MAX_BATCH_KEYS,
        args.max_batch_keys.as_ref(),
        file.max_batch_keys.as_ref().map(|s| &s.0),
    ) {
        None => defaults::MAX_BATCH_KEYS,
        Some((text, field)) => checked_max_batch_keys(&text, &field)?,
    };
    let max_batch_bytes = match layers.pick(
        ids::MAX_BATCH_BYTES,
        args.max_batch_bytes.as_ref(),
        file.max_batch_bytes.as_ref().map(|s| &s.0),
    ) {
        None => defaults::MAX_BATCH_BYTES,
        Some((text, field)) => {
            usize::try_from(checked_max_batch_bytes(&text, &field)?).unwrap_or(usize::MAX)
        }
    };
    let max_set_bytes = match layers.pick(
        ids::MAX_SET_BYTES,
        args.max_set_bytes.as_ref(),
        file.max_set_bytes.as_ref().map(|s| &s.0),
    ) {
        None => defaults::MAX_SET_BYTES,
        Some((text, field)) => usize::try_from(positive_size(&text, &field)?).unwrap_or(usize::MAX),
    };

    let groups = groups::resolve_groups(layers)?;
    let tls = resolve_tls(layers)?;
    check_schemes(tls.is_some(), self_url.as_deref(), &peers)?;
    let dns = dns.map(|dns| DnsConfig {
        https: tls.is_some(),
        ..dns
    });

    Ok(Config {
        listen,
        self_url,
        peers,
        etcd,
        dns,
        base_path,
        transport,
        ring,
        replicas,
        handoff,
        groups,
        peer_timeout,
        max_key_bytes: usize::try_from(max_key_bytes).unwrap_or(usize::MAX),
        log_level,
        peer_token,
        api_token,
        drain_timeout,
        threads,
        max_connections,
        max_peer_bytes_in_flight: usize::try_from(max_peer_bytes_in_flight).unwrap_or(usize::MAX),
        peer_key_encoding,
        max_batch_keys,
        max_batch_bytes,
        max_set_bytes,
        tls,
    })
}
