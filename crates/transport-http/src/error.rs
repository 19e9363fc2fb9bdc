/// Why a pool or a router could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A peer URL (or the pool's own URL) is not of the form `http://host:port`.
    #[error("invalid peer URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The base path of the peer route is not of the form `/segment/.../`.
    #[error("invalid base path {base:?}: {reason}")]
    InvalidBasePath {
        /// The base path as given.
        base: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A shared secret is empty or holds characters a header cannot carry.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// A setting that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

/// Checks a peer's base URL: `http://authority` with nothing after the authority.
///
/// Peers are named by this exact string on every node's ring (it is what the ring hashes), so
/// it is validated rather than normalised: rewriting `http://a:1/` into `http://a:1` here and
/// not on another node would make the two nodes disagree about owners.
pub(crate) fn validate_peer_url(url: &str) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidUrl {
            url: url.to_owned(),
            reason,
        })
    };
    let Some(authority) = url.strip_prefix("http://") else {
        return if url.starts_with("https://") {
            bad("https is not supported; terminate TLS in front of the node")
        } else {
            bad("must start with http://")
        };
    };
    if authority.is_empty() {
        return bad("missing host");
    }
    if authority.contains(['/', '?', '#']) {
        return bad("must be scheme://host[:port] with no path, query or fragment");
    }
    if authority.contains('@') {
        return bad("must not carry credentials; use a peer token");
    }
    // `,` separates peers in the `x-geecache-unconfirmed` header; whitespace is never part of
    // a host. Both are rejected so peer names stay unambiguous in lists.
    if authority
        .bytes()
        .any(|b| b == b',' || b.is_ascii_whitespace() || b.is_ascii_control() || !b.is_ascii())
    {
        return bad("host holds a character that is not allowed");
    }
    if !authority.ends_with(']') {
        if let Some((_, port)) = authority.rsplit_once(':') {
            if port.parse::<u16>().is_err() {
                return bad("port is not a number from 0 to 65535");
            }
        }
    }
    match http::uri::Authority::try_from(authority) {
        Ok(parsed) if parsed.host().is_empty() => bad("missing host"),
        Ok(_) => Ok(()),
        Err(_) => bad("not a valid host[:port]"),
    }
}

/// Checks a base path: starts and ends with `/`, at least one segment, unreserved characters
/// only.
///
/// Only unreserved characters are allowed so the base means the same raw and decoded and can be
/// mounted as a route without escaping (the router treats `{`, `}` and `*` specially).
pub(crate) fn validate_base_path(base: &str) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidBasePath {
            base: base.to_owned(),
            reason,
        })
    };
    if !base.starts_with('/') || !base.ends_with('/') {
        return bad("must start and end with '/'");
    }
    if base == "/" {
        return bad("must have at least one segment, or peer paths collide with /api and /healthz");
    }
    if base.contains("//") {
        return bad("must not contain an empty segment");
    }
    if base == "/api/" {
        return bad("is the client route's prefix");
    }
    if !base
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/'))
    {
        return bad("may hold only A-Za-z0-9-_.~ and '/'");
    }
    if base
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return bad("must not contain '.' or '..' segments");
    }
    Ok(())
}
