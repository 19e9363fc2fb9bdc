//! `serve` with an `http:` source: a caching proxy in front of a tiny in-test origin.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;

use crate::support::Server;

/// An origin on 127.0.0.1:0 that counts its requests; runs until the runtime is dropped.
pub(crate) struct Origin {
    pub(crate) url: String,
    pub(crate) hits: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

async fn object(
    State(hits): State<Arc<AtomicUsize>>,
    Path(name): Path<String>,
) -> (StatusCode, String) {
    hits.fetch_add(1, Ordering::SeqCst);
    match name.as_str() {
        "missing" => (StatusCode::NOT_FOUND, "no such object".into()),
        "broken" => (StatusCode::INTERNAL_SERVER_ERROR, "origin is broken".into()),
        _ => (StatusCode::OK, format!("object:{name}")),
    }
}

impl Origin {
    pub(crate) fn start() -> Origin {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/objects/{name}", get(object))
            .with_state(Arc::clone(&hits));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        Origin {
            url: format!("http://{addr}/objects/"),
            hits,
            _runtime: runtime,
        }
    }
}

#[test]
fn values_are_fetched_from_the_origin_once_then_cached() {
    let origin = Origin::start();
    let node = Server::start(&["--group", &format!("objects=http:{}", origin.url)]);
    for _ in 0..3 {
        let r = node.get("/api/objects/a%20b");
        assert_eq!(r.status, 200, "{}", r.text());
        // The origin received the key percent-encoded and decoded it back.
        assert_eq!(r.text(), "object:a b");
    }
    assert_eq!(
        origin.hits.load(Ordering::SeqCst),
        1,
        "two of three gets were hits"
    );

    let missing = node.get("/api/objects/missing");
    assert_eq!(
        missing.status,
        404,
        "origin 404 is not found: {}",
        missing.text()
    );
    let broken = node.get("/api/objects/broken");
    assert_eq!(broken.status, 500);
    assert!(
        broken.text().contains("origin is broken"),
        "{}",
        broken.text()
    );
    // Failures are not cached: the origin is asked again.
    let before = origin.hits.load(Ordering::SeqCst);
    assert_eq!(node.get("/api/objects/broken").status, 500);
    assert_eq!(origin.hits.load(Ordering::SeqCst), before + 1);
    // `..` cannot be made safe by encoding, so it is refused before the origin sees it.
    assert_eq!(node.get("/api/objects/..").status, 400);
}

#[test]
fn an_unreachable_origin_is_a_load_error() {
    let port = crate::support::free_port();
    let node = Server::start(&["--group", &format!("objects=http:http://127.0.0.1:{port}/")]);
    let r = node.get("/api/objects/x");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("load failed"), "{}", r.text());
}
