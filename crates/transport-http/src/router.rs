//! The HTTP routes: peer, client and admin.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use geecache_group::{Error as GroupError, Fetched, Group, Origin, Registry, Source};
use prost::Message;

use crate::auth::Token;
use crate::error::{Error, validate_base_path};
use crate::path::{self, Decoding, PathError};
use crate::pool::{HttpPool, Removal};
use crate::proto::GetResponse;
use crate::stats::StatsBody;
use crate::{DEFAULT_BASE_PATH, FANOUT_HEADER, PEER_HEADER, PROTOBUF, names};

/// The client route's prefix.
const API_BASE: &str = "/api/";
/// Keys are quoted in error messages up to this many characters.
const QUOTED_KEY_CHARS: usize = 80;

/// Everything the HTTP routes need: the groups, the pool, limits and secrets.
///
/// ```
/// use geecache_group::Registry;
/// use geecache_transport_http::{RouterConfig, router};
///
/// let app = router(RouterConfig::new(Registry::new()).max_key_bytes(1024));
/// # let _ = app;
/// ```
#[must_use]
pub struct RouterConfig {
    registry: Registry,
    pool: Option<Arc<HttpPool>>,
    base_path: Option<String>,
    max_key_bytes: usize,
    peer_token: Option<String>,
    api_token: Option<String>,
}

impl RouterConfig {
    /// Routes serving the groups of `registry`, with no pool, the default base path, a 64 KiB
    /// key limit and no tokens.
    pub fn new(registry: Registry) -> Self {
        RouterConfig {
            registry,
            pool: None,
            base_path: None,
            max_key_bytes: 64 << 10,
            peer_token: None,
            api_token: None,
        }
    }

    /// The node's pool: removals reach the other nodes through it, `/stats` lists its peers,
    /// and the peer route's base path is the pool's.
    pub fn pool(mut self, pool: Arc<HttpPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// The peer route's base path when there is no pool. Default `/_geecache/`.
    pub fn base_path(mut self, base: impl Into<String>) -> Self {
        self.base_path = Some(base.into());
        self
    }

    /// The longest key accepted, in bytes after decoding. Default 64 KiB. A longer key is
    /// answered with 414 before any group sees it.
    pub fn max_key_bytes(mut self, n: usize) -> Self {
        self.max_key_bytes = n;
        self
    }

    /// A shared secret that peer and admin routes require as `Authorization: Bearer <token>`.
    /// Default none: those routes are open, as in groupcache.
    pub fn peer_token(mut self, token: Option<String>) -> Self {
        self.peer_token = token;
        self
    }

    /// A secret the client routes (`/api/...`) require as `Authorization: Bearer <token>`.
    /// Default none: the client routes are open.
    pub fn api_token(mut self, token: Option<String>) -> Self {
        self.api_token = token;
        self
    }
}

impl fmt::Debug for RouterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterConfig")
            .field("registry", &self.registry)
            .field("pool", &self.pool)
            .field("base_path", &self.base_path)
            .field("max_key_bytes", &self.max_key_bytes)
            .field(
                "peer_token",
                &self.peer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The routes of a node, as a plain axum [`Router`] that can be extended with more routes and
/// layers.
///
/// | route | answer |
/// |---|---|
/// | `GET {base}{group}/{key}` | 200 `application/x-protobuf` [`GetResponse`] |
/// | `DELETE {base}{group}/{key}` | 204 once removed (see below) |
/// | `GET /api/{group}/{key}` | 200 `application/octet-stream`, the value's bytes |
/// | `DELETE /api/{group}/{key}` | 204 once removed everywhere |
/// | `GET /healthz` | 200 `ok` |
/// | `GET /stats` | 200 JSON: every group's counters, and the peers |
///
/// Errors are plain text with an `x-geecache-error` kind; see `docs/wire-protocol.md` for
/// the full protocol. The path is read raw from the request URI, so mount the router at the
/// root (not under [`Router::nest`], which strips a prefix).
///
/// # Panics
///
/// If the configuration is invalid: a bad base path (see [`Error::InvalidBasePath`]), a zero
/// key limit, or a bad token. [`try_router`] returns the error instead.
pub fn router(config: RouterConfig) -> Router {
    match try_router(config) {
        Ok(router) => router,
        Err(error) => panic!("invalid router configuration: {error}"),
    }
}

/// Like [`router`], returning an invalid configuration as an error.
///
/// # Errors
///
/// [`Error::InvalidBasePath`] (also when it differs from the pool's), [`Error::Zero`] for a
/// zero key limit, [`Error::InvalidToken`].
pub fn try_router(config: RouterConfig) -> Result<Router, Error> {
    let base = match (&config.pool, config.base_path) {
        (Some(pool), Some(base)) if base != pool.base_path() => {
            return Err(Error::InvalidBasePath {
                base,
                reason: "differs from the pool's base path",
            });
        }
        (Some(pool), _) => pool.base_path().to_owned(),
        (None, Some(base)) => base,
        (None, None) => DEFAULT_BASE_PATH.to_owned(),
    };
    validate_base_path(&base)?;
    if config.max_key_bytes == 0 {
        return Err(Error::Zero("max_key_bytes"));
    }
    let app = App(Arc::new(AppInner {
        registry: config.registry,
        pool: config.pool,
        base: base.clone(),
        max_key_bytes: config.max_key_bytes,
        peer_token: Token::from_option(config.peer_token)?,
        api_token: Token::from_option(config.api_token)?,
    }));
    // The catch-all `{*rest}` only decides which handler runs; handlers read the raw path
    // from the URI themselves, because the router's own captures are percent-decoded (with
    // `+` left alone) and would lose the difference between `/` and `%2F`.
    Ok(Router::new()
        .route(
            &format!("{base}{{*rest}}"),
            get(peer_get).delete(peer_delete),
        )
        .route(&base, any(missing_group))
        .route(
            &format!("{API_BASE}{{*rest}}"),
            get(api_get).delete(api_delete),
        )
        .route("/healthz", get(healthz))
        .route("/stats", get(stats))
        .fallback(no_route)
        .with_state(app))
}

#[derive(Clone)]
struct App(Arc<AppInner>);

struct AppInner {
    registry: Registry,
    pool: Option<Arc<HttpPool>>,
    base: String,
    max_key_bytes: usize,
    peer_token: Option<Token>,
    api_token: Option<Token>,
}

/// An error answer: status, a machine-readable kind, and a message for people.
#[derive(Debug)]
pub(crate) struct Failure {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl Failure {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            status,
            kind,
            message: message.into(),
        }
    }

    fn bad_path(error: &PathError) -> Self {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "bad-path",
            format!("malformed path: {error}"),
        )
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.message)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(names::ERROR, HeaderValue::from_static(self.kind));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Which secret guards a route.
#[derive(Clone, Copy)]
enum Guard {
    Peer,
    Api,
}

impl App {
    fn authorize(&self, guard: Guard, headers: &HeaderMap, uri: &Uri) -> Result<(), Failure> {
        let token = match guard {
            Guard::Peer => &self.0.peer_token,
            Guard::Api => &self.0.api_token,
        };
        match token {
            None => Ok(()),
            Some(token) if token.admits(headers) => Ok(()),
            Some(_) => {
                let presented = headers.contains_key(header::AUTHORIZATION);
                tracing::warn!(
                    path = uri.path(),
                    presented,
                    "rejected request: missing or wrong bearer token"
                );
                Err(Failure::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "missing or wrong bearer token",
                ))
            }
        }
    }

    /// Reads `{prefix}{group}/{key}` from the raw path and finds the group.
    fn locate<'u>(
        &self,
        uri: &'u Uri,
        prefix: &str,
        decoding: Decoding,
    ) -> Result<(Arc<Group>, Cow<'u, str>), Failure> {
        let (raw_group, raw_key) =
            path::split(uri.path(), prefix).map_err(|e| Failure::bad_path(&e))?;
        let max = self.0.max_key_bytes;
        // An escape is three bytes for one, so a raw key over three times the limit is too
        // long whatever it decodes to; refuse it before spending time on decoding.
        if raw_key.len() > max.saturating_mul(3) {
            return Err(key_too_long(raw_key.len(), max, "at least "));
        }
        let group =
            path::decode(raw_group.as_bytes(), decoding).map_err(|e| Failure::bad_path(&e))?;
        let key = path::decode(raw_key.as_bytes(), decoding).map_err(|e| Failure::bad_path(&e))?;
        if key.len() > max {
            return Err(key_too_long(key.len(), max, ""));
        }
        if key.is_empty() {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "bad-path",
                "empty key",
            ));
        }
        let Some(group) = self.0.registry.get(&group) else {
            return Err(Failure::new(
                StatusCode::NOT_FOUND,
                "unknown-group",
                format!("no such group: {:?}", quoted(&group)),
            ));
        };
        Ok((group, key))
    }

    async fn remove(&self, group: &Group, key: &str) -> Removal {
        match &self.0.pool {
            Some(pool) => pool.remove(group, key).await,
            None => local_removal(group, key),
        }
    }
}

fn local_removal(group: &Group, key: &str) -> Removal {
    Removal {
        cached_here: group.remove(key),
        ..Removal::default()
    }
}

fn key_too_long(len: usize, max: usize, qualifier: &str) -> Failure {
    Failure::new(
        StatusCode::URI_TOO_LONG,
        "key-too-long",
        format!("key is {qualifier}{len} bytes, over the limit of {max}"),
    )
}

/// A key or group name shortened for an error message.
fn quoted(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(QUOTED_KEY_CHARS) {
        None => Cow::Borrowed(s),
        Some((cut, _)) => Cow::Owned(format!("{}...", &s[..cut])),
    }
}

fn is_peer_request(headers: &HeaderMap) -> bool {
    headers
        .get(PEER_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1")
}

fn get_failure(group: &Group, key: &str, error: &GroupError) -> Failure {
    match error {
        GroupError::NotFound => Failure::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!(
                "not found: key {:?} in group {:?}",
                quoted(key),
                group.name()
            ),
        ),
        GroupError::EmptyKey => Failure::new(StatusCode::BAD_REQUEST, "bad-path", "empty key"),
        GroupError::Load(_) | GroupError::Panicked => Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "load-failed",
            error.to_string(),
        ),
        _ => Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
        ),
    }
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::MainCache => "main",
        Source::HotCache => "hot",
        Source::Peer => "peer",
        Source::Loader => "loader",
        _ => "other",
    }
}

fn with_source(mut response: Response, source: Source) -> Response {
    response
        .headers_mut()
        .insert(names::SOURCE, HeaderValue::from_static(source_name(source)));
    response
}

async fn peer_get(State(app): State<App>, request: Request) -> Response {
    // Read in place: the `HeaderMap` and `Uri` extractors would copy them.
    let (headers, uri) = (request.headers(), request.uri());
    let outcome = async {
        app.authorize(Guard::Peer, headers, uri)?;
        let (group, key) = app.locate(uri, &app.0.base, Decoding::Form)?;
        // Only our own nodes mark their requests. A Go groupcache node sends none: it is then
        // served as groupcache serves it, and may be forwarded to the owner this node knows.
        let origin = if is_peer_request(headers) {
            Origin::Peer
        } else {
            Origin::Client
        };
        let fetched = group
            .fetch(&key, origin)
            .await
            .map_err(|e| get_failure(&group, &key, &e))?;
        Ok::<_, Failure>(protobuf_response(fetched))
    };
    outcome.await.unwrap_or_else(IntoResponse::into_response)
}

fn protobuf_response(fetched: Fetched) -> Response {
    let source = fetched.source;
    let message = GetResponse::with_ttl(fetched.value, fetched.ttl, SystemTime::now());
    let body = Bytes::from(message.encode_to_vec());
    let response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF))],
        body,
    );
    with_source(response.into_response(), source)
}

async fn peer_delete(State(app): State<App>, request: Request) -> Response {
    let (headers, uri) = (request.headers(), request.uri());
    let outcome = async {
        app.authorize(Guard::Peer, headers, uri)?;
        let (group, key) = app.locate(uri, &app.0.base, Decoding::Form)?;
        let fan_out = headers
            .get(FANOUT_HEADER)
            .is_some_and(|v| v.as_bytes() == b"1");
        let removal = match (is_peer_request(headers), &app.0.pool) {
            // Another node decided this one owns the key: drop it and tell the rest, but
            // never forward, whatever this node's ring says.
            (true, Some(pool)) if fan_out => pool.remove_as_owner(&group, &key).await,
            // "Drop your copy": nothing more.
            (true, _) => local_removal(&group, &key),
            // From a client or an operator: remove everywhere.
            (false, _) => app.remove(&group, &key).await,
        };
        Ok::<_, Failure>(removal_response(&removal))
    };
    outcome.await.unwrap_or_else(IntoResponse::into_response)
}

async fn api_get(State(app): State<App>, request: Request) -> Response {
    let (headers, uri) = (request.headers(), request.uri());
    let outcome = async {
        app.authorize(Guard::Api, headers, uri)?;
        let (group, key) = app.locate(uri, API_BASE, Decoding::Percent)?;
        let fetched = group
            .fetch(&key, Origin::Client)
            .await
            .map_err(|e| get_failure(&group, &key, &e))?;
        let body = Body::from(Bytes::from(fetched.value));
        let response = (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )],
            body,
        );
        Ok::<_, Failure>(with_source(response.into_response(), fetched.source))
    };
    outcome.await.unwrap_or_else(IntoResponse::into_response)
}

async fn api_delete(State(app): State<App>, request: Request) -> Response {
    let (headers, uri) = (request.headers(), request.uri());
    let outcome = async {
        app.authorize(Guard::Api, headers, uri)?;
        let (group, key) = app.locate(uri, API_BASE, Decoding::Percent)?;
        let removal = app.remove(&group, &key).await;
        Ok::<_, Failure>(removal_response(&removal))
    };
    outcome.await.unwrap_or_else(IntoResponse::into_response)
}

/// 204 when every node confirmed; 200 naming the nodes that did not otherwise.
fn removal_response(removal: &Removal) -> Response {
    if removal.is_complete() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let list = removal.unconfirmed.join(",");
    let mut response = (
        StatusCode::OK,
        format!("removed; these peers did not confirm: {list}\n"),
    )
        .into_response();
    if let Ok(value) = HeaderValue::try_from(list) {
        response.headers_mut().insert(names::UNCONFIRMED, value);
    }
    response
}

async fn missing_group(State(app): State<App>, request: Request) -> Response {
    let (headers, uri) = (request.headers(), request.uri());
    if let Err(failure) = app.authorize(Guard::Peer, headers, uri) {
        return failure.into_response();
    }
    Failure::bad_path(&PathError::EmptyGroup).into_response()
}

async fn healthz(State(app): State<App>, request: Request) -> Response {
    let (headers, uri) = (request.headers(), request.uri());
    match app.authorize(Guard::Peer, headers, uri) {
        Ok(()) => "ok\n".into_response(),
        Err(failure) => failure.into_response(),
    }
}

async fn stats(State(app): State<App>, request: Request) -> Response {
    let (headers, uri) = (request.headers(), request.uri());
    if let Err(failure) = app.authorize(Guard::Peer, headers, uri) {
        return failure.into_response();
    }
    let body = StatsBody::collect(&app.0.registry, app.0.pool.as_deref());
    match serde_json::to_vec(&body) {
        Ok(json) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response(),
        Err(error) => Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot encode stats: {error}"),
        )
        .into_response(),
    }
}

async fn no_route(uri: Uri) -> Response {
    Failure::new(
        StatusCode::NOT_FOUND,
        "no-route",
        format!("no route for {:?}", quoted(uri.path())),
    )
    .into_response()
}
