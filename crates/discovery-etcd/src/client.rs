use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::{Config, Error};

/// How often an open connection is pinged (HTTP/2 PING) to find out that etcd went away without
/// closing it, e.g. behind a partition. Not shorter: etcd closes connections that ping more
/// often than its `--grpc-keepalive-min-time` (5 s by default) with "too many pings".
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// How long a ping may go unanswered before the connection counts as dead.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A new client for `config`'s endpoints.
///
/// The connection itself is made lazily, by the first request; this call fails only on
/// endpoints that do not parse.
pub(crate) async fn connect(config: &Config) -> Result<Client, Error> {
    let options = ConnectOptions::new()
        .with_connect_timeout(config.request_timeout())
        .with_keep_alive(PING_INTERVAL, PING_TIMEOUT)
        // A member cut off from its cluster's quorum would otherwise keep a watch open that
        // never delivers another event; with this, it cancels the watch and we move on.
        .with_require_leader(true);
    request(
        "connect",
        config.request_timeout(),
        Client::connect(config.endpoints(), Some(options)),
    )
    .await
}

/// Runs one etcd request with a deadline.
///
/// The deadline is ours, not the client's. A refused connection fails at once, but an etcd that
/// accepted the connection and then stopped answering (a stalled process, a member without a
/// leader, packets dropped by a partition) would leave the request waiting for as long as the
/// connection lives.
pub(crate) async fn request<T>(
    operation: &'static str,
    timeout: Duration,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(Error::Etcd { operation, source }),
        Err(_) => Err(Error::Timeout {
            operation,
            after: timeout,
        }),
    }
}
