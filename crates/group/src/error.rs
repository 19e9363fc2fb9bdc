use std::sync::Arc;
use std::time::Duration;

/// A boxed error from a loader or a peer transport.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A key the source refuses to look up at all, as opposed to one it looks up and misses.
///
/// It is the caller's mistake (or an attack: a path that tries to leave a directory), so no
/// retry, peer or fallback can make it valid. A group answers it without caching anything, a
/// peer passes it on as an answer, and the HTTP transport maps it to 400 `invalid-key`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid key: {reason}")]
pub struct Rejected {
    reason: String,
}

impl Rejected {
    /// A rejection saying why, e.g. "the path has a '..' segment".
    pub fn new(reason: impl Into<String>) -> Self {
        Rejected {
            reason: reason.into(),
        }
    }

    /// Why the key was refused.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Why a [`Getter`](crate::Getter) produced no value.
///
/// "Not found" is kept apart from failures: it is an answer, and a peer passes it on as one
/// instead of making the caller load the key again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The source has no value for this key.
    #[error("not found")]
    NotFound,
    /// The source refuses to look this key up; found out while loading (a check that needs
    /// I/O). Checks without I/O belong in [`Getter::check_key`](crate::Getter::check_key).
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// The source failed; the message says how. Never cached: the next get tries again.
    #[error("{0}")]
    Failed(#[source] BoxError),
}

impl LoadError {
    /// A failure with `error` as its cause.
    pub fn failed(error: impl Into<BoxError>) -> Self {
        LoadError::Failed(error.into())
    }
}

/// Why a peer could not answer. Every kind but [`PeerError::NotFound`] and
/// [`PeerError::Rejected`] (answers about the key) makes the caller fall back to its local
/// loader.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The peer answered that the key does not exist at its source.
    #[error("peer has no such key")]
    NotFound,
    /// The peer answered that its source refuses the key: an answer, like `NotFound`.
    #[error("peer refused the key: {0}")]
    Rejected(Rejected),
    /// The peer did not answer within the group's peer timeout.
    #[error("peer timed out after {0:?}")]
    Timeout(Duration),
    /// The peer could not be reached (refused, reset, unknown host).
    #[error("peer unreachable: {0}")]
    Unavailable(#[source] BoxError),
    /// The peer answered with an error status.
    #[error("peer answered {status}: {message}")]
    Status {
        /// The status code, e.g. 500.
        status: u16,
        /// The peer's message, trimmed to a sensible length by the transport.
        message: String,
    },
    /// The peer's answer could not be decoded.
    #[error("malformed peer response: {0}")]
    Malformed(String),
    /// The batch request that asked for this key among others failed as a whole
    /// ([`PeerGetter::get_many`](crate::PeerGetter::get_many)); every key of it sees the same
    /// error.
    #[error("batch request failed: {0}")]
    Batch(#[source] Arc<PeerError>),
    /// The transport, or this peer, does not take this kind of request (a write, say, to a
    /// Go groupcache node). An answer, not a failure: it says nothing of the peer's health.
    #[error("peer does not support {0}")]
    Unsupported(&'static str),
    /// This node did not make the request, or stopped reading the answer, to stay within a
    /// limit of its own (the bytes of peer answers it may be receiving at once, say). It says
    /// nothing of the peer, whose health does not change; the caller loads the key itself.
    #[error("over this node's limit: {0}")]
    OverLimit(String),
}

/// Why [`Group::get`](crate::Group::get) returned no value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is empty; groups never store the empty key.
    #[error("empty key")]
    EmptyKey,
    /// Neither the owning peer nor the local loader has a value for the key.
    #[error("not found")]
    NotFound,
    /// The source refuses the key (its key check, its loader or the owning peer said so).
    #[error(transparent)]
    Rejected(Rejected),
    /// The local loader failed. Every caller that shared the flight sees the same error.
    #[error("load failed: {0}")]
    Load(Arc<LoadError>),
    /// The local loader (or a peer client) panicked. The group stays usable; the next get
    /// loads afresh.
    #[error("loader panicked")]
    Panicked,
}

impl Error {
    /// Whether this is [`Error::NotFound`].
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound)
    }

    /// Whether this is [`Error::Rejected`].
    #[must_use]
    pub fn is_rejected(&self) -> bool {
        matches!(self, Error::Rejected(_))
    }
}

/// Why a [`GroupBuilder`](crate::GroupBuilder) could not build its group.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No loader was given; a group cannot fill itself without one.
    #[error("group {0:?} has no getter")]
    MissingGetter(String),
    /// The name is empty. (Any other string will do: transports escape names as they need.)
    #[error("a group name must not be empty")]
    EmptyName,
    /// The registry given to [`register`](crate::GroupBuilder::register) already holds a group
    /// with this name.
    #[error(transparent)]
    Duplicate(#[from] DuplicateGroup),
    /// The hot cache ratio must be at least 1 (hot may hold up to main / ratio bytes).
    #[error("hot cache ratio must be at least 1, got {0}")]
    InvalidHotRatio(usize),
    /// The hot-cache rate threshold must be a number of requests per second, zero or more.
    #[error("hot_qps must be a number zero or above, got {0}")]
    InvalidHotQps(f64),
    /// A duration setting was zero where a positive one is needed.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// The peer batch window was longer than 10 ms: every coalesced fetch would wait longer
    /// than the round trip it saves.
    #[error("peer_batch_window must be at most 10ms, not {0:?}")]
    PeerBatchWindowTooLong(std::time::Duration),
}

/// [`Group::register_peers`](crate::Group::register_peers) was called on a group that already
/// has a peer picker.
#[derive(Debug, thiserror::Error)]
#[error("group {0:?} already has a peer picker")]
pub struct AlreadyRegistered(pub String);

/// [`Registry::insert`](crate::Registry::insert) found a group of that name already there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a group named {0:?} is registered already")]
pub struct DuplicateGroup(pub String);
