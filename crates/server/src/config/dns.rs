//! The DNS membership settings: the name to follow, how often, and which server to ask.

use std::net::SocketAddr;

use geecache_discovery_dns as discovery;

use super::DnsConfig;
use super::error::ConfigError;
use super::layers::{Layers, ids};
use super::units::format_duration;
use super::values::positive_duration;

/// The DNS settings: `--peers-dns`, with `--dns-interval` and `--dns-server` only beside it.
pub(super) fn resolve_dns(layers: &Layers<'_>) -> Result<Option<DnsConfig>, ConfigError> {
    let args = layers.args;
    let file = layers.file;
    let name = layers
        .pick(
            ids::PEERS_DNS,
            args.peers_dns.as_ref(),
            file.peers_dns.as_ref(),
        )
        .filter(|(n, _)| !n.trim().is_empty());
    let interval = layers.pick(
        ids::DNS_INTERVAL,
        args.dns_interval.as_ref(),
        file.dns_interval.as_ref(),
    );
    let server = layers.pick(
        ids::DNS_SERVER,
        args.dns_server.as_ref(),
        file.dns_server.as_ref(),
    );
    let Some((name, name_field)) = name else {
        if let Some((_, field)) = interval.as_ref().or(server.as_ref()) {
            return Err(ConfigError::Missing(format!(
                "{field} needs --peers-dns NAME[:PORT] (or peers_dns = \"NAME[:PORT]\" in the \
                 config file): the DNS name whose records are the cluster's members"
            )));
        }
        return Ok(None);
    };
    let target = name.trim().parse::<discovery::Target>().map_err(|e| {
        let problem = match e {
            discovery::Error::InvalidTarget { reason, .. } => reason.to_owned(),
            other => other.to_string(),
        };
        ConfigError::invalid(
            &name_field,
            &name,
            problem,
            "expected NAME:PORT for A/AAAA records (e.g. geecache-peers.default.svc.cluster.local:8001) \
             or NAME for SRV records (e.g. _peer._tcp.geecache-peers.default.svc.cluster.local)",
        )
    })?;
    let interval = match interval {
        None => discovery::DEFAULT_INTERVAL,
        Some((text, field)) => {
            let d = positive_duration(&text, &field)?;
            if d < discovery::MIN_INTERVAL {
                return Err(ConfigError::invalid(
                    &field,
                    &text,
                    "too short: every node would ask the DNS server this often",
                    format!(
                        "expected at least {}; the default is {}",
                        format_duration(discovery::MIN_INTERVAL),
                        format_duration(discovery::DEFAULT_INTERVAL)
                    ),
                ));
            }
            d
        }
    };
    let server = match server {
        None => None,
        Some((text, field)) => Some(text.trim().parse::<SocketAddr>().map_err(|_| {
            ConfigError::invalid(
                &field,
                &text,
                "not an IP:PORT socket address",
                "expected e.g. 10.96.0.10:53 or [fd00::a]:53",
            )
        })?),
    };
    Ok(Some(DnsConfig {
        target: target.to_string(),
        interval,
        server,
        https: false,
    }))
}
