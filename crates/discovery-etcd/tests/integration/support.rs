//! Configuration and bounded waits shared by the tests.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use geecache_discovery_etcd::{Config, Membership};
use tokio::sync::watch;

use crate::etcd::Etcd;

/// A short lease, so that expiry tests finish quickly.
pub(crate) const TTL: Duration = Duration::from_secs(2);

/// The deadline for waits whose length the requirements do not fix: generous, because a slow
/// machine must not fail a correct implementation, yet bounded.
pub(crate) const PATIENCE: Duration = Duration::from_secs(15);

/// A configuration for `cluster` on `etcd`, with short timeouts and backoff.
pub(crate) fn config(etcd: &Etcd, cluster: &str) -> Config {
    Config::builder()
        .endpoint(etcd.client_url())
        .cluster(cluster)
        .ttl(TTL)
        .request_timeout(Duration::from_secs(1))
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .build()
        .expect("valid test config")
}

/// A peer URL; no server listens there, membership only passes names around.
pub(crate) fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// `urls`, sorted, as every membership list must be.
pub(crate) fn sorted(urls: &[&String]) -> Vec<String> {
    let mut list: Vec<String> = urls.iter().map(|u| (*u).clone()).collect();
    list.sort();
    list
}

/// Waits until `membership` publishes exactly `expected`, at most `within`.
pub(crate) async fn wait_for_peers(membership: &Membership, expected: &[String], within: Duration) {
    let mut lists = membership.subscribe();
    wait_until(
        &mut lists,
        within,
        &format!("peer list {expected:?}"),
        |list| list.as_deref() == Some(expected),
    )
    .await;
}

/// Waits until the value in `rx` satisfies `ready`, at most `within`; panics naming `what`
/// and the last value seen.
pub(crate) async fn wait_until<T: Debug>(
    rx: &mut watch::Receiver<T>,
    within: Duration,
    what: &str,
    ready: impl FnMut(&T) -> bool,
) {
    let outcome = tokio::time::timeout(within, rx.wait_for(ready))
        .await
        .map(|result| result.map(drop));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("the channel closed while waiting for {what}"),
        Err(_) => panic!(
            "no {what} within {within:?}; last value: {:?}",
            *rx.borrow()
        ),
    }
}

/// The keys under the cluster's prefix as etcd holds them, with their leases.
pub(crate) async fn stored_keys(etcd: &Etcd, config: &Config) -> Vec<(String, i64)> {
    let mut client = etcd.client().await;
    let options = etcd_client::GetOptions::new().with_prefix();
    let response = client
        .get(config.nodes_prefix(), Some(options))
        .await
        .expect("read keys");
    response
        .kvs()
        .iter()
        .map(|kv| (kv.key_str().expect("utf-8 key").to_string(), kv.lease()))
        .collect()
}

/// The list a membership holds now, as owned strings.
pub(crate) fn current(membership: &Membership) -> Option<Vec<String>> {
    membership
        .current()
        .map(|list: Arc<[String]>| list.to_vec())
}
