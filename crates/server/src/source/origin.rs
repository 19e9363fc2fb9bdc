//! An HTTP origin: the key, percent-encoded, is appended to a base URL and fetched.
//!
//! This turns geecache into a distributed caching proxy in front of any HTTP store: the
//! cluster fetches each object from the origin once, and serves it from memory afterwards.

use std::time::Duration;

use geecache_group::{ByteView, LoadError, Loaded, Rejected};
use geecache_transport_http::path;
use http::StatusCode;

use crate::client::{self, FetchError, Fetched, HttpClient};

/// An `http:` source.
#[derive(Debug)]
pub(crate) struct HttpOrigin {
    base: String,
    client: HttpClient,
    timeout: Duration,
    max_bytes: usize,
}

impl HttpOrigin {
    /// Fetches `base + encode(key)` with `client`, within `timeout`, at most `max_bytes`.
    pub(crate) fn new(base: String, client: HttpClient, timeout: Duration, max_bytes: u64) -> Self {
        HttpOrigin {
            base,
            client,
            timeout,
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
        }
    }

    /// The URL a key is fetched from.
    ///
    /// Every byte but RFC 3986's unreserved ones is encoded, `/` included: a key is one
    /// opaque path segment at the origin, so `a/../admin` asks for `a%2F..%2Fadmin`, never
    /// for `/admin`.
    pub(crate) fn url_for(&self, key: &str) -> String {
        format!("{}{}", self.base, path::encode(key))
    }

    pub(crate) async fn load(&self, key: &str) -> Result<Loaded, LoadError> {
        // Again here, for a caller that loads without the group's check.
        check_key(key)?;
        let url = self.url_for(key);
        let fetched = client::get(&self.client, &url, None, self.timeout, self.max_bytes)
            .await
            .map_err(|e| match e {
                FetchError::TooLarge(limit) => LoadError::failed(format!(
                    "origin value is larger than {limit} bytes (max_value_bytes)"
                )),
                other => LoadError::failed(format!("origin {}: {other}", super::shown(&url))),
            })?;
        answer(&url, &fetched)
    }
}

/// Refuses the two keys that encoding cannot make safe: `.` and `..` stay dot segments after
/// encoding, and an origin would resolve them against the base path.
pub(crate) fn check_key(key: &str) -> Result<(), Rejected> {
    match key {
        "." | ".." => Err(Rejected::new(
            "'.' and '..' cannot be fetched from an origin",
        )),
        _ => Ok(()),
    }
}

/// The load result an origin's answer means: a value for a success, not-found for a 404, a
/// failure quoting the start of the body for anything else.
pub(super) fn answer(url: &str, fetched: &Fetched) -> Result<Loaded, LoadError> {
    match fetched.status {
        // Copied: the body is most often a slice of the connection's read buffer (8 KiB
        // or more), and a cached slice would keep all of it alive while the cache counts
        // only the value's bytes.
        s if s.is_success() => Ok(Loaded::from(ByteView::copy_from_slice(&fetched.body))),
        StatusCode::NOT_FOUND => Err(LoadError::NotFound),
        status => {
            let text = String::from_utf8_lossy(&fetched.body);
            let snippet: String = text.chars().take(200).collect();
            Err(LoadError::failed(format!(
                "origin {} answered {status}: {}",
                super::shown(url),
                snippet.trim()
            )))
        }
    }
}
