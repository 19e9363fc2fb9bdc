//! The error vocabulary of the wire: one kind per way a request can fail.

use std::fmt;

use http::StatusCode;

/// What went wrong with a request, as the `x-geecache-error` header names it.
///
/// Every error answer carries its kind, so programs never parse the human-readable body. The
/// router answers with these, and the peer client and the `geecache get` command read them
/// back with [`ErrorKind::parse`]; no other code matches the strings.
///
/// ```
/// use geecache_transport_http::ErrorKind;
///
/// assert_eq!(ErrorKind::parse("not-found"), Some(ErrorKind::NotFound));
/// assert_eq!(ErrorKind::InvalidKey.as_str(), "invalid-key");
/// assert_eq!(ErrorKind::InvalidKey.status(), http::StatusCode::BAD_REQUEST);
/// assert_eq!(ErrorKind::parse("no-such-kind"), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 404 `not-found`: the group's source has no value for the key. An answer, not a failure.
    NotFound,
    /// 400 `invalid-key`: the group's source refuses the key. An answer, not a failure.
    InvalidKey,
    /// 404 `not-cached`: the answer to a peek for a key the node holds no copy of.
    NotCached,
    /// 404 `unknown-group`: this node serves no group of that name.
    UnknownGroup,
    /// 400 `bad-path`: the path is not `{base}{group}/{key}`, an escape is malformed, or the
    /// key is empty.
    BadPath,
    /// 414 `key-too-long`: the key is over the node's limit.
    KeyTooLong,
    /// 401 `unauthorized`: the route needs a bearer token and the request had none, or
    /// another.
    Unauthorized,
    /// 500 `load-failed`: the source failed (or its loader panicked).
    LoadFailed,
    /// 503 `shutting-down`: sent by earlier versions to requests that arrived while they
    /// drained (a node now answers them and closes the connection); still read from older
    /// nodes.
    ShuttingDown,
    /// 503 `not-ready` (on `/readyz`): the node should not get traffic yet.
    NotReady,
    /// 404 `no-route`: no route has this path.
    NoRoute,
    /// 413 `too-large`: a request body is over the node's limit.
    TooLarge,
    /// 400 `bad-body`: a request body does not decode as what the route takes.
    BadBody,
    /// 502 `owner-unavailable`: a write went to the key's owner, which did not store it
    /// (unreachable, timed out, or a node that takes no writes); nothing was stored.
    OwnerUnavailable,
    /// 500 `internal`: anything else.
    Internal,
    /// 503 `too-many-connections`: the node has as many connections open as it allows, and
    /// closed this one after answering (`ServeConfig::max_connections`).
    TooManyConnections,
    /// 400 `tls-required`: a plain-HTTP request reached a port that speaks TLS only; the
    /// connection was closed after answering (`ServeConfig::tls`).
    TlsRequired,
}

impl ErrorKind {
    /// Every kind, e.g. for documentation or exhaustive tests.
    pub const ALL: [ErrorKind; 17] = [
        ErrorKind::NotFound,
        ErrorKind::InvalidKey,
        ErrorKind::NotCached,
        ErrorKind::UnknownGroup,
        ErrorKind::BadPath,
        ErrorKind::KeyTooLong,
        ErrorKind::Unauthorized,
        ErrorKind::LoadFailed,
        ErrorKind::ShuttingDown,
        ErrorKind::NotReady,
        ErrorKind::NoRoute,
        ErrorKind::TooLarge,
        ErrorKind::BadBody,
        ErrorKind::OwnerUnavailable,
        ErrorKind::Internal,
        ErrorKind::TooManyConnections,
        ErrorKind::TlsRequired,
    ];

    /// The kind's name on the wire, e.g. `"not-found"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::InvalidKey => "invalid-key",
            ErrorKind::NotCached => "not-cached",
            ErrorKind::UnknownGroup => "unknown-group",
            ErrorKind::BadPath => "bad-path",
            ErrorKind::KeyTooLong => "key-too-long",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::LoadFailed => "load-failed",
            ErrorKind::ShuttingDown => "shutting-down",
            ErrorKind::NotReady => "not-ready",
            ErrorKind::NoRoute => "no-route",
            ErrorKind::TooLarge => "too-large",
            ErrorKind::BadBody => "bad-body",
            ErrorKind::OwnerUnavailable => "owner-unavailable",
            ErrorKind::Internal => "internal",
            ErrorKind::TooManyConnections => "too-many-connections",
            ErrorKind::TlsRequired => "tls-required",
        }
    }

    /// The kind a header value names, or `None` for a name this version does not know (a
    /// newer node's, or not geecache's at all).
    #[must_use]
    pub fn parse(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The status code answers of this kind carry.
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::NotFound
            | ErrorKind::NotCached
            | ErrorKind::UnknownGroup
            | ErrorKind::NoRoute => StatusCode::NOT_FOUND,
            ErrorKind::InvalidKey
            | ErrorKind::BadPath
            | ErrorKind::BadBody
            | ErrorKind::TlsRequired => StatusCode::BAD_REQUEST,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::KeyTooLong => StatusCode::URI_TOO_LONG,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::LoadFailed | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::OwnerUnavailable => StatusCode::BAD_GATEWAY,
            ErrorKind::ShuttingDown | ErrorKind::NotReady | ErrorKind::TooManyConnections => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
