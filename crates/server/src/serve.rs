//! `geecache serve`: one node, until SIGTERM or SIGINT.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::client;
use crate::config::{self, Config};
use crate::membership::Membership;
use crate::node::{Drained, Node, NodeGroup, NodeOptions};
use crate::shutdown;
use crate::source::DataSource;
use crate::tls;

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `serve`: exit 0 after a clean shutdown, 1 on a runtime failure, 2 on a bad config.
pub(crate) fn run(args: &ServeArgs) -> ExitCode {
    let config = match config::load(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("geecache: config error: {e}");
            return ExitCode::from(2);
        }
    };
    crate::init_logging(&config.log_level);
    // Read before anything is bound, like the rest of the config: a bad file stops the node
    // with status 2 and a message naming the file.
    let tls = match config.tls.as_ref().map(tls::NodeTls::load).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("geecache: config error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = crate::start_runtime(crate::Workers::Pool(config.threads)) else {
        return ExitCode::from(1);
    };
    let result = runtime.block_on(serve(config, tls));
    crate::stop_runtime(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once, on stderr, where the log lines go too: a log line and this would say it
            // twice (a taken port was reported twice).
            eprintln!("geecache: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Where the peer list comes from: etcd when configured (only possible in a build with the
/// `etcd` feature; the config check refuses it otherwise), a DNS name when configured, else
/// the static list. The config check allows only one of the three.
fn membership(config: &Config) -> Membership {
    #[cfg(feature = "etcd")]
    if let Some(etcd) = &config.etcd {
        return Membership::Etcd(etcd.clone());
    }
    if let Some(dns) = &config.dns {
        return Membership::Dns(dns.clone());
    }
    Membership::Static(config.peers.clone())
}

async fn serve(config: Config, tls: Option<Arc<tls::NodeTls>>) -> anyhow::Result<()> {
    // Before anything answers: a SIGTERM that comes once the node reports ready must drain it.
    let signal = shutdown::listen();
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;

    let http = client::new_client();
    let mut groups = Vec::with_capacity(config.groups.len());
    for group in &config.groups {
        let source = DataSource::from_config(group, &http).with_context(|| {
            format!(
                "group {:?}: cannot open source {}",
                group.name, group.source
            )
        })?;
        groups.push(NodeGroup {
            name: group.name.clone(),
            cache_bytes: group.cache_bytes,
            ttl: group.ttl,
            source,
            policy: group.policy,
            charge: group.charge,
            negative_ttl: group.negative_ttl,
            hot: group.hot.admission(),
            peer_batch_window: group.peer_batch_window,
        });
    }
    let options = NodeOptions {
        self_url: config.self_url.clone(),
        membership: membership(&config),
        transport: config.transport,
        base_path: config.base_path.clone(),
        ring: config.ring,
        replicas: config.replicas,
        handoff: config.handoff,
        groups,
        peer_timeout: config.peer_timeout,
        max_key_bytes: config.max_key_bytes,
        peer_token: config.peer_token.clone(),
        api_token: config.api_token.clone(),
        max_connections: Some(config.max_connections),
        max_peer_bytes_in_flight: Some(config.max_peer_bytes_in_flight),
        peer_key_encoding: config.peer_key_encoding,
        max_batch_keys: config.max_batch_keys,
        max_batch_bytes: config.max_batch_bytes,
        max_set_bytes: config.max_set_bytes,
        tls: tls.clone(),
    };
    let node = Node::start(listener, options).await?;
    // Aborted when `serve` returns: reloading ends with the node.
    let reloading = tls.map(|tls| AbortOnDrop(tls::watch(tls, tls::POLL_INTERVAL)));
    if !config.peers.is_empty() && !config.peers.iter().any(|p| p == node.url()) {
        tracing::warn!(
            self_url = node.url(),
            "the peer list does not include this node's URL; if it names this node another \
             way, the node will send itself requests"
        );
    }
    tracing::info!(
        address = %addr,
        self_url = node.url(),
        config = config.summary(),
        "geecache node started"
    );
    // The one line on stdout: scripts and tests read the bound port from it.
    let scheme = if reloading.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{addr}");
    let _ = std::io::stdout().flush();

    let signal = signal.await;
    tracing::info!(
        signal,
        drain_timeout = ?config.drain_timeout,
        "shutting down: no new connections; draining in-flight requests"
    );
    match node.shutdown(config.drain_timeout).await {
        Drained::Clean => tracing::info!("drained; bye"),
        Drained::TimedOut => tracing::warn!(
            drain_timeout = ?config.drain_timeout,
            "drain timed out; remaining requests were cut off"
        ),
    }
    Ok(())
}
