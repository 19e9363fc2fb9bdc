/// Why a pool or a service could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A peer URL (or the pool's own URL) is not of the form `http://host[:port]`.
    #[error("invalid peer URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A shared secret is empty or holds characters metadata cannot carry.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// A setting that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}
