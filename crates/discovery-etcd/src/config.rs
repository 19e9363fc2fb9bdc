use std::time::Duration;

use crate::Error;

/// The key prefix under which clusters live unless [`ConfigBuilder::prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "/geecache";

/// The lease time-to-live unless [`ConfigBuilder::ttl`] says otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// How long one etcd request may take unless [`ConfigBuilder::request_timeout`] says otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The first and the longest pause between reconnection attempts unless
/// [`ConfigBuilder::backoff`] says otherwise.
pub const DEFAULT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(250), Duration::from_secs(5));

/// etcd refuses leases longer than this many seconds (its `MaxLeaseTTL`).
const MAX_TTL_SECS: u64 = 9_000_000_000;

/// Where the cluster's membership lives in etcd and how nodes keep their place in it.
///
/// Every node of a cluster registers under `{prefix}/{cluster}/nodes/{url}`, so one etcd can
/// serve many clusters (and other applications) side by side. Build one with
/// [`Config::builder`]; a `Config` is always valid.
///
/// ```
/// use std::time::Duration;
/// use geecache_discovery_etcd::Config;
///
/// let config = Config::builder()
///     .endpoint("http://127.0.0.1:2379")
///     .cluster("scores")
///     .ttl(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(config.nodes_prefix(), "/geecache/scores/nodes/");
/// assert_eq!(
///     config.node_key("http://10.0.0.1:8001"),
///     "/geecache/scores/nodes/http://10.0.0.1:8001"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    endpoints: Vec<String>,
    prefix: String,
    cluster: String,
    ttl: Duration,
    request_timeout: Duration,
    backoff: (Duration, Duration),
}

impl Config {
    /// A builder with the defaults: prefix [`DEFAULT_PREFIX`], TTL [`DEFAULT_TTL`], request
    /// timeout [`DEFAULT_REQUEST_TIMEOUT`], backoff [`DEFAULT_BACKOFF`]. Endpoints and the
    /// cluster name have no default.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The etcd client URLs, e.g. `http://127.0.0.1:2379`.
    #[must_use]
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The key prefix, e.g. `/geecache`; it starts with `/` and does not end with one.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The cluster name; nodes see only the nodes of their own cluster.
    #[must_use]
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The lease time-to-live, in whole seconds: how long a node that stopped without
    /// deregistering (a crash, a partition) stays in its peers' lists.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The longest any single etcd request may take before it counts as failed.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The first and the longest pause between reconnection attempts.
    #[must_use]
    pub fn backoff(&self) -> (Duration, Duration) {
        self.backoff
    }

    /// The prefix that holds every node of this cluster: `{prefix}/{cluster}/nodes/`.
    ///
    /// The trailing `/` matters: without it, watching cluster `a` would also see cluster `ab`.
    #[must_use]
    pub fn nodes_prefix(&self) -> String {
        format!("{}/{}/nodes/", self.prefix, self.cluster)
    }

    /// The key under which the node at `url` registers: `{prefix}/{cluster}/nodes/{url}`.
    #[must_use]
    pub fn node_key(&self, url: &str) -> String {
        format!("{}{url}", self.nodes_prefix())
    }

    /// The TTL in the whole seconds that etcd leases are granted in.
    pub(crate) fn ttl_secs(&self) -> i64 {
        // `build` bounded it by MAX_TTL_SECS, far below i64::MAX.
        i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)
    }
}

/// Builds a [`Config`]; [`build`](ConfigBuilder::build) checks every value.
#[derive(Clone, Debug)]
#[must_use]
pub struct ConfigBuilder {
    endpoints: Vec<String>,
    prefix: String,
    cluster: String,
    ttl: Duration,
    request_timeout: Duration,
    backoff: (Duration, Duration),
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        ConfigBuilder {
            endpoints: Vec::new(),
            prefix: DEFAULT_PREFIX.to_string(),
            cluster: String::new(),
            ttl: DEFAULT_TTL,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            backoff: DEFAULT_BACKOFF,
        }
    }
}

impl ConfigBuilder {
    /// Adds one etcd client URL, e.g. `http://127.0.0.1:2379` (a bare `host:port` means
    /// `http://`). Requests are balanced across all endpoints given.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.push(url.into());
        self
    }

    /// Adds several etcd client URLs; see [`endpoint`](ConfigBuilder::endpoint).
    pub fn endpoints<I>(mut self, urls: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.endpoints.extend(urls.into_iter().map(Into::into));
        self
    }

    /// The cluster name (required): one path segment, no `/`.
    pub fn cluster(mut self, name: impl Into<String>) -> Self {
        self.cluster = name.into();
        self
    }

    /// The key prefix: starts with `/`, does not end with one. Default [`DEFAULT_PREFIX`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The lease time-to-live, at least one second; a fraction of a second is rounded up,
    /// since etcd grants leases in whole seconds. Default [`DEFAULT_TTL`].
    ///
    /// A shorter TTL drops crashed nodes sooner but costs more keep-alive traffic (one
    /// keep-alive per node every TTL/3) and makes a node more likely to lose its lease to a
    /// pause of its own. etcd may also raise very short TTLs to its own minimum (about 1.5
    /// times its election timeout).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The longest any single etcd request may take. Default [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The pauses between reconnection attempts: they start at `initial`, double after each
    /// failure up to `max`, and are jittered so that nodes do not retry in lockstep. Default
    /// [`DEFAULT_BACKOFF`].
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = (initial, max);
        self
    }

    /// Checks every value and returns the configuration.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first setting that is missing or malformed.
    pub fn build(self) -> Result<Config, Error> {
        let invalid = |field, reason| Err(Error::InvalidConfig { field, reason });
        if self.endpoints.is_empty() {
            return invalid("endpoints", "at least one etcd endpoint is required");
        }
        for endpoint in &self.endpoints {
            if endpoint.is_empty()
                || endpoint
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
            {
                return invalid("endpoints", "an endpoint is empty or contains whitespace");
            }
            if endpoint.starts_with("https://") {
                return invalid(
                    "endpoints",
                    "https endpoints need TLS, which this crate does not enable",
                );
            }
        }
        if self.cluster.is_empty() {
            return invalid("cluster", "a cluster name is required");
        }
        if !is_key_safe(&self.cluster) || self.cluster.contains('/') {
            return invalid(
                "cluster",
                "must be one path segment: no '/', whitespace or control characters",
            );
        }
        if !self.prefix.starts_with('/') || self.prefix.ends_with('/') {
            return invalid(
                "prefix",
                "must start with '/' and not end with one, e.g. \"/geecache\"",
            );
        }
        if !is_key_safe(&self.prefix) {
            return invalid(
                "prefix",
                "must not contain whitespace or control characters",
            );
        }
        if self.ttl < Duration::from_secs(1) {
            return invalid("ttl", "must be at least one second");
        }
        // Round up: a node asked for 1.5 s must not be dropped after 1 s.
        let ttl_secs = self.ttl.as_secs() + u64::from(self.ttl.subsec_nanos() > 0);
        if ttl_secs > MAX_TTL_SECS {
            return invalid("ttl", "exceeds etcd's maximum lease TTL");
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout", "must be positive");
        }
        let (initial, max) = self.backoff;
        if initial.is_zero() {
            return invalid("backoff", "the initial pause must be positive");
        }
        if max < initial {
            return invalid(
                "backoff",
                "the longest pause must not be shorter than the first",
            );
        }
        Ok(Config {
            endpoints: self.endpoints,
            prefix: self.prefix,
            cluster: self.cluster,
            ttl: Duration::from_secs(ttl_secs),
            request_timeout: self.request_timeout,
            backoff: self.backoff,
        })
    }
}

/// Checks the URL a node registers under: it becomes part of an etcd key and is what peers
/// will dial, so it must be an `http://` or `https://` URL with a host and no whitespace.
pub(crate) fn validate_peer_url(url: &str) -> Result<(), Error> {
    let invalid = |reason| {
        Err(Error::InvalidUrl {
            url: url.to_string(),
            reason,
        })
    };
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return invalid("must start with http:// or https://");
    };
    if rest.is_empty() || rest.starts_with('/') {
        return invalid("has no host");
    }
    if !is_key_safe(url) {
        return invalid("must not contain whitespace or control characters");
    }
    Ok(())
}

fn is_key_safe(s: &str) -> bool {
    !s.chars().any(|c| c.is_whitespace() || c.is_control())
}
