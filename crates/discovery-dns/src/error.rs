use std::time::Duration;

/// Why a configuration was rejected or a lookup did not succeed.
///
/// Once a [`Watcher`](crate::Watcher) runs it does not report lookup errors to its caller: it
/// keeps the last good list, logs the first failure of a streak through `tracing`, and counts
/// the streak in its [`Status`](crate::Status). The one-shot [`lookup`](crate::lookup) returns
/// them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value given to [`ConfigBuilder`](crate::ConfigBuilder) was rejected before anything
    /// was asked; `field` names the setting.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The setting that was rejected, e.g. `"interval"`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The text given as the name to look up is not `NAME` or `NAME:PORT`.
    #[error("invalid DNS target {target:?}: {reason}")]
    InvalidTarget {
        /// The text as given.
        target: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The system's resolver configuration (`/etc/resolv.conf`) could not be read.
    #[error("cannot read the system's resolver configuration: {source}")]
    SystemConfig {
        /// The resolver's error.
        #[source]
        source: hickory_resolver::ResolveError,
    },

    /// The name exists in no record of the asked type, or the answer named no usable peer.
    ///
    /// A watcher treats this as a failure and keeps its last list: an empty member list is
    /// never what an operator means, and a transiently empty answer (every pod of a headless
    /// Service briefly unready) must not make each node serve alone.
    #[error("DNS has no {kind} records for {name}")]
    NoRecords {
        /// The name asked.
        name: String,
        /// `"A/AAAA"` or `"SRV"`.
        kind: &'static str,
    },

    /// The lookup failed: no server answered, or it answered with an error.
    #[error("DNS lookup of {name} failed: {source}")]
    Lookup {
        /// The name asked.
        name: String,
        /// The resolver's error.
        #[source]
        source: hickory_resolver::ResolveError,
    },

    /// No answer came within the configured timeout.
    #[error("DNS lookup of {name} timed out after {after:?}")]
    Timeout {
        /// The name asked.
        name: String,
        /// The bound that ran out.
        after: Duration,
    },
}
