//! Checks of single settings: addresses, URLs, durations, sizes, tokens, the log filter.
//!
//! Each takes the text as the operator wrote it and the [`Field`] it came from, and returns the
//! value or a [`ConfigError`] that names the field, the problem and what is allowed. Rules the
//! cluster's nodes must agree on (peer URLs, the base path) are the transport's own
//! (`geecache_transport_http::validate`), so the binary and the library never disagree.

use std::time::Duration;

use geecache_consistenthash::{MAX_REPLICAS, Preset};
use geecache_transport_http::path::Decoding;
use geecache_transport_http::validate;

use super::error::{ConfigError, Field};
use super::units::{DURATION_FORMS, SIZE_FORMS, parse_duration, parse_size};
use crate::node::Transport;

/// Most worker threads accepted: far past any useful count, low enough that a typo
/// (`--threads 80000`) is refused rather than exhausting the machine.
const MAX_THREADS: usize = 1024;

pub(super) fn checked_threads(text: &str, field: &Field) -> Result<usize, ConfigError> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        Ok(_) => Err(ConfigError::invalid(
            field,
            text,
            "out of range",
            format!("expected between 1 and {MAX_THREADS}; leave it unset for one per CPU"),
        )),
        Err(_) => Err(ConfigError::invalid(
            field,
            text,
            "not a whole number",
            format!("expected between 1 and {MAX_THREADS}; leave it unset for one per CPU"),
        )),
    }
}

/// Most connections accepted for `--max-connections`: far past what one process can hold.
const MAX_CONNECTIONS: usize = 1 << 20;

pub(super) fn checked_max_connections(text: &str, field: &Field) -> Result<usize, ConfigError> {
    let allowed = || {
        format!(
            "expected between 1 and {MAX_CONNECTIONS}; leave it unset for three quarters of the \
             open-file limit"
        )
    };
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_CONNECTIONS).contains(&n) => Ok(n),
        Ok(_) => Err(ConfigError::invalid(field, text, "out of range", allowed())),
        Err(_) => Err(ConfigError::invalid(
            field,
            text,
            "not a whole number",
            allowed(),
        )),
    }
}

/// The most keys a node puts in one batch to a peer: a node whose batch limit were lower would
/// refuse its peers' batches, and they would load those keys themselves instead of asking the
/// owner.
const PEER_BATCH_KEYS: usize = geecache_group::GET_MANY_BATCH;

/// Checks `--max-batch-keys`: at least a peer's batch, at most a million.
pub(super) fn checked_max_batch_keys(text: &str, field: &Field) -> Result<usize, ConfigError> {
    let allowed = || {
        format!(
            "expected a whole number between {PEER_BATCH_KEYS} (the most keys a node sends a peer \
             at once) and 1000000; the default is 1000"
        )
    };
    match text.trim().parse::<usize>() {
        Ok(n) if (PEER_BATCH_KEYS..=1_000_000).contains(&n) => Ok(n),
        Ok(_) => Err(ConfigError::invalid(field, text, "out of range", allowed())),
        Err(_) => Err(ConfigError::invalid(
            field,
            text,
            "not a whole number",
            allowed(),
        )),
    }
}

/// Checks `--max-batch-bytes`: room for a peer's batch of short keys.
pub(super) fn checked_max_batch_bytes(text: &str, field: &Field) -> Result<u64, ConfigError> {
    match parse_size(text) {
        // A peer's batch of 256 keys must fit, keys of 256 bytes at least.
        Some(n) if n >= 64 << 10 => Ok(n),
        Some(_) => Err(ConfigError::invalid(
            field,
            text,
            "out of range",
            "expected at least 64KiB (a peer's batch of 256 keys must fit); the default is 4MiB",
        )),
        None => Err(ConfigError::invalid(
            field,
            text,
            "not a size",
            format!("expected {SIZE_FORMS}"),
        )),
    }
}

/// Checks a node's base URL (`--self-url`, `--peers`) with the transport's rule:
/// `http://HOST[:PORT]`, nothing after it but a trailing `/`, which is dropped.
///
/// Nodes name each other by these strings on the hash ring, so every node must spell a member
/// the same way; using the transport's own function is what guarantees it.
pub(super) fn node_url(text: &str, field: &Field) -> Result<String, ConfigError> {
    const ALLOWED: &str = "expected http://HOST:PORT (https:// with TLS) with nothing after it, e.g. \
         http://10.0.0.1:8001";
    validate::peer_url(text.trim()).map_err(|error| match error {
        geecache_transport_http::Error::InvalidUrl { reason, .. } => {
            ConfigError::invalid(field, text, reason, ALLOWED)
        }
        other => ConfigError::invalid(field, text, other.to_string(), ALLOWED),
    })
}

pub(super) fn checked_peers(list: &[String], field: &Field) -> Result<Vec<String>, ConfigError> {
    let mut peers: Vec<String> = Vec::with_capacity(list.len());
    for text in list.iter().filter(|t| !t.trim().is_empty()) {
        let url = node_url(text, field)?;
        if peers.contains(&url) {
            return Err(ConfigError::invalid(
                field,
                text,
                "this peer is listed twice",
                "list each node once",
            ));
        }
        peers.push(url);
    }
    Ok(peers)
}

/// Checks the base path with the transport's rule, which also keeps it off the segments of
/// the node's other routes (`/api/`, `/metrics/`, ...): the binary has no routes of its own.
pub(super) fn checked_base_path(text: &str, field: &Field) -> Result<String, ConfigError> {
    const ALLOWED: &str = "expected a path that starts and ends with '/' and whose segments use \
                           A-Z a-z 0-9 . _ ~ -, e.g. /_geecache/ or /_groupcache/ (Go groupcache)";
    match validate::base_path(text) {
        Ok(()) => Ok(text.to_owned()),
        Err(geecache_transport_http::Error::InvalidBasePath { reason, .. }) => {
            Err(ConfigError::invalid(field, text, reason, ALLOWED))
        }
        Err(other) => Err(ConfigError::invalid(
            field,
            text,
            other.to_string(),
            ALLOWED,
        )),
    }
}

/// RFC 3986 unreserved characters: safe in a URL path without escaping.
pub(super) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

pub(super) fn duration_setting(
    picked: Option<(String, Field)>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match picked {
        None => Ok(default),
        Some((text, field)) => positive_duration(&text, &field),
    }
}

/// A duration of zero or more: zero turns the setting's feature off.
pub(super) fn duration_or_zero(text: &str, field: &Field) -> Result<Duration, ConfigError> {
    parse_duration(text).ok_or_else(|| {
        ConfigError::invalid(
            field,
            text,
            "not a duration",
            format!("expected {DURATION_FORMS}"),
        )
    })
}

pub(super) fn positive_duration(text: &str, field: &Field) -> Result<Duration, ConfigError> {
    match parse_duration(text) {
        Some(d) if d.is_zero() => Err(ConfigError::invalid(
            field,
            text,
            "must be greater than zero",
            format!("expected {DURATION_FORMS}"),
        )),
        Some(d) => Ok(d),
        None => Err(ConfigError::invalid(
            field,
            text,
            "not a duration",
            format!("expected {DURATION_FORMS}"),
        )),
    }
}

pub(super) fn positive_size(text: &str, field: &Field) -> Result<u64, ConfigError> {
    match parse_size(text) {
        Some(0) => Err(ConfigError::invalid(
            field,
            text,
            "must be greater than zero",
            format!("expected {SIZE_FORMS}"),
        )),
        Some(n) => Ok(n),
        None => Err(ConfigError::invalid(
            field,
            text,
            "not a size",
            format!("expected {SIZE_FORMS}"),
        )),
    }
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

pub(super) fn checked_log_level(text: &str, field: &Field) -> Result<String, ConfigError> {
    const ALLOWED: &str = "expected one of off, error, warn, info, debug, trace, or a filter \
                           such as info,geecache_group=debug";
    let text_trimmed = text.trim();
    // A lone word is a level or a typo. `EnvFilter` would take "loud" as a target name and
    // silently log nothing, so a lone word must be a known level.
    let is_directive = text_trimmed.contains('=') || text_trimmed.contains(',');
    if !is_directive && !LEVELS.contains(&text_trimmed.to_ascii_lowercase().as_str()) {
        return Err(ConfigError::invalid(
            field,
            text,
            "unknown log level",
            ALLOWED,
        ));
    }
    if tracing_subscriber::EnvFilter::try_new(text_trimmed).is_err() {
        return Err(ConfigError::invalid(
            field,
            text,
            "not a valid filter",
            ALLOWED,
        ));
    }
    Ok(text_trimmed.to_owned())
}

pub(super) fn token_setting(
    picked: Option<(String, Field)>,
) -> Result<Option<String>, ConfigError> {
    let Some((token, field)) = picked else {
        return Ok(None);
    };
    // Never echo a secret into logs or terminals, even a malformed one.
    let shown = "<redacted>";
    if token.is_empty() || token.len() > 1024 {
        return Err(ConfigError::invalid(
            &field,
            shown,
            "must be 1 to 1024 characters long",
            "expected a random string such as the output of `openssl rand -hex 32`",
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::invalid(
            &field,
            shown,
            "has a space, a control or a non-ASCII character, which an HTTP header cannot carry",
            "expected visible ASCII characters only, e.g. the output of `openssl rand -hex 32`",
        ));
    }
    Ok(Some(token))
}

/// Checks `--transport`: `http` or `grpc`.
pub(super) fn checked_transport(text: &str, field: &Field) -> Result<Transport, ConfigError> {
    text.parse::<Transport>().map_err(|()| {
        ConfigError::invalid(
            field,
            text,
            "unknown transport",
            "expected http (HTTP/1.1, groupcache's protocol; needed beside Go nodes) or grpc \
             (gRPC on one HTTP/2 connection per peer, served on the same port)",
        )
    })
}

/// Checks `--ring`: `balanced` or `groupcache`.
pub(super) fn checked_ring(text: &str, field: &Field) -> Result<Preset, ConfigError> {
    text.trim().parse::<Preset>().map_err(|_| {
        ConfigError::invalid(
            field,
            text,
            "unknown ring",
            "expected balanced (even shares; every node geecache) or groupcache (Go groupcache's \
             ring, needed beside Go nodes)",
        )
    })
}

/// Checks `--peer-key-encoding`: how the peer route reads a `+` in a key.
pub(super) fn checked_key_encoding(text: &str, field: &Field) -> Result<Decoding, ConfigError> {
    match text.trim() {
        t if t.eq_ignore_ascii_case("query") => Ok(Decoding::Form),
        t if t.eq_ignore_ascii_case("path") => Ok(Decoding::Percent),
        _ => Err(ConfigError::invalid(
            field,
            text,
            "unknown key encoding",
            "expected query (`+` is a space, as golang/groupcache clients send it; the default) \
             or path (`+` is a plus, as mailgun/groupcache and groupcache-go v3 clients send it)",
        )),
    }
}

/// Checks `--replicas`: a whole number of virtual nodes per member the ring will take.
pub(super) fn checked_replicas(text: &str, field: &Field) -> Result<usize, ConfigError> {
    let allowed = format!(
        "expected a whole number from 1 to {MAX_REPLICAS}; leave it unset for the ring's default"
    );
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_REPLICAS).contains(&n) => Ok(n),
        Ok(_) => Err(ConfigError::invalid(field, text, "out of range", allowed)),
        Err(_) => Err(ConfigError::invalid(
            field,
            text,
            "not a whole number",
            allowed,
        )),
    }
}
