//! Encoding group and key into a URL path, and decoding them back, the way Go groupcache does.
//!
//! A Go client builds `base + QueryEscape(group) + "/" + QueryEscape(key)`. Query escaping is
//! form encoding: a space becomes `+`, a `/` becomes `%2F`. So a compatible server:
//!
//! 1. takes the path *as sent* (no normalisation: `//`, `/./` and `/../` inside a key are
//!    part of the key, and an encoded key never holds a raw `/` anyway);
//! 2. strips the base, and splits the rest at the **first** `/`: group before, key after
//!    (the key may hold further raw `/`, which a hand-written URL might contain);
//! 3. decodes each part with form semantics: `+` is a space, `%XX` is the byte `XX`.
//!
//! Our client encodes every byte outside `A-Za-z0-9-_.~` as `%XX` (space too, as `%20`), which
//! both decoders, ours and Go's `QueryUnescape`, turn back into the same string.
//!
//! ```
//! use geecache_transport_http::path::{self, Decoding};
//!
//! let encoded = format!("/_geecache/{}/{}", path::encode("scores"), path::encode("a b/c+d"));
//! assert_eq!(encoded, "/_geecache/scores/a%20b%2Fc%2Bd");
//!
//! let (group, key) = path::split(&encoded, "/_geecache/")?;
//! assert_eq!(path::decode(group.as_bytes(), Decoding::Form)?, "scores");
//! assert_eq!(path::decode(key.as_bytes(), Decoding::Form)?, "a b/c+d");
//!
//! // What a Go client sends for the same key:
//! assert_eq!(path::decode(b"a+b%2Fc%2Bd", Decoding::Form)?, "a b/c+d");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, PercentEncode, utf8_percent_encode};

/// Every byte but the RFC 3986 unreserved characters `A-Za-z0-9-_.~` is escaped.
///
/// Escaping more than a path strictly needs (`+`, `;`, `=`, ...) costs a few bytes and buys
/// one encoding that every decoder agrees on: Go's `QueryUnescape` would read a raw `+` as a
/// space, and proxies may treat `;` or `%2F` specially, but no one reinterprets `%XX`.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path component (a group name or a key).
///
/// The result is a `Display` that writes straight into the URL being built, so encoding costs
/// no allocation of its own.
pub fn encode(component: &str) -> PercentEncode<'_> {
    utf8_percent_encode(component, ESCAPED)
}

/// How [`decode`] treats `+`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Decoding {
    /// Form decoding, as Go's `url.QueryUnescape`: `+` is a space. Used on the peer route,
    /// where Go groupcache clients send form-encoded names.
    Form,
    /// Plain percent decoding (RFC 3986 paths): `+` is a plus. Used on the client route, where
    /// people type URLs by hand and `/api/scores/a+b` means the key `a+b`.
    Percent,
}

/// Why a path could not be read as `{base}{group}/{key}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path does not start with the expected base.
    #[error("path does not start with {base:?}")]
    MissingBase {
        /// The base that was expected.
        base: String,
    },
    /// There is no `/` after the group name, so there is no key.
    #[error("missing '/' between group and key")]
    MissingKey,
    /// The group name is empty.
    #[error("empty group name")]
    EmptyGroup,
    /// A `%` is not followed by two hex digits.
    #[error("malformed percent escape at byte {at}")]
    BadEscape {
        /// The offset of the `%` in the component.
        at: usize,
    },
    /// The decoded bytes are not UTF-8; groups and keys are strings.
    #[error("decoded name is not valid UTF-8")]
    InvalidUtf8,
}

/// Splits `path` into its raw (still encoded) group and key after `base`.
///
/// The split is at the first `/` after the base; everything after it is the key, further `/`
/// included. An empty key is returned as such (the group rejects it); an empty group is an
/// error, because no group can have that name.
///
/// # Errors
///
/// [`PathError::MissingBase`], [`PathError::MissingKey`] or [`PathError::EmptyGroup`].
pub fn split<'a>(path: &'a str, base: &str) -> Result<(&'a str, &'a str), PathError> {
    let rest = path
        .strip_prefix(base)
        .ok_or_else(|| PathError::MissingBase {
            base: base.to_owned(),
        })?;
    let (group, key) = rest.split_once('/').ok_or(PathError::MissingKey)?;
    if group.is_empty() {
        return Err(PathError::EmptyGroup);
    }
    Ok((group, key))
}

/// Decodes one component; borrows when there is nothing to decode.
///
/// Any byte string is accepted as input; the result is an error, never a panic, when an escape
/// is malformed or the decoded bytes are not UTF-8.
///
/// # Errors
///
/// [`PathError::BadEscape`] or [`PathError::InvalidUtf8`].
pub fn decode(raw: &[u8], decoding: Decoding) -> Result<Cow<'_, str>, PathError> {
    let plus_is_space = decoding == Decoding::Form;
    let needs_work = raw
        .iter()
        .any(|&b| b == b'%' || (plus_is_space && b == b'+'));
    if !needs_work {
        // The common case on the hot path: plain ASCII keys. No copy.
        return std::str::from_utf8(raw)
            .map(Cow::Borrowed)
            .map_err(|_| PathError::InvalidUtf8);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(hex_value);
                let lo = raw.get(i + 2).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::BadEscape { at: i });
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| PathError::InvalidUtf8)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Writes `{prefix}{encode(group)}/{encode(key)}`, the URL of a key on a peer.
pub(crate) fn peer_url(prefix: &str, group: &str, key: &str) -> String {
    use fmt::Write;
    // Room for a few escapes without regrowing; keys are usually plain ASCII.
    let mut url = String::with_capacity(prefix.len() + group.len() + key.len() + 16);
    url.push_str(prefix);
    let _ = write!(url, "{}/{}", encode(group), encode(key)); // writing to a String cannot fail
    url
}

/// Writes `{prefix}{encode(group)}`, the URL of a group's batch gets on a peer.
pub(crate) fn group_url(prefix: &str, group: &str) -> String {
    format!("{prefix}{}", encode(group))
}
