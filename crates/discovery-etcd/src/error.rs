use std::time::Duration;

/// Why a configuration was rejected or an etcd request did not succeed.
///
/// Only the starting and stopping calls return errors. Once [`Registration`](crate::Registration)
/// and [`Membership`](crate::Membership) run, they ride out etcd failures on their own (retrying
/// with backoff and logging through `tracing`) rather than reporting them to the caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value given to [`ConfigBuilder`](crate::ConfigBuilder) was rejected before anything
    /// was contacted; `field` names the setting.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The setting that was rejected, e.g. `"cluster"`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The URL given to [`Registration::start`](crate::Registration::start) cannot name a peer.
    #[error("invalid peer URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An etcd request failed: the connection broke, or etcd refused the request.
    #[error("etcd {operation} failed: {source}")]
    Etcd {
        /// The request that failed, e.g. `"lease grant"`.
        operation: &'static str,
        /// The error reported by the etcd client.
        #[source]
        source: etcd_client::Error,
    },

    /// etcd did not answer within the configured request timeout (it is down, unreachable, or
    /// has no leader).
    #[error("etcd {operation} timed out after {after:?}")]
    Timeout {
        /// The request that timed out, e.g. `"range read"`.
        operation: &'static str,
        /// The timeout that ran out.
        after: Duration,
    },
}
