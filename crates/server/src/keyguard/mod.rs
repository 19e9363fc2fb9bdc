//! Refuses keys a group's source would never look up, with 400, before the cache sees them.
//!
//! The group layer reports a loader's errors as load failures (HTTP 500), and it would also
//! forward the key to its owner first. A key that tries to leave a `dir:` root is neither: it
//! is the client's error, no peer can make it valid, and it must never reach a file read. So
//! the check runs here, in front of the transport's routes, on both the client routes
//! (`/api/{group}/{key}`) and the peer routes (`{base}{group}/{key}`), reading the path with
//! the transport's own decoder so both see the same key. The sources check again when they
//! load, so a key arriving another way (a library caller) is refused all the same, only as a
//! load failure.

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use geecache_transport_http::path::{self, Decoding};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::auth;
use crate::source::DataSource;

/// The client route prefix (the transport's).
const API_BASE: &str = "/api/";

/// The sources that can refuse keys, by group name, where the routes are and which tokens
/// guard them.
#[derive(Debug)]
pub(crate) struct KeyGuard {
    sources: HashMap<String, DataSource>,
    base_path: String,
    peer_token: Option<String>,
    api_token: Option<String>,
}

impl KeyGuard {
    /// A guard over `sources`; those that take any key (the demo table) are left out, so
    /// their requests pass without a look at the path.
    pub(crate) fn new(
        mut sources: HashMap<String, DataSource>,
        base_path: String,
        peer_token: Option<String>,
        api_token: Option<String>,
    ) -> Self {
        sources.retain(|_, source| source.refuses_keys());
        KeyGuard {
            sources,
            base_path,
            peer_token,
            api_token,
        }
    }

    /// Whether any group's source can refuse a key; when none can, the guard has nothing to
    /// do and need not be installed.
    pub(crate) fn is_needed(&self) -> bool {
        !self.sources.is_empty()
    }

    /// The group, its guarded source, the key and the token a request path names; `None` for
    /// paths that are not key routes, do not decode (the transport answers those itself), or
    /// name a group whose source takes any key.
    pub(crate) fn target<'p>(
        &self,
        path: &'p str,
    ) -> Option<(&str, &DataSource, Cow<'p, str>, Option<&str>)> {
        let (prefix, decoding, token) = if path.starts_with(API_BASE) {
            (API_BASE, Decoding::Percent, self.api_token.as_deref())
        } else if path.starts_with(self.base_path.as_str()) {
            (
                self.base_path.as_str(),
                Decoding::Form,
                self.peer_token.as_deref(),
            )
        } else {
            return None;
        };
        let (group, key) = path::split(path, prefix).ok()?;
        let group = path::decode(group.as_bytes(), decoding).ok()?;
        // The group first: a key is decoded only when its source may refuse it.
        let (group, source) = self.sources.get_key_value(group.as_ref())?;
        let key = path::decode(key.as_bytes(), decoding).ok()?;
        Some((group, source, key, token))
    }

    /// Why the request must be refused, if it must.
    pub(crate) async fn refusal(&self, path: &str, headers: &HeaderMap) -> Option<String> {
        let (group, source, key, token) = self.target(path)?;
        // Unauthenticated requests get the transport's 401, not a look at the disk.
        if !auth::admits(token, headers) || key.is_empty() {
            return None;
        }
        let refused = source.check_key(&key).await.err()?;
        let shown: String = key.chars().take(120).collect();
        tracing::warn!(group, key = shown, reason = %refused.0, "refused key");
        Some(refused.to_string())
    }
}

/// The middleware: answers 400 for a refused key, passes everything else on.
pub(crate) async fn guard(
    State(guard): State<Arc<KeyGuard>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    // The raw path: no normalisation, the same bytes the transport will split.
    if let Some(reason) = guard.refusal(request.uri().path(), request.headers()).await {
        let mut response = (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            geecache_transport_http::ERROR_HEADER,
            HeaderValue::from_static("invalid-key"),
        );
        return response;
    }
    next.run(request).await
}
