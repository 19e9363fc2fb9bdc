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

/// The sources by group name, where the routes are and which tokens guard them.
#[derive(Debug)]
pub(crate) struct KeyGuard {
    sources: HashMap<String, DataSource>,
    base_path: String,
    peer_token: Option<String>,
    api_token: Option<String>,
}

impl KeyGuard {
    pub(crate) fn new(
        sources: HashMap<String, DataSource>,
        base_path: String,
        peer_token: Option<String>,
        api_token: Option<String>,
    ) -> Self {
        KeyGuard {
            sources,
            base_path,
            peer_token,
            api_token,
        }
    }

    /// The group and key a request path names, and the token guarding its route; `None` for
    /// paths that are not key routes or do not decode (the transport answers those itself).
    pub(crate) fn target(&self, path: &str) -> Option<(String, String, Option<&str>)> {
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
        let key = path::decode(key.as_bytes(), decoding).ok()?;
        Some((group.into_owned(), key.into_owned(), token))
    }

    /// Why the request must be refused, if it must.
    pub(crate) async fn refusal(&self, path: &str, headers: &HeaderMap) -> Option<String> {
        let (group, key, token) = self.target(path)?;
        // Unauthenticated requests get the transport's 401, not a look at the disk.
        if !auth::admits(token, headers) || key.is_empty() {
            return None;
        }
        let source = self.sources.get(&group)?;
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
