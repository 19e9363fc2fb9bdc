//! The router target: a client's request, any method, URI, headers and body.
//!
//! The input is a request written out as text, so that seeds can be read and written by hand:
//!
//! ```text
//! METHOD URI
//! name: value
//! ...
//!
//! body
//! ```

use std::sync::LazyLock;

use axum::body::Body;
use bytes::Bytes;
use geecache_group::{Group, LoadError, Loaded, Registry, getter_fn};
use geecache_transport_http::{RouterConfig, try_router};
use http::{Method, Request, StatusCode};
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// The group every seed asks: its loader answers any key with the key's own bytes.
const GROUP: &str = "scores";
/// The token of the router that wants one; seeds carry it, so both sides of the check are run.
const TOKEN: &str = "fuzz-token";
/// Keys with this prefix are not found, so that the not-found path is reached too.
const MISSING: &str = "missing";

/// One runtime and two routers for the whole process: building them per input would measure
/// the builder, not the routes.
struct App {
    runtime: Runtime,
    /// No tokens: every route is reachable.
    open: axum::Router,
    /// Peer and API tokens: the bearer check runs on every route that has one.
    guarded: axum::Router,
}

static APP: LazyLock<App> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    // The group spawns nothing at build time, but building inside the runtime keeps that true
    // if it ever does.
    let _guard = runtime.enter();
    let app = |tokens: bool| {
        let registry = Registry::new();
        Group::builder(GROUP)
            .register(&registry)
            .getter(getter_fn(|key: String| async move {
                if key.starts_with(MISSING) {
                    Err(LoadError::NotFound)
                } else {
                    Ok(Loaded::from(key.into_bytes()))
                }
            }))
            .build()
            .expect("a valid group");
        let token = tokens.then(|| TOKEN.to_owned());
        let config = RouterConfig::new(registry)
            .max_key_bytes(256)
            .peer_token(token.clone())
            .api_token(token);
        try_router(config).expect("a valid router")
    };
    let (open, guarded) = (app(false), app(true));
    drop(_guard);
    App {
        runtime,
        open,
        guarded,
    }
});

/// Sends the request written in `data` to a router without tokens and to one with them.
///
/// Input that is not a request (an unknown method spelling, a URI or header that `http`
/// refuses) is skipped: hyper refuses it before any route sees it.
///
/// # Panics
///
/// When a route answers 500: the loader never fails, so a 500 can only be a route mishandling
/// what the client sent.
pub fn router(data: &[u8]) {
    for status in statuses(data).into_iter().flatten() {
        assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "a client's request was answered with 500: {:?}",
            String::from_utf8_lossy(data)
        );
    }
}

/// The statuses the router without tokens and the one with them answer the request in `data`
/// with; `None` when `data` is not a request.
///
/// Public so that a test can check that the seeds reach the routes they are named for: a
/// corpus answered 404 throughout would keep the fuzzer away from every handler.
pub fn statuses(data: &[u8]) -> Option<[StatusCode; 2]> {
    let request = parse(data)?;
    let app = &*APP;
    Some([&app.open, &app.guarded].map(|routes| {
        app.runtime.block_on(async {
            match routes.clone().oneshot(request()).await {
                Ok(response) => response.status(),
                Err(never) => match never {},
            }
        })
    }))
}

/// The request in `data`, as a function that builds a fresh copy for each router.
fn parse(data: &[u8]) -> Option<impl Fn() -> Request<Body>> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], Bytes::copy_from_slice(&data[at + 2..])),
        None => (data, Bytes::new()),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let first = lines.next()?;
    let space = first.iter().position(|&b| b == b' ')?;
    let method = Method::from_bytes(&first[..space]).ok()?;
    let uri = http::Uri::try_from(&first[space + 1..]).ok()?;
    let mut headers = http::HeaderMap::new();
    // An empty line is the end of a seed written with a final newline, not a header.
    for line in lines.filter(|line| !line.is_empty()) {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = http::HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = line[colon + 1..].trim_ascii_start();
        let value = http::HeaderValue::from_bytes(value).ok()?;
        headers.append(name, value);
    }
    Some(move || {
        let mut request = Request::new(Body::from(body.clone()));
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers.clone();
        request
    })
}
