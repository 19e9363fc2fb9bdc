//! The HTTP routes, one module per audience: peers, clients and operators.
//!
//! Each audience's routes are a small router of their own, behind their own token
//! ([`RequireBearer`], applied with `route_layer`); [`try_router`] merges them and adds the
//! fallback. Handlers return `Result<Response, Failure>`, so an error is answered the same way
//! wherever it comes from.

mod admin;
mod api;
mod many;
mod peer;
mod write;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use geecache_group::{Cluster, Group, Registry, Removal, Source};

use crate::DEFAULT_BASE_PATH;
use crate::auth::{RequireBearer, Token};
use crate::error::Error;
use crate::failure::{Failure, quoted};
use crate::kind::ErrorKind;
use crate::names;
use crate::path::{self, Decoding, PathError};
use crate::pool::HttpPool;
use crate::validate;

/// The client route's prefix.
const API_BASE: &str = "/api/";

/// Whether the node is ready for traffic; `Err` says why not.
type Readiness = dyn Fn() -> Result<(), String> + Send + Sync;
/// The metrics exposition, rendered on each scrape for the request's `Accept` header.
type Metrics = dyn Fn(Option<&str>) -> (HeaderValue, String) + Send + Sync;

/// Everything the HTTP routes need: the groups, the pool, limits, secrets, and the hooks
/// behind `/readyz` and `/metrics`.
///
/// ```
/// use geecache_group::Registry;
/// use geecache_transport_http::{RouterConfig, router};
///
/// let app = router(
///     RouterConfig::new(Registry::new())
///         .max_key_bytes(1024)
///         .readiness(|| Ok(()))
///         .metrics(|_accept| (http::HeaderValue::from_static("text/plain"), String::new())),
/// );
/// # let _ = app;
/// ```
#[must_use]
pub struct RouterConfig {
    registry: Registry,
    pool: Option<Arc<HttpPool>>,
    cluster: Option<Arc<Cluster>>,
    base_path: Option<String>,
    max_key_bytes: usize,
    max_batch_keys: usize,
    max_batch_bytes: usize,
    max_value_bytes: usize,
    peer_decoding: Decoding,
    peer_token: Option<String>,
    api_token: Option<String>,
    readiness: Option<Arc<Readiness>>,
    metrics: Option<Arc<Metrics>>,
}

impl RouterConfig {
    /// Routes serving the groups of `registry`, with no pool, the default base path, a 64 KiB
    /// key limit, no tokens, a `/readyz` that is always ready and no `/metrics`.
    pub fn new(registry: Registry) -> Self {
        RouterConfig {
            registry,
            pool: None,
            cluster: None,
            base_path: None,
            max_key_bytes: 64 << 10,
            max_batch_keys: 1000,
            max_batch_bytes: 4 << 20,
            max_value_bytes: 8 << 20,
            peer_decoding: Decoding::Form,
            peer_token: None,
            api_token: None,
            readiness: None,
            metrics: None,
        }
    }

    /// The node's pool: `/stats` lists its peers, and the peer route's base path is the
    /// pool's. (Removals reach the other nodes through each group's own peers.)
    pub fn pool(mut self, pool: Arc<HttpPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// The cluster view `/stats` reports (members and their health) when the node's peers
    /// use another transport, e.g. gRPC, and there is no HTTP pool. With a pool, the pool's.
    pub fn cluster(mut self, cluster: Arc<Cluster>) -> Self {
        self.cluster = Some(cluster);
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

    /// The most keys one batch get may ask for, from a client (`POST /api/{group}`) or a peer
    /// (`POST {base}{group}`). Default 1000; a larger batch is answered 413 `too-large`.
    pub fn max_batch_keys(mut self, n: usize) -> Self {
        self.max_batch_keys = n;
        self
    }

    /// The most bytes a batch get's request body may hold. Default 4 MiB; a larger body is
    /// answered 413 `too-large`. (A node asks a peer for at most
    /// [`GET_MANY_BATCH_BYTES`](geecache_group::GET_MANY_BATCH_BYTES) of keys at once.)
    pub fn max_batch_bytes(mut self, n: usize) -> Self {
        self.max_batch_bytes = n;
        self
    }

    /// The largest value a client may set (`PUT /api/{group}/{key}`), in bytes. Default 8 MiB;
    /// a larger body is answered 413 `too-large`.
    pub fn max_value_bytes(mut self, n: usize) -> Self {
        self.max_value_bytes = n;
        self
    }

    /// How the peer route decodes a `+` in a key. Default [`Decoding::Form`] (`+` is a
    /// space): golang/groupcache's client form-encodes keys (`url.QueryEscape`), so its `a+b`
    /// means `a b`. [`Decoding::Percent`] (`+` is a plus) for mailgun/groupcache and
    /// groupcache-go v3, whose clients path-encode keys (`url.PathEscape`) and leave a `+` as
    /// it is. A geecache client escapes both `+` and space, so either setting reads its
    /// requests right: this setting is about the Go clients of a mixed cluster.
    pub fn peer_key_decoding(mut self, decoding: Decoding) -> Self {
        self.peer_decoding = decoding;
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

    /// What `GET /readyz` asks: `Ok(())` answers 200 `ready`, `Err(why)` answers 503
    /// `not-ready` with the reason. Called on every probe; keep it cheap. Default: ready.
    pub fn readiness(
        mut self,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.readiness = Some(Arc::new(check));
        self
    }

    /// Serves `GET /metrics`: on each scrape, `render` gets the request's `Accept` header
    /// (`None` when absent or not text) and returns the `Content-Type` and the body. The
    /// format is the application's choice, so that a scraper asking for the Prometheus text
    /// format and one asking for OpenMetrics can each get theirs. Default: no `/metrics` route.
    pub fn metrics(
        mut self,
        render: impl Fn(Option<&str>) -> (HeaderValue, String) + Send + Sync + 'static,
    ) -> Self {
        self.metrics = Some(Arc::new(render));
        self
    }
}

impl fmt::Debug for RouterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |t: &Option<String>| t.as_ref().map(|_| "<redacted>");
        f.debug_struct("RouterConfig")
            .field("registry", &self.registry)
            .field("pool", &self.pool)
            .field("cluster", &self.cluster)
            .field("base_path", &self.base_path)
            .field("max_key_bytes", &self.max_key_bytes)
            .field("max_batch_keys", &self.max_batch_keys)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("peer_decoding", &self.peer_decoding)
            .field("peer_token", &redacted(&self.peer_token))
            .field("api_token", &redacted(&self.api_token))
            .field("readiness", &self.readiness.is_some())
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

/// The routes of a node, as a plain axum [`Router`] that can be extended with more routes and
/// layers.
///
/// | route | answer |
/// |---|---|
/// | `GET {base}{group}/{key}` | 200 `application/x-protobuf` [`GetResponse`](crate::proto::GetResponse) |
/// | `DELETE {base}{group}/{key}` | 204 once removed (see [`Group::remove_for_peer`]) |
/// | `POST {base}{group}` | 200 [`GetManyAnswer`](crate::proto::GetManyAnswer) to a [`GetMany`](crate::proto::GetMany) body |
/// | `POST {base}{group}/` | 204, a hand-over of [`HandOver`](crate::proto::HandOver) values taken |
/// | `GET /api/{group}/{key}` | 200 `application/octet-stream`, the value's bytes |
/// | `POST /api/{group}` | 200 JSON, one result per key of a JSON body `{"keys": [...]}` |
/// | `PUT /api/{group}/{key}` | 204 once stored at the owner and dropped elsewhere ([`Group::set`]) |
/// | `DELETE /api/{group}` | 204 once every member dropped the group's values ([`Group::purge`]) |
/// | `PUT {base}{group}/{key}` | 204 with `x-geecache-stored: 1`, stored as owner ([`Group::set_for_peer`]) |
/// | `DELETE {base}{group}` | 204, the group purged here ([`Group::purge_local`]) |
/// | `DELETE /api/{group}/{key}` | 204 once removed everywhere ([`Group::remove`]) |
/// | `GET /healthz` | 200 `ok` |
/// | `GET /readyz` | 200 `ready`, or 503 `not-ready` (see [`RouterConfig::readiness`]) |
/// | `GET /stats` | 200 JSON: every group's counters, and the peers |
/// | `GET /metrics` | 200, the exposition (only with [`RouterConfig::metrics`]) |
///
/// Errors are plain text with an `x-geecache-error` kind ([`ErrorKind`]); see
/// `docs/wire-protocol.md` for the full protocol. The path is read raw from the request URI,
/// so mount the router at the root (not under [`Router::nest`], which strips a prefix).
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
    validate::base_path(&base)?;
    if config.max_key_bytes == 0 {
        return Err(Error::Zero("max_key_bytes"));
    }
    if config.max_batch_keys == 0 {
        return Err(Error::Zero("max_batch_keys"));
    }
    if config.max_batch_bytes == 0 {
        return Err(Error::Zero("max_batch_bytes"));
    }
    if config.max_value_bytes == 0 {
        return Err(Error::Zero("max_value_bytes"));
    }
    let peer_token = Token::from_option(config.peer_token)?;
    let api_token = Token::from_option(config.api_token)?;
    let cluster = (config.pool.as_ref().map(|pool| pool.cluster())).or(config.cluster);
    let app = App(Arc::new(AppInner {
        registry: config.registry,
        cluster,
        base: base.clone(),
        max_key_bytes: config.max_key_bytes,
        max_batch_keys: config.max_batch_keys,
        max_batch_bytes: config.max_batch_bytes,
        max_value_bytes: config.max_value_bytes,
        peer_decoding: config.peer_decoding,
        readiness: config.readiness,
        metrics: config.metrics,
    }));
    let peer = guarded(peer::routes(&base), peer_token.clone());
    let api = guarded(api::routes(), api_token);
    let admin = guarded(admin::routes(app.0.metrics.is_some()), peer_token);
    Ok(Router::new()
        .merge(peer)
        .merge(api)
        .merge(admin)
        .fallback(no_route)
        .with_state(app))
}

/// `routes` behind `token`, if there is one. Without a token no layer is added, so an open
/// route costs nothing for the check it does not make.
fn guarded(routes: Router<App>, token: Option<Token>) -> Router<App> {
    match token {
        Some(token) => routes.route_layer(RequireBearer::from_token(token)),
        None => routes,
    }
}

#[derive(Clone)]
struct App(Arc<AppInner>);

struct AppInner {
    registry: Registry,
    /// Whose members and health `/stats` lists.
    cluster: Option<Arc<Cluster>>,
    base: String,
    max_key_bytes: usize,
    max_batch_keys: usize,
    max_batch_bytes: usize,
    max_value_bytes: usize,
    /// How the peer route reads a `+` in a key.
    peer_decoding: Decoding,
    readiness: Option<Arc<Readiness>>,
    metrics: Option<Arc<Metrics>>,
}

impl App {
    /// Reads `{prefix}{group}/` (no key: a request about the group's keys at large) from the
    /// raw path and finds the group.
    fn locate_group(&self, uri: &Uri, prefix: &str) -> Result<Arc<Group>, Failure> {
        let (raw_group, raw_key) = path::split(uri.path(), prefix).map_err(|e| bad_path(&e))?;
        if !raw_key.is_empty() {
            return Err(Failure::new(
                ErrorKind::BadPath,
                format!("this request goes to {prefix}{{group}}/, with no key"),
            ));
        }
        let group = path::decode(raw_group.as_bytes(), Decoding::Form).map_err(|e| bad_path(&e))?;
        self.0.registry.get(&group).ok_or_else(|| {
            Failure::new(
                ErrorKind::UnknownGroup,
                format!("no such group: {:?}", quoted(&group)),
            )
        })
    }

    /// Reads `{prefix}{group}`, with no `/` after the group (a batch get, a purge), and finds
    /// the group.
    fn locate_bare_group(
        &self,
        uri: &Uri,
        prefix: &str,
        decoding: Decoding,
    ) -> Result<Arc<Group>, Failure> {
        let rest = uri.path().strip_prefix(prefix).ok_or_else(|| {
            bad_path(&PathError::MissingBase {
                base: prefix.to_owned(),
            })
        })?;
        if rest.is_empty() {
            return Err(bad_path(&PathError::EmptyGroup));
        }
        if rest.contains('/') {
            return Err(Failure::new(
                ErrorKind::BadPath,
                format!("this request goes to {prefix}{{group}}, with no key"),
            ));
        }
        let name = path::decode(rest.as_bytes(), decoding).map_err(|e| bad_path(&e))?;
        self.0.registry.get(&name).ok_or_else(|| {
            Failure::new(
                ErrorKind::UnknownGroup,
                format!("no such group: {:?}", quoted(&name)),
            )
        })
    }

    /// Reads `{prefix}{group}/{key}` from the raw path and finds the group.
    fn locate<'u>(
        &self,
        uri: &'u Uri,
        prefix: &str,
        decoding: Decoding,
    ) -> Result<(Arc<Group>, Cow<'u, str>), Failure> {
        let (raw_group, raw_key) = path::split(uri.path(), prefix).map_err(|e| bad_path(&e))?;
        let max = self.0.max_key_bytes;
        // An escape is three bytes for one, so a raw key over three times the limit is too
        // long whatever it decodes to; refuse it before spending time on decoding.
        if raw_key.len() > max.saturating_mul(3) {
            return Err(key_too_long(raw_key.len(), max, "at least "));
        }
        let group = path::decode(raw_group.as_bytes(), decoding).map_err(|e| bad_path(&e))?;
        let key = path::decode(raw_key.as_bytes(), decoding).map_err(|e| bad_path(&e))?;
        if key.len() > max {
            return Err(key_too_long(key.len(), max, ""));
        }
        if key.is_empty() {
            return Err(Failure::new(ErrorKind::BadPath, "empty key"));
        }
        let Some(group) = self.0.registry.get(&group) else {
            return Err(Failure::new(
                ErrorKind::UnknownGroup,
                format!("no such group: {:?}", quoted(&group)),
            ));
        };
        Ok((group, key))
    }
}

fn bad_path(error: &PathError) -> Failure {
    Failure::new(ErrorKind::BadPath, format!("malformed path: {error}"))
}

fn key_too_long(len: usize, max: usize, qualifier: &str) -> Failure {
    Failure::new(
        ErrorKind::KeyTooLong,
        format!("key is {qualifier}{len} bytes, over the limit of {max}"),
    )
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

async fn no_route(uri: Uri) -> Response {
    Failure::new(
        ErrorKind::NoRoute,
        format!("no route for {:?}", quoted(uri.path())),
    )
    .into_response()
}

/// 204 when every member confirmed; 200 naming the members that did not otherwise.
fn removal_response(removal: &Removal) -> Response {
    let mut response = removal_answer(removal);
    (response.headers_mut()).insert(names::REMOVED, HeaderValue::from_static("1"));
    response
}

fn removal_answer(removal: &Removal) -> Response {
    unconfirmed_answer(&removal.unconfirmed, "removed")
}

/// 204 when `unconfirmed` is empty; else 200 naming them, in the body (after `done`) and in
/// `x-geecache-unconfirmed`.
fn unconfirmed_answer(unconfirmed: &[String], done: &str) -> Response {
    if unconfirmed.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let list = unconfirmed.join(",");
    let mut response = (
        StatusCode::OK,
        format!("{done}; these peers did not confirm: {list}\n"),
    )
        .into_response();
    if let Ok(value) = HeaderValue::try_from(list) {
        response.headers_mut().insert(names::UNCONFIRMED, value);
    }
    response
}
