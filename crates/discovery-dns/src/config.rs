use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// How often a [`Watcher`](crate::Watcher) asks DNS, unless told otherwise.
///
/// Kubernetes' cluster DNS answers for a headless Service with a 5-second TTL by default, so
/// asking more often sees nothing new, and asking less often delays every membership change.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// How long one lookup may take before it counts as a failure, unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The shortest interval accepted: below it a fleet of nodes would flood its DNS server.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// What to look up, and how answers become peer URLs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// The A and AAAA records of `name`; each address becomes `http://ADDRESS:port`.
    ///
    /// Every member listens on the same port, as the pods behind a headless Service do.
    Addresses {
        /// The name, e.g. `geecache.default.svc.cluster.local`.
        name: String,
        /// The port every member listens on.
        port: u16,
    },
    /// The SRV records of `name`; each becomes `http://TARGET:PORT` with the record's own
    /// target host name and port.
    ///
    /// Host names, not addresses: a StatefulSet pod keeps its name across restarts while its
    /// address changes, so the ring (which places keys by URL) does not move keys between the
    /// other members when one restarts.
    Srv {
        /// The name, e.g. `_peer._tcp.geecache.default.svc.cluster.local`.
        name: String,
    },
}

impl Target {
    /// The name asked.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Target::Addresses { name, .. } | Target::Srv { name } => name,
        }
    }

    /// The port every member gets, or `None` for SRV, where each record carries its own.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        match self {
            Target::Addresses { port, .. } => Some(*port),
            Target::Srv { .. } => None,
        }
    }
}

impl FromStr for Target {
    type Err = Error;

    /// Parses `NAME:PORT` (A/AAAA records, one port for all) or `NAME` (SRV records).
    fn from_str(text: &str) -> Result<Target, Error> {
        let invalid = |reason| Error::InvalidTarget {
            target: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.contains("://") {
            return Err(invalid(
                "a DNS name, not a URL: give NAME:PORT or NAME, without http://",
            ));
        }
        let (name, port) = match trimmed.rsplit_once(':') {
            None => (trimmed, None),
            Some((name, port)) => match port.parse::<u16>() {
                Ok(0) => return Err(invalid("port 0 is not a port peers can reach")),
                Ok(port) => (name, Some(port)),
                Err(_) => return Err(invalid("the part after the last ':' is not a port")),
            },
        };
        check_name(name).map_err(invalid)?;
        let name = name.to_owned();
        Ok(match port {
            Some(port) => Target::Addresses { name, port },
            None => Target::Srv { name },
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Addresses { name, port } => write!(f, "{name}:{port}"),
            Target::Srv { name } => f.write_str(name),
        }
    }
}

/// A DNS name: dot-separated labels of letters, digits, `-` and `_` (SRV names start with
/// `_service._proto`), each 1 to 63 bytes, 253 in all, with an optional final dot.
fn check_name(name: &str) -> Result<(), &'static str> {
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.is_empty() {
        return Err("the name is empty");
    }
    if body.len() > 253 {
        return Err("a DNS name is at most 253 bytes long");
    }
    for label in body.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label must be 1 to 63 bytes long");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("a label may hold only A-Z a-z 0-9 - and _");
        }
    }
    Ok(())
}

/// What to look up, how often, and which server to ask.
///
/// Built with [`Config::builder`]; every value is checked by [`ConfigBuilder::build`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    target: Target,
    interval: Duration,
    timeout: Duration,
    name_server: Option<SocketAddr>,
}

impl Config {
    /// A builder with the defaults: [`DEFAULT_INTERVAL`], [`DEFAULT_TIMEOUT`], the system's
    /// resolver configuration.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// What is looked up.
    #[must_use]
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// How often a watcher asks.
    #[must_use]
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long one lookup may take.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The one server asked, or `None` for the system's configuration (`/etc/resolv.conf`,
    /// with its search domains, which Kubernetes pods rely on for short names).
    #[must_use]
    pub fn name_server(&self) -> Option<SocketAddr> {
        self.name_server
    }
}

/// Builds a [`Config`]; see [`Config::builder`].
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ConfigBuilder {
    target: Option<String>,
    interval: Option<Duration>,
    timeout: Option<Duration>,
    name_server: Option<SocketAddr>,
}

impl ConfigBuilder {
    /// What to look up: `NAME:PORT` for A/AAAA records or `NAME` for SRV records
    /// (see [`Target`]). Required.
    pub fn target(mut self, text: &str) -> Self {
        self.target = Some(text.to_owned());
        self
    }

    /// How often to ask; at least [`MIN_INTERVAL`].
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// How long one lookup may take before it counts as failed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Ask this server (UDP, then TCP) and only it, ignoring `/etc/resolv.conf` and
    /// `/etc/hosts`.
    pub fn name_server(mut self, address: SocketAddr) -> Self {
        self.name_server = Some(address);
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTarget`] for a bad or missing target, [`Error::InvalidConfig`] for an
    /// interval below [`MIN_INTERVAL`] or a zero timeout.
    pub fn build(self) -> Result<Config, Error> {
        let Some(text) = self.target else {
            return Err(Error::InvalidConfig {
                field: "target",
                reason: "no name to look up was given",
            });
        };
        let target = text.parse::<Target>()?;
        let interval = self.interval.unwrap_or(DEFAULT_INTERVAL);
        if interval < MIN_INTERVAL {
            return Err(Error::InvalidConfig {
                field: "interval",
                reason: "must be at least 10ms",
            });
        }
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(Error::InvalidConfig {
                field: "timeout",
                reason: "must be more than zero",
            });
        }
        Ok(Config {
            target,
            interval,
            timeout,
            name_server: self.name_server,
        })
    }
}
