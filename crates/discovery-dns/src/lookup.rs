use std::net::IpAddr;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;

use crate::{Config, Error, Target};

/// Looks `config`'s target up once and returns the peer URLs, sorted, without duplicates.
///
/// # Errors
///
/// [`Error::SystemConfig`] when no server is configured and `/etc/resolv.conf` cannot be
/// read; [`Error::Lookup`], [`Error::Timeout`] or [`Error::NoRecords`] when the lookup fails.
///
/// # Panics
///
/// Outside a Tokio runtime.
pub async fn lookup(config: &Config) -> Result<Vec<String>, Error> {
    let resolver = resolver(config)?;
    resolve(&resolver, config).await
}

/// A resolver that asks `config`'s server, or the system's.
pub(crate) fn resolver(config: &Config) -> Result<TokioResolver, Error> {
    let mut builder = match config.name_server() {
        Some(address) => {
            let mut servers = ResolverConfig::new();
            servers.add_name_server(NameServerConfig::new(address, Protocol::Udp));
            servers.add_name_server(NameServerConfig::new(address, Protocol::Tcp));
            let mut builder =
                TokioResolver::builder_with_config(servers, TokioConnectionProvider::default());
            // One server named explicitly means that server's answers only.
            builder.options_mut().use_hosts_file = ResolveHosts::Never;
            builder
        }
        None => TokioResolver::builder_tokio().map_err(|source| Error::SystemConfig { source })?,
    };
    let options = builder.options_mut();
    options.timeout = config.timeout();
    options.attempts = 1;
    Ok(builder.build())
}

/// One lookup, bounded by the configured timeout.
pub(crate) async fn resolve(
    resolver: &TokioResolver,
    config: &Config,
) -> Result<Vec<String>, Error> {
    let target = config.target();
    // The poll interval is what bounds staleness, so answers are never reused from the
    // resolver's own cache: the server behind it (CoreDNS, dnsmasq) caches per TTL already.
    resolver.clear_cache();
    // The resolver has its own timeout per query, but an A/AAAA lookup may be several queries
    // (search domains, two families); this bounds the whole.
    let bound = config.timeout() * 2;
    let answer = tokio::time::timeout(bound, ask(resolver, target)).await;
    let urls = match answer {
        Err(_) => {
            return Err(Error::Timeout {
                name: target.name().to_owned(),
                after: bound,
            });
        }
        Ok(Err(source)) if source.is_no_records_found() || source.is_nx_domain() => Vec::new(),
        Ok(Err(source)) => {
            return Err(Error::Lookup {
                name: target.name().to_owned(),
                source,
            });
        }
        Ok(Ok(urls)) => urls,
    };
    let urls = normalise(urls);
    if urls.is_empty() {
        return Err(Error::NoRecords {
            name: target.name().to_owned(),
            kind: match target {
                Target::Srv { .. } => "SRV",
                Target::Addresses { .. } => "A/AAAA",
            },
        });
    }
    Ok(urls)
}

async fn ask(
    resolver: &TokioResolver,
    target: &Target,
) -> Result<Vec<String>, hickory_resolver::ResolveError> {
    match target {
        Target::Addresses { name, port } => {
            let answer = resolver.lookup_ip(name.as_str()).await?;
            Ok(answer.iter().map(|ip| address_url(ip, *port)).collect())
        }
        Target::Srv { name } => {
            let answer = resolver.srv_lookup(name.as_str()).await?;
            Ok(answer
                .iter()
                .filter_map(|srv| srv_url(&srv.target().to_ascii(), srv.port()))
                .collect())
        }
    }
}

/// `http://ADDRESS:PORT`, with an IPv6 address in brackets.
pub(crate) fn address_url(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
    }
}

/// `http://HOST:PORT` for an SRV record, or `None` for a record that names no service (target
/// `.`, which RFC 2782 uses to say "not available here", or port 0).
pub(crate) fn srv_url(target: &str, port: u16) -> Option<String> {
    let host = target.strip_suffix('.').unwrap_or(target);
    if host.is_empty() || port == 0 {
        return None;
    }
    // DNS names compare case-insensitively; URLs on the ring compare as bytes.
    Some(format!("http://{}:{port}", host.to_ascii_lowercase()))
}

/// Sorted, without duplicates: the same set of members always makes the same list, whatever
/// order the server answered in, so a reordered answer is not a membership change.
pub(crate) fn normalise(mut urls: Vec<String>) -> Vec<String> {
    urls.sort_unstable();
    urls.dedup();
    urls
}
