//! The rules for the two strings a cluster's nodes must agree on: peer URLs and the base path.
//!
//! Every node that takes these from an operator (the `geecache` binary, an embedding
//! application) calls the same functions, so a URL one node accepts is never refused, or
//! spelled differently, by another.
//!
//! ```
//! use geecache_transport_http::validate;
//!
//! assert_eq!(validate::peer_url("http://10.0.0.1:8001/")?, "http://10.0.0.1:8001");
//! assert!(validate::peer_url("http://10.0.0.1:8001/cache").is_err());
//! assert!(validate::base_path("/_groupcache/").is_ok());
//! assert!(validate::base_path("/metrics/").is_err()); // a route of its own
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::Error;

/// The first path segments of the routes a node serves besides the peer route; a base path
/// starting with one would shadow it.
pub const RESERVED_SEGMENTS: [&str; 5] = ["api", "healthz", "readyz", "stats", "metrics"];

/// A peer's base URL in its one spelling: `http://host[:port]` or `https://host[:port]`, a
/// single trailing `/` dropped.
///
/// Peers are named by this string on every node's ring (it is what the ring hashes), so two
/// spellings of one node would be two members. The one rewrite done here, dropping a trailing
/// `/`, is done by every node that uses this function, so `http://a:1/` and `http://a:1` name
/// the same member everywhere; anything else after the authority (a path, a query) is refused
/// rather than guessed at.
///
/// # Errors
///
/// [`Error::InvalidUrl`], saying what is wrong.
pub fn peer_url(url: &str) -> Result<String, Error> {
    let url = url
        .strip_suffix('/')
        .filter(|u| !u.ends_with('/'))
        .unwrap_or(url);
    check_peer_url(url)?;
    Ok(url.to_owned())
}

fn check_peer_url(url: &str) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidUrl {
            url: url.to_owned(),
            reason,
        })
    };
    let Some(authority) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return bad("must start with http:// or https://");
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
    if !authority.ends_with(']')
        && let Some((_, port)) = authority.rsplit_once(':')
        && port.parse::<u16>().is_err()
    {
        return bad("port is not a number from 0 to 65535");
    }
    match http::uri::Authority::try_from(authority) {
        Ok(parsed) if parsed.host().is_empty() => bad("missing host"),
        Ok(_) => Ok(()),
        Err(_) => bad("not a valid host[:port]"),
    }
}

/// Whether a peer URL names a node that speaks TLS (`https://`).
#[must_use]
pub fn is_https(url: &str) -> bool {
    url.starts_with("https://")
}

/// Checks that `url` has the scheme a node that does (`tls`) or does not speak TLS uses for
/// its peers: a cluster is all `https://` or all `http://`. A node never downgrades to plain
/// HTTP for one member, and never dials TLS without a configuration to check the peer with.
///
/// # Errors
///
/// [`Error::InvalidUrl`], saying which scheme was expected.
pub fn peer_scheme(url: &str, tls: bool) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidUrl {
            url: url.to_owned(),
            reason,
        })
    };
    match (is_https(url), tls) {
        (true, true) | (false, false) => Ok(()),
        (false, true) => bad(
            "http:// in a cluster that speaks TLS; every member's URL must be https:// (a mixed \
             cluster would send values and tokens in clear text)",
        ),
        (true, false) => bad(
            "https:// in a cluster without TLS; give every node a certificate and a CA \
             (--tls-cert, --tls-key, --tls-ca) or use http:// everywhere",
        ),
    }
}

/// Checks a base path: starts and ends with `/`, at least one segment, unreserved characters
/// only, and a first segment that is not one of the [`RESERVED_SEGMENTS`].
///
/// Only unreserved characters are allowed so the base means the same raw and decoded and can be
/// mounted as a route without escaping (the router treats `{`, `}` and `*` specially).
///
/// # Errors
///
/// [`Error::InvalidBasePath`], saying what is wrong.
pub fn base_path(base: &str) -> Result<(), Error> {
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
    let first = base.split('/').nth(1).unwrap_or_default();
    if RESERVED_SEGMENTS.contains(&first) {
        return bad(
            "starts with the segment of another route (api, healthz, readyz, stats or metrics)",
        );
    }
    Ok(())
}
