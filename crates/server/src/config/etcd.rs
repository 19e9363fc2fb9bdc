//! The etcd settings: endpoints, cluster name and lease time to live, all or none.

use std::time::Duration;

use super::EtcdConfig;
use super::error::ConfigError;
use super::layers::{Layers, ids};
use super::values::{is_unreserved, positive_duration};

/// The etcd settings: all three or none (`--etcd-ttl` alone has a default), and only in a
/// binary built with the `etcd` feature.
pub(super) fn resolve_etcd(layers: &Layers<'_>) -> Result<Option<EtcdConfig>, ConfigError> {
    let args = layers.args;
    let file = layers.file;
    let endpoints = match (&args.etcd, &file.etcd) {
        (Some(list), _) => Some((list.clone(), layers.cli_field(ids::ETCD))),
        (None, Some(list)) => Some((list.clone(), layers.file_field(ids::ETCD))),
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
        .pick(ids::CLUSTER, args.cluster.as_ref(), file.cluster.as_ref())
        .filter(|(c, _)| !c.trim().is_empty());
    let ttl = layers.pick(
        ids::ETCD_TTL,
        args.etcd_ttl.as_ref(),
        file.etcd_ttl.as_ref(),
    );

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
