//! The effective configuration of `geecache serve`: flags over `GEECACHE_*` variables over the
//! config file over defaults, checked once at start.
//!
//! Everything is validated before anything is bound or spawned, so a bad setting stops the
//! process with one precise message and exit status 2, instead of failing later on the first
//! request that happens to touch it.

pub(crate) mod error;
pub(crate) mod file;
pub(crate) mod units;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use error::{ConfigError, Field};
use file::{FileConfig, FileGroup};
use units::{DURATION_FORMS, SIZE_FORMS, format_duration, format_size, parse_duration, parse_size};

use crate::cli::ServeArgs;

/// Defaults, named so docs and `--help` can point at one place.
pub(crate) mod defaults {
    use std::time::Duration;

    /// Where a node listens unless told otherwise.
    pub(crate) const LISTEN: &str = "127.0.0.1:8001";
    /// groupcache's base path, with our name.
    pub(crate) const BASE_PATH: &str = "/_geecache/";
    /// Per-group cache budget.
    pub(crate) const CACHE_BYTES: u64 = 64 << 20;
    /// How long to wait for a peer before loading locally.
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
    /// Peer route prefix, starting and ending with `/`.
    pub(crate) base_path: String,
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
                s
            })
            .collect();
        let membership = match &self.etcd {
            None => format!("peers=[{}]", self.peers.join(",")),
            Some(etcd) => format!(
                "etcd=[{}] cluster={} etcd_ttl={}",
                etcd.endpoints.join(","),
                etcd.cluster,
                etcd.ttl
                    .map_or_else(|| "default".to_owned(), format_duration)
            ),
        };
        format!(
            "listen={} self_url={} {} base_path={} groups=[{}] peer_timeout={} \
             max_key_bytes={} log_level={} peer_token={} api_token={} drain_timeout={} \
             threads={}",
            self.listen,
            self.self_url.as_deref().unwrap_or("(from bound address)"),
            membership,
            self.base_path,
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
        )
    }
}

/// One setting's names in the three places it can be given.
struct Setting {
    /// clap's id (the field name).
    id: &'static str,
    flag: &'static str,
    env: &'static str,
    /// The key in the config file.
    key: &'static str,
}

const LISTEN: Setting = Setting {
    id: "listen",
    flag: "--listen",
    env: "GEECACHE_LISTEN",
    key: "listen",
};
const SELF_URL: Setting = Setting {
    id: "self_url",
    flag: "--self-url",
    env: "GEECACHE_SELF_URL",
    key: "self_url",
};
const PEERS: Setting = Setting {
    id: "peers",
    flag: "--peers",
    env: "GEECACHE_PEERS",
    key: "peers",
};
const ETCD: Setting = Setting {
    id: "etcd",
    flag: "--etcd",
    env: "GEECACHE_ETCD",
    key: "etcd",
};
const CLUSTER: Setting = Setting {
    id: "cluster",
    flag: "--cluster",
    env: "GEECACHE_CLUSTER",
    key: "cluster",
};
const ETCD_TTL: Setting = Setting {
    id: "etcd_ttl",
    flag: "--etcd-ttl",
    env: "GEECACHE_ETCD_TTL",
    key: "etcd_ttl",
};
const BASE_PATH: Setting = Setting {
    id: "base_path",
    flag: "--base-path",
    env: "GEECACHE_BASE_PATH",
    key: "base_path",
};
const GROUPS: Setting = Setting {
    id: "groups",
    flag: "--group",
    env: "GEECACHE_GROUPS",
    key: "groups",
};
const PEER_TIMEOUT: Setting = Setting {
    id: "peer_timeout",
    flag: "--peer-timeout",
    env: "GEECACHE_PEER_TIMEOUT",
    key: "peer_timeout",
};
const MAX_KEY_BYTES: Setting = Setting {
    id: "max_key_bytes",
    flag: "--max-key-bytes",
    env: "GEECACHE_MAX_KEY_BYTES",
    key: "max_key_bytes",
};
const LOG_LEVEL: Setting = Setting {
    id: "log_level",
    flag: "--log-level",
    env: "GEECACHE_LOG_LEVEL",
    key: "log_level",
};
const PEER_TOKEN: Setting = Setting {
    id: "peer_token",
    flag: "--peer-token",
    env: "GEECACHE_PEER_TOKEN",
    key: "peer_token",
};
const API_TOKEN: Setting = Setting {
    id: "api_token",
    flag: "--api-token",
    env: "GEECACHE_API_TOKEN",
    key: "api_token",
};
const DRAIN_TIMEOUT: Setting = Setting {
    id: "drain_timeout",
    flag: "--drain-timeout",
    env: "GEECACHE_DRAIN_TIMEOUT",
    key: "drain_timeout",
};
const THREADS: Setting = Setting {
    id: "threads",
    flag: "--threads",
    env: "GEECACHE_THREADS",
    key: "threads",
};

/// The layers a value can come from, highest precedence first.
struct Layers<'a> {
    args: &'a ServeArgs,
    file: &'a FileConfig,
    file_path: String,
}

impl Layers<'_> {
    /// Where the command-line layer's value came from: the flag, or its variable.
    fn cli_field(&self, setting: &Setting) -> Field {
        if self.args.from_env.contains(setting.id) {
            Field::Env(setting.env)
        } else {
            Field::Flag(setting.flag)
        }
    }

    fn file_field(&self, key: impl Into<String>) -> Field {
        Field::File {
            key: key.into(),
            path: self.file_path.clone(),
        }
    }

    /// The value of a scalar setting and where it came from, or `None` when unset everywhere.
    fn pick(
        &self,
        setting: &Setting,
        cli: Option<&String>,
        file: Option<&String>,
    ) -> Option<(String, Field)> {
        if let Some(v) = cli {
            return Some((v.clone(), self.cli_field(setting)));
        }
        file.map(|v| (v.clone(), self.file_field(setting.key)))
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

/// Parses a config file's text alone, as if no flags were given (for tests and docs checks).
#[cfg(test)]
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

    let listen = match layers.pick(&LISTEN, args.listen.as_ref(), file.listen.as_ref()) {
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

    let self_url = match layers.pick(&SELF_URL, args.self_url.as_ref(), file.self_url.as_ref()) {
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
        (Some(list), _) => checked_peers(list, &layers.cli_field(&PEERS))?,
        (None, Some(list)) => checked_peers(list, &layers.file_field(PEERS.key))?,
        (None, None) => Vec::new(),
    };
    let etcd = resolve_etcd(layers)?;
    if etcd.is_some() && !peers.is_empty() {
        return Err(ConfigError::Missing(
            "--etcd and --peers (or etcd and peers in the config file) are both set: the member \
             list comes from one place; keep --etcd to follow the live nodes, or --peers for a \
             fixed list"
                .to_owned(),
        ));
    }

    let base_path = match layers.pick(&BASE_PATH, args.base_path.as_ref(), file.base_path.as_ref())
    {
        None => defaults::BASE_PATH.to_owned(),
        Some((text, field)) => checked_base_path(&text, &field)?,
    };

    let peer_timeout = duration_setting(
        layers.pick(
            &PEER_TIMEOUT,
            args.peer_timeout.as_ref(),
            file.peer_timeout.as_ref(),
        ),
        defaults::PEER_TIMEOUT,
    )?;
    let drain_timeout = duration_setting(
        layers.pick(
            &DRAIN_TIMEOUT,
            args.drain_timeout.as_ref(),
            file.drain_timeout.as_ref(),
        ),
        defaults::DRAIN_TIMEOUT,
    )?;

    let max_key_bytes = match layers.pick(
        &MAX_KEY_BYTES,
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

    let log_level = match layers.pick(&LOG_LEVEL, args.log_level.as_ref(), file.log_level.as_ref())
    {
        None => defaults::LOG_LEVEL.to_owned(),
        Some((text, field)) => checked_log_level(&text, &field)?,
    };

    let peer_token = token_setting(layers.pick(
        &PEER_TOKEN,
        args.peer_token.as_ref(),
        file.peer_token.as_ref(),
    ))?;
    let api_token =
        token_setting(layers.pick(&API_TOKEN, args.api_token.as_ref(), file.api_token.as_ref()))?;

    let threads = match layers.pick(
        &THREADS,
        args.threads.as_ref(),
        file.threads.as_ref().map(|s| &s.0),
    ) {
        None => None,
        Some((text, field)) => Some(checked_threads(&text, &field)?),
    };

    let groups = resolve_groups(layers)?;

    Ok(Config {
        listen,
        self_url,
        peers,
        etcd,
        base_path,
        groups,
        peer_timeout,
        max_key_bytes: usize::try_from(max_key_bytes).unwrap_or(usize::MAX),
        log_level,
        peer_token,
        api_token,
        drain_timeout,
        threads,
    })
}

/// Most worker threads accepted: far past any useful count, low enough that a typo
/// (`--threads 80000`) is refused rather than exhausting the machine.
const MAX_THREADS: usize = 1024;

fn checked_threads(text: &str, field: &Field) -> Result<usize, ConfigError> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        Ok(_) => Err(ConfigError::invalid(
            field,
            text,
            "out of range",
            format!("expected between 1 and {MAX_THREADS}; leave it unset for one per CPU"),
        )),
        Err(_) => Err(ConfigError::invalid(
            field,
            text,
            "not a whole number",
            format!("expected between 1 and {MAX_THREADS}; leave it unset for one per CPU"),
        )),
    }
}

/// Checks a node's base URL (`--self-url`, `--peers`): `http://HOST[:PORT]`, nothing after.
///
/// Nodes name each other by these strings on the hash ring, so two spellings of one node
/// (`http://a:80/` and `http://a`) would be two ring members. We refuse paths and normalise
/// the trailing slash away rather than guess which spelling the other nodes use.
pub(crate) fn node_url(text: &str, field: &Field) -> Result<String, ConfigError> {
    const ALLOWED: &str =
        "expected http://HOST:PORT with nothing after it, e.g. http://10.0.0.1:8001";
    let trimmed = text.trim().trim_end_matches('/');
    let bad = |problem: &str| ConfigError::invalid(field, text, problem, ALLOWED);
    let uri: http::Uri = trimmed.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(
                "https is not supported between nodes (peers talk plain HTTP; put TLS in front \
                 of the client routes only)",
            ));
        }
        Some(_) => return Err(bad("the scheme must be http")),
        None => return Err(bad("the scheme is missing")),
    }
    let Some(authority) = uri.authority() else {
        return Err(bad("the host is missing"));
    };
    if authority.as_str().contains('@') {
        return Err(bad("user information is not allowed"));
    }
    if authority.host().is_empty() {
        return Err(bad("the host is missing"));
    }
    if uri.path() != "/" || uri.query().is_some() || trimmed.ends_with('?') {
        return Err(bad("it has a path or query"));
    }
    Ok(trimmed.to_owned())
}

fn checked_peers(list: &[String], field: &Field) -> Result<Vec<String>, ConfigError> {
    let mut peers: Vec<String> = Vec::with_capacity(list.len());
    for text in list.iter().filter(|t| !t.trim().is_empty()) {
        let url = node_url(text, field)?;
        if peers.contains(&url) {
            return Err(ConfigError::invalid(
                field,
                text,
                "this peer is listed twice",
                "list each node once",
            ));
        }
        peers.push(url);
    }
    Ok(peers)
}

/// The etcd settings: all three or none (`--etcd-ttl` alone has a default), and only in a
/// binary built with the `etcd` feature.
fn resolve_etcd(layers: &Layers<'_>) -> Result<Option<EtcdConfig>, ConfigError> {
    let args = layers.args;
    let file = layers.file;
    let endpoints = match (&args.etcd, &file.etcd) {
        (Some(list), _) => Some((list.clone(), layers.cli_field(&ETCD))),
        (None, Some(list)) => Some((list.clone(), layers.file_field(ETCD.key))),
        (None, None) => None,
    }
    .map(|(list, field)| {
        let list: Vec<String> = list
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        (list, field)
    })
    .filter(|(list, _)| !list.is_empty());
    let cluster = layers
        .pick(&CLUSTER, args.cluster.as_ref(), file.cluster.as_ref())
        .filter(|(c, _)| !c.trim().is_empty());
    let ttl = layers.pick(&ETCD_TTL, args.etcd_ttl.as_ref(), file.etcd_ttl.as_ref());

    let given = endpoints
        .as_ref()
        .map(|(_, f)| f)
        .or(cluster.as_ref().map(|(_, f)| f))
        .or(ttl.as_ref().map(|(_, f)| f));
    let Some(first) = given else {
        return Ok(None);
    };
    if !cfg!(feature = "etcd") {
        return Err(ConfigError::Missing(format!(
            "{first} is set, but this geecache was built without etcd support; rebuild it with \
             `cargo build --release -p geecache-server --features etcd` (needs protoc), or use \
             --peers for a fixed member list"
        )));
    }
    let (endpoints, endpoints_field) = match endpoints {
        Some(e) => e,
        None => {
            return Err(ConfigError::Missing(format!(
                "{first} needs --etcd URL (or etcd = [\"URL\"] in the config file): the etcd \
                 that holds the cluster's members"
            )));
        }
    };
    let Some((cluster, cluster_field)) = cluster else {
        return Err(ConfigError::Missing(format!(
            "{endpoints_field} needs --cluster NAME (or cluster = \"NAME\" in the config file): \
             nodes see only the nodes of their own cluster"
        )));
    };
    let cluster = cluster.trim().to_owned();
    for endpoint in &endpoints {
        if endpoint.starts_with("https://") {
            return Err(ConfigError::invalid(
                &endpoints_field,
                endpoint,
                "https is not supported for etcd (no TLS client in this build)",
                "expected an http:// etcd client URL, e.g. http://127.0.0.1:2379",
            ));
        }
        if !endpoint.starts_with("http://") || endpoint.len() == "http://".len() {
            return Err(ConfigError::invalid(
                &endpoints_field,
                endpoint,
                "not an http:// URL with a host",
                "expected an http:// etcd client URL, e.g. http://127.0.0.1:2379",
            ));
        }
    }
    if cluster.len() > 128 || !cluster.bytes().all(is_unreserved) {
        return Err(ConfigError::invalid(
            &cluster_field,
            &cluster,
            "a cluster name is one path segment of A-Z a-z 0-9 . _ ~ -",
            "expected e.g. scores",
        ));
    }
    let ttl = match ttl {
        None => None,
        Some((text, field)) => {
            let d = positive_duration(&text, &field)?;
            if d < Duration::from_secs(1) {
                return Err(ConfigError::invalid(
                    &field,
                    &text,
                    "etcd grants leases in whole seconds, at least one",
                    "expected e.g. 10s; 5s to 30s suits most deployments",
                ));
            }
            Some(d)
        }
    };
    Ok(Some(EtcdConfig {
        endpoints,
        cluster,
        ttl,
    }))
}

/// Route prefixes the binary itself uses; a base path may not shadow them.
const RESERVED_SEGMENTS: [&str; 5] = ["api", "metrics", "healthz", "readyz", "stats"];

fn checked_base_path(text: &str, field: &Field) -> Result<String, ConfigError> {
    const ALLOWED: &str = "expected a path that starts and ends with '/' and whose segments use \
                           A-Z a-z 0-9 . _ ~ -, e.g. /_geecache/ or /_groupcache/ (Go groupcache)";
    let bad = |problem: &str| ConfigError::invalid(field, text, problem, ALLOWED);
    if !(text.len() >= 3 && text.starts_with('/') && text.ends_with('/')) {
        return Err(bad(
            "it must start and end with '/' and name at least one segment",
        ));
    }
    let inner = &text[1..text.len() - 1];
    for segment in inner.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(bad("it has an empty, '.' or '..' segment"));
        }
        if !segment.bytes().all(is_unreserved) {
            return Err(bad("it has a character that would need escaping in a URL"));
        }
    }
    let first = inner.split('/').next().unwrap_or_default();
    if RESERVED_SEGMENTS.contains(&first) {
        return Err(bad(&format!(
            "/{first}/ is taken by the client, metrics or health routes"
        )));
    }
    Ok(text.to_owned())
}

/// RFC 3986 unreserved characters: safe in a URL path without escaping.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn duration_setting(
    picked: Option<(String, Field)>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match picked {
        None => Ok(default),
        Some((text, field)) => positive_duration(&text, &field),
    }
}

fn positive_duration(text: &str, field: &Field) -> Result<Duration, ConfigError> {
    match parse_duration(text) {
        Some(d) if d.is_zero() => Err(ConfigError::invalid(
            field,
            text,
            "must be greater than zero",
            format!("expected {DURATION_FORMS}"),
        )),
        Some(d) => Ok(d),
        None => Err(ConfigError::invalid(
            field,
            text,
            "not a duration",
            format!("expected {DURATION_FORMS}"),
        )),
    }
}

fn positive_size(text: &str, field: &Field) -> Result<u64, ConfigError> {
    match parse_size(text) {
        Some(0) => Err(ConfigError::invalid(
            field,
            text,
            "must be greater than zero",
            format!("expected {SIZE_FORMS}"),
        )),
        Some(n) => Ok(n),
        None => Err(ConfigError::invalid(
            field,
            text,
            "not a size",
            format!("expected {SIZE_FORMS}"),
        )),
    }
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

fn checked_log_level(text: &str, field: &Field) -> Result<String, ConfigError> {
    const ALLOWED: &str = "expected one of off, error, warn, info, debug, trace, or a filter \
                           such as info,geecache_group=debug";
    let text_trimmed = text.trim();
    // A lone word is a level or a typo. `EnvFilter` would take "loud" as a target name and
    // silently log nothing, so a lone word must be a known level.
    let is_directive = text_trimmed.contains('=') || text_trimmed.contains(',');
    if !is_directive && !LEVELS.contains(&text_trimmed.to_ascii_lowercase().as_str()) {
        return Err(ConfigError::invalid(
            field,
            text,
            "unknown log level",
            ALLOWED,
        ));
    }
    if tracing_subscriber::EnvFilter::try_new(text_trimmed).is_err() {
        return Err(ConfigError::invalid(
            field,
            text,
            "not a valid filter",
            ALLOWED,
        ));
    }
    Ok(text_trimmed.to_owned())
}

fn token_setting(picked: Option<(String, Field)>) -> Result<Option<String>, ConfigError> {
    let Some((token, field)) = picked else {
        return Ok(None);
    };
    // Never echo a secret into logs or terminals, even a malformed one.
    let shown = "<redacted>";
    if token.is_empty() || token.len() > 1024 {
        return Err(ConfigError::invalid(
            &field,
            shown,
            "must be 1 to 1024 characters long",
            "expected a random string such as the output of `openssl rand -hex 32`",
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::invalid(
            &field,
            shown,
            "has a space, a control or a non-ASCII character, which an HTTP header cannot carry",
            "expected visible ASCII characters only, e.g. the output of `openssl rand -hex 32`",
        ));
    }
    Ok(Some(token))
}

/// A group as given on the command line or in the file, before its fields are checked.
struct RawGroup {
    name: String,
    source: Option<String>,
    cache_bytes: Option<String>,
    ttl: Option<String>,
    origin_timeout: Option<String>,
    max_value_bytes: Option<String>,
    /// How to name this group's fields in an error: `(field, value shown)` per option.
    origin: GroupOrigin,
}

enum GroupOrigin {
    /// From `--group`/`GEECACHE_GROUPS`: the whole spec is what the operator typed.
    Cli { field: Field, spec: String },
    /// From `[groups.NAME]` in the file.
    File { path: String },
}

impl RawGroup {
    /// The field and value to show when option `key` (with value `value`) is wrong.
    fn field(&self, key: &str, value: &str) -> (Field, String) {
        match &self.origin {
            GroupOrigin::Cli { field, spec } => (field.clone(), spec.clone()),
            GroupOrigin::File { path } => (
                Field::File {
                    key: format!("groups.{}.{key}", self.name),
                    path: path.clone(),
                },
                value.to_owned(),
            ),
        }
    }
}

/// Options a `--group` spec may carry after `NAME=SOURCE`.
const GROUP_OPTIONS: [&str; 4] = ["cache", "ttl", "origin_timeout", "max_value_bytes"];

/// Splits `NAME=SOURCE[,cache=SIZE][,ttl=DURATION]...`.
///
/// Options are peeled off the end only while they look like `,known_option=...`, so a comma
/// inside a source (a path or a URL with a comma) stays part of the source.
fn parse_group_spec(spec: &str, field: &Field) -> Result<RawGroup, ConfigError> {
    const ALLOWED: &str = "expected NAME=SOURCE[,cache=SIZE][,ttl=DURATION][,origin_timeout=DURATION][,max_value_bytes=SIZE] \
                           where SOURCE is demo, dir:PATH or http:URL, e.g. scores=demo,cache=64MiB";
    let Some((name, rest)) = spec.split_once('=') else {
        return Err(ConfigError::invalid(
            field,
            spec,
            "there is no '='",
            ALLOWED,
        ));
    };
    let mut rest = rest;
    let mut options: BTreeMap<&str, &str> = BTreeMap::new();
    while let Some((head, tail)) = rest.rsplit_once(',') {
        let Some((key, value)) = tail.split_once('=') else {
            break;
        };
        if !GROUP_OPTIONS.contains(&key) {
            break;
        }
        if options.insert(key, value).is_some() {
            return Err(ConfigError::invalid(
                field,
                spec,
                format!("option {key} is given twice"),
                ALLOWED,
            ));
        }
        rest = head;
    }
    let get = |k: &str| options.get(k).map(|v| (*v).to_owned());
    Ok(RawGroup {
        name: name.trim().to_owned(),
        source: Some(rest.to_owned()),
        cache_bytes: get("cache"),
        ttl: get("ttl"),
        origin_timeout: get("origin_timeout"),
        max_value_bytes: get("max_value_bytes"),
        origin: GroupOrigin::Cli {
            field: field.clone(),
            spec: spec.to_owned(),
        },
    })
}

fn resolve_groups(layers: &Layers<'_>) -> Result<Vec<GroupConfig>, ConfigError> {
    let mut raw: BTreeMap<String, RawGroup> = BTreeMap::new();
    for (name, g) in &layers.file.groups {
        let FileGroup {
            source,
            cache_bytes,
            ttl,
            origin_timeout,
            max_value_bytes,
        } = g;
        raw.insert(
            name.clone(),
            RawGroup {
                name: name.clone(),
                source: source.clone(),
                cache_bytes: cache_bytes.as_ref().map(|s| s.0.clone()),
                ttl: ttl.clone(),
                origin_timeout: origin_timeout.clone(),
                max_value_bytes: max_value_bytes.as_ref().map(|s| s.0.clone()),
                origin: GroupOrigin::File {
                    path: layers.file_path.clone(),
                },
            },
        );
    }
    // Command-line groups replace file groups of the same name whole: merging a flag's
    // source with the file's TTL would make a group nobody wrote down.
    let cli_field = layers.cli_field(&GROUPS);
    let mut seen_on_cli: Vec<String> = Vec::new();
    for spec in layers.args.groups.iter().filter(|s| !s.trim().is_empty()) {
        let group = parse_group_spec(spec, &cli_field)?;
        if seen_on_cli.contains(&group.name) {
            return Err(ConfigError::invalid(
                &cli_field,
                spec,
                format!("group {:?} is given twice", group.name),
                "give each group once",
            ));
        }
        seen_on_cli.push(group.name.clone());
        raw.insert(group.name.clone(), group);
    }
    if raw.is_empty() {
        return Err(ConfigError::Missing(
            "no groups configured: add --group NAME=SOURCE (e.g. --group scores=demo) or a \
             [groups.NAME] table with a source to the config file"
                .to_owned(),
        ));
    }
    raw.into_values().map(|g| checked_group(&g)).collect()
}

fn checked_group(g: &RawGroup) -> Result<GroupConfig, ConfigError> {
    let (name_field, name_value) = g.field("name", &g.name);
    if g.name.is_empty() || g.name.len() > 64 || !g.name.bytes().all(is_unreserved) {
        return Err(ConfigError::invalid(
            &name_field,
            &name_value,
            format!(
                "group name {:?} is empty, too long or has a character that would need escaping in a URL",
                g.name
            ),
            "expected 1 to 64 characters from A-Z a-z 0-9 . _ ~ -, e.g. scores",
        ));
    }
    let Some(source_text) = &g.source else {
        let (field, _) = g.field("source", "");
        return Err(ConfigError::Missing(format!(
            "{field} is missing: every group needs a source: demo, dir:PATH or http:URL"
        )));
    };
    let (field, value) = g.field("source", source_text);
    let source = checked_source(source_text, &field, &value)?;

    let cache_bytes = match &g.cache_bytes {
        None => defaults::CACHE_BYTES,
        Some(text) => {
            let (field, value) = g.field("cache_bytes", text);
            parse_size(text).ok_or_else(|| {
                ConfigError::invalid(
                    &field,
                    &value,
                    format!("cache size {text:?} is not a size"),
                    format!("expected {SIZE_FORMS}; 0 means unbounded"),
                )
            })?
        }
    };
    let ttl = match &g.ttl {
        None => None,
        Some(text) => {
            let (field, value) = g.field("ttl", text);
            Some(group_duration(text, &field, &value, "ttl")?)
        }
    };
    let origin_timeout = match &g.origin_timeout {
        None => defaults::ORIGIN_TIMEOUT,
        Some(text) => {
            let (field, value) = g.field("origin_timeout", text);
            if !matches!(source, SourceSpec::Http(_)) {
                return Err(ConfigError::invalid(
                    &field,
                    &value,
                    "origin_timeout applies to http: sources only",
                    "remove it, or use an http:URL source",
                ));
            }
            group_duration(text, &field, &value, "origin_timeout")?
        }
    };
    let max_value_bytes = match &g.max_value_bytes {
        None => defaults::MAX_VALUE_BYTES,
        Some(text) => {
            let (field, value) = g.field("max_value_bytes", text);
            if source == SourceSpec::Demo {
                return Err(ConfigError::invalid(
                    &field,
                    &value,
                    "max_value_bytes applies to dir: and http: sources only",
                    "remove it, or use a dir:PATH or http:URL source",
                ));
            }
            match &g.origin {
                // On the command line the whole spec is the value; say which option.
                GroupOrigin::Cli { .. } => positive_size(text, &field).map_err(|_| {
                    ConfigError::invalid(
                        &field,
                        &value,
                        format!("max_value_bytes {text:?} is not a size above zero"),
                        format!("expected {SIZE_FORMS}"),
                    )
                })?,
                GroupOrigin::File { .. } => positive_size(text, &field)?,
            }
        }
    };
    Ok(GroupConfig {
        name: g.name.clone(),
        source,
        cache_bytes,
        ttl,
        origin_timeout,
        max_value_bytes,
    })
}

fn group_duration(
    text: &str,
    field: &Field,
    value: &str,
    option: &str,
) -> Result<Duration, ConfigError> {
    match parse_duration(text) {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(ConfigError::invalid(
            field,
            value,
            format!("{option} must be greater than zero"),
            format!("expected {DURATION_FORMS}; leave ttl out for no expiry"),
        )),
        None => Err(ConfigError::invalid(
            field,
            value,
            format!("{option} {text:?} is not a duration"),
            format!("expected {DURATION_FORMS}"),
        )),
    }
}

fn checked_source(text: &str, field: &Field, value: &str) -> Result<SourceSpec, ConfigError> {
    const ALLOWED: &str = "expected demo, dir:PATH (a directory) or http:URL (an http:// origin), \
                           e.g. dir:/srv/files or http:http://127.0.0.1:9000/objects/";
    let text = text.trim();
    if text == "demo" {
        return Ok(SourceSpec::Demo);
    }
    if let Some(path) = text.strip_prefix("dir:") {
        if path.is_empty() {
            return Err(ConfigError::invalid(
                field,
                value,
                "dir: needs a path",
                ALLOWED,
            ));
        }
        let path = Path::new(path);
        return match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Ok(SourceSpec::Dir(path.to_path_buf())),
            Ok(_) => Err(ConfigError::invalid(
                field,
                value,
                format!("{} is not a directory", path.display()),
                ALLOWED,
            )),
            Err(e) => Err(ConfigError::invalid(
                field,
                value,
                format!("cannot use directory {}: {e}", path.display()),
                ALLOWED,
            )),
        };
    }
    // `http:URL` is the documented form; the bare URL is accepted too, since that is what
    // people paste.
    let url = text
        .strip_prefix("http:")
        .filter(|rest| rest.starts_with("http"))
        .unwrap_or(text);
    if url.starts_with("https://") {
        return Err(ConfigError::invalid(
            field,
            value,
            "https origins are not supported (this build has no TLS client)",
            "expected an http:// origin, e.g. a local TLS-terminating proxy in front of the store",
        ));
    }
    if url.starts_with("http://") {
        return checked_origin_url(url, field, value).map(SourceSpec::Http);
    }
    Err(ConfigError::invalid(
        field,
        value,
        "unknown source",
        ALLOWED,
    ))
}

/// Checks an origin URL and makes it ready for keys to be appended.
fn checked_origin_url(url: &str, field: &Field, value: &str) -> Result<String, ConfigError> {
    const ALLOWED: &str = "expected http://HOST[:PORT][/PREFIX] (the key is appended, \
                           percent-encoded), e.g. http://127.0.0.1:9000/objects/";
    let uri: http::Uri = url
        .parse()
        .map_err(|_| ConfigError::invalid(field, value, "the origin is not a URL", ALLOWED))?;
    match uri.authority() {
        Some(a) if !a.host().is_empty() && !a.as_str().contains('@') => {}
        _ => {
            return Err(ConfigError::invalid(
                field,
                value,
                "the origin URL needs a host and no user information",
                ALLOWED,
            ));
        }
    }
    if url.contains('#') {
        return Err(ConfigError::invalid(
            field,
            value,
            "the origin URL has a fragment",
            ALLOWED,
        ));
    }
    // "http://host:9000" has no path: the key must not be glued to the port.
    let after_scheme = &url["http://".len()..];
    let mut url = url.to_owned();
    if !after_scheme.contains('/') && !after_scheme.contains('?') {
        url.push('/');
    }
    Ok(url)
}
