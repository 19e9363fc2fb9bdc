//! The routes driven without a socket (`tower::ServiceExt::oneshot`): status codes, error
//! kinds, tokens, admin answers.

use axum::Router;
use axum::body::Body;
use geecache_group::{Group, Registry};
use geecache_transport_http::proto::GetResponse;
use geecache_transport_http::{ErrorKind, PEER_HEADER, RouterConfig, router, try_router};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use prost::Message;
use tower::ServiceExt;

use crate::support::{GROUP, Loader, World, value_of};

struct Reply {
    status: StatusCode,
    kind: Option<String>,
    /// `x-geecache-peek`, on the answer to a peek.
    peek: Option<String>,
    content_type: Option<String>,
    body: bytes::Bytes,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn app_with(config: impl FnOnce(RouterConfig) -> RouterConfig) -> (Router, World) {
    let registry = Registry::new();
    let world = World::default();
    Group::builder(GROUP)
        .register(&registry)
        .getter(Loader {
            node: "local".into(),
            world: world.clone(),
            gate: None,
        })
        .build()
        .expect("valid group");
    (router(config(RouterConfig::new(registry))), world)
}

fn app() -> Router {
    app_with(|c| c.max_key_bytes(16)).0
}

async fn call(app: &Router, method: Method, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("valid request"))
        .await
        .expect("infallible");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (kind, content_type) = (header("x-geecache-error"), header("content-type"));
    let peek = header(geecache_transport_http::PEEK_HEADER);
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        kind,
        peek,
        content_type,
        body,
    }
}

async fn status_and_kind(app: &Router, uri: &str) -> (StatusCode, Option<String>) {
    let reply = call(app, Method::GET, uri, &[]).await;
    if reply.status != StatusCode::OK {
        assert_eq!(
            reply.content_type.as_deref(),
            Some("text/plain; charset=utf-8"),
            "{uri}"
        );
        assert!(
            !reply.text().trim().is_empty(),
            "{uri}: errors carry a message"
        );
    }
    (reply.status, reply.kind)
}

#[tokio::test]
async fn the_peer_route_answers_protobuf() {
    let app = app();
    let reply = call(&app, Method::GET, "/_geecache/g/k1", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/x-protobuf")
    );
    let message = GetResponse::decode(reply.body).expect("a GetResponse");
    assert_eq!(message.value.as_deref(), Some(value_of("k1", 0).as_bytes()));
    assert_eq!(message.expire, None, "no ttl, no expire field");

    let reply = call(&app, Method::GET, "/_geecache/g/ttl1", &[]).await;
    let message = GetResponse::decode(reply.body).expect("a GetResponse");
    let ttl = message
        .ttl_at(std::time::SystemTime::now())
        .expect("an expiry");
    assert!(ttl > std::time::Duration::from_secs(50) && ttl <= std::time::Duration::from_secs(60));
}

#[tokio::test]
async fn the_client_route_answers_raw_bytes() {
    let app = app();
    let reply = call(&app, Method::GET, "/api/g/k1", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(reply.text(), value_of("k1", 0));
    // On the client route `+` is a plus; on the peer route it is a space (form encoding).
    assert_eq!(
        call(&app, Method::GET, "/api/g/a+b", &[]).await.text(),
        value_of("a+b", 0)
    );
    let peer = call(&app, Method::GET, "/_geecache/g/a+b", &[]).await;
    let message = GetResponse::decode(peer.body).expect("a GetResponse");
    assert_eq!(
        message.value.as_deref(),
        Some(value_of("a b", 0).as_bytes())
    );
}

// Regression: mailgun/groupcache and groupcache-go v3 clients path-encode keys
// (`url.PathEscape`), which leaves `+` literal, and the peer route read it with form semantics:
// `GET /_geecache/g/p+q` loaded and returned the value of `p q`. With path decoding on the peer
// route a `+` is a plus, and our own clients' escapes still decode the same way.
#[tokio::test]
async fn a_path_escaped_plus_is_a_plus_with_path_decoding_on_the_peer_route() {
    use geecache_transport_http::path::Decoding;
    let (app, world) = app_with(|c| c.peer_key_decoding(Decoding::Percent));
    let value = |reply: Reply| {
        let message = GetResponse::decode(reply.body).expect("a GetResponse");
        String::from_utf8_lossy(&message.value.unwrap_or_default()).into_owned()
    };
    let plus = call(&app, Method::GET, "/_geecache/g/p+q", &[]).await;
    assert_eq!(plus.status, StatusCode::OK, "{}", plus.text());
    assert_eq!(value(plus), value_of("p+q", 0));
    // What a geecache peer sends for "p q" and "p+q" reads the same under either decoding.
    let space = call(&app, Method::GET, "/_geecache/g/p%20q", &[]).await;
    assert_eq!(value(space), value_of("p q", 0));
    let escaped = call(&app, Method::GET, "/_geecache/g/p%2Bq", &[]).await;
    assert_eq!(value(escaped), value_of("p+q", 0));
    let loaded: Vec<String> = world.loads().into_iter().map(|l| l.key).collect();
    assert!(
        loaded.iter().all(|k| k == "p+q" || k == "p q"),
        "{loaded:?}"
    );
    // Removals on the peer route read keys the same way.
    let removed = call(
        &app,
        Method::DELETE,
        "/_geecache/g/p+q",
        &[(PEER_HEADER, "1")],
    )
    .await;
    assert!(removed.status.is_success(), "{}", removed.text());
}

#[tokio::test]
async fn bad_paths_get_precise_statuses() {
    let app = app();
    let cases: &[(&str, StatusCode, ErrorKind)] = &[
        (
            "/_geecache/g/%zz",
            StatusCode::BAD_REQUEST,
            ErrorKind::BadPath,
        ),
        (
            "/_geecache/g/a%",
            StatusCode::BAD_REQUEST,
            ErrorKind::BadPath,
        ),
        (
            "/_geecache/g/%FF%FE",
            StatusCode::BAD_REQUEST,
            ErrorKind::BadPath,
        ),
        (
            "/_geecache/%FF/k",
            StatusCode::BAD_REQUEST,
            ErrorKind::BadPath,
        ),
        ("/_geecache/g", StatusCode::BAD_REQUEST, ErrorKind::BadPath),
        ("/_geecache/g/", StatusCode::BAD_REQUEST, ErrorKind::BadPath),
        ("/_geecache/", StatusCode::BAD_REQUEST, ErrorKind::BadPath),
        ("/_geecache//k", StatusCode::BAD_REQUEST, ErrorKind::BadPath),
        ("/api/g", StatusCode::BAD_REQUEST, ErrorKind::BadPath),
        ("/api/g/%C3", StatusCode::BAD_REQUEST, ErrorKind::BadPath),
        (
            "/_geecache/nope/k",
            StatusCode::NOT_FOUND,
            ErrorKind::UnknownGroup,
        ),
        (
            "/api/nope/k",
            StatusCode::NOT_FOUND,
            ErrorKind::UnknownGroup,
        ),
        (
            "/_geecache/g/missing1",
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
        ),
        (
            "/api/g/missing1",
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
        ),
        (
            "/_geecache/g/fail1",
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::LoadFailed,
        ),
        ("/nowhere", StatusCode::NOT_FOUND, ErrorKind::NoRoute),
        // max_key_bytes is 16 here.
        (
            "/_geecache/g/kkkkkkkkkkkkkkkkk",
            StatusCode::URI_TOO_LONG,
            ErrorKind::KeyTooLong,
        ),
        (
            "/api/g/kkkkkkkkkkkkkkkkk",
            StatusCode::URI_TOO_LONG,
            ErrorKind::KeyTooLong,
        ),
        // 17 bytes once decoded, 51 raw.
        (
            "/_geecache/g/%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B",
            StatusCode::URI_TOO_LONG,
            ErrorKind::KeyTooLong,
        ),
    ];
    for &(uri, status, kind) in cases {
        assert_eq!(
            status_and_kind(&app, uri).await,
            (status, Some(kind.as_str().to_owned())),
            "{uri}"
        );
    }
    // 16 bytes is fine, however it is spelled.
    let at_limit = "/_geecache/g/%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B%6B";
    assert_eq!(status_and_kind(&app, at_limit).await.0, StatusCode::OK);
    // Messages are precise.
    let reply = call(&app, Method::GET, "/_geecache/nope/k", &[]).await;
    assert_eq!(reply.text(), "no such group: \"nope\"\n");
    let reply = call(&app, Method::GET, "/_geecache/g/fail1", &[]).await;
    assert!(
        reply.text().contains("the source is down for fail1"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn the_default_key_limit_admits_what_a_uri_can_carry() {
    // `http` caps a URI at 64 KiB - 2 bytes, so with the default limit (64 KiB) the URI cap is
    // what binds; the router's own limit matters when it is configured lower.
    let (app, _) = app_with(|c| c);
    let long = format!("/api/g/k{}", "x".repeat(60_000));
    assert_eq!(status_and_kind(&app, &long).await.0, StatusCode::OK);
}

#[tokio::test]
async fn keys_are_read_raw_without_normalisation() {
    let (app, world) = app_with(|c| c);
    for (uri, key) in [
        ("/_geecache/g/a//b", "a//b"),
        ("/_geecache/g//k", "/k"),
        ("/_geecache/g/k/../../etc", "k/../../etc"),
        ("/_geecache/g/./k/.", "./k/."),
        ("/_geecache/g/k%2F..%2F", "k/../"),
        ("/api/g/k//x/..", "k//x/.."),
    ] {
        let reply = call(&app, Method::GET, uri, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(
            world.loads().last().map(|l| l.key.clone()).as_deref(),
            Some(key),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn tokens_guard_peer_and_admin_routes() {
    let (app, _) = app_with(|c| c.peer_token(Some("s3cret".into())));
    let good = [("authorization", "Bearer s3cret")];
    for uri in ["/_geecache/g/k1", "/healthz", "/stats"] {
        let none = call(&app, Method::GET, uri, &[]).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(none.kind.as_deref(), Some(ErrorKind::Unauthorized.as_str()));
        let wrong = call(
            &app,
            Method::GET,
            uri,
            &[("authorization", "Bearer s3creT")],
        )
        .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(
            call(&app, Method::GET, uri, &good).await.status,
            StatusCode::OK,
            "{uri}"
        );
    }
    let delete = call(
        &app,
        Method::DELETE,
        "/_geecache/g/k1",
        &[(PEER_HEADER, "1")],
    )
    .await;
    assert_eq!(delete.status, StatusCode::UNAUTHORIZED);
    // The client route stays open unless it has a token of its own.
    assert_eq!(
        call(&app, Method::GET, "/api/g/k1", &[]).await.status,
        StatusCode::OK
    );

    let (app, _) = app_with(|c| c.api_token(Some("client".into())));
    assert_eq!(
        call(&app, Method::GET, "/api/g/k1", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, Method::DELETE, "/api/g/k1", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let ok = call(
        &app,
        Method::GET,
        "/api/g/k1",
        &[("authorization", "Bearer client")],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        call(&app, Method::GET, "/_geecache/g/k1", &[]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn healthz_and_stats_report() {
    let app = app();
    let health = call(&app, Method::GET, "/healthz", &[]).await;
    assert_eq!(
        (health.status, health.text().as_str()),
        (StatusCode::OK, "ok\n")
    );

    call(&app, Method::GET, "/api/g/k1", &[]).await;
    call(&app, Method::GET, "/api/g/k1", &[]).await;
    call(&app, Method::GET, "/api/g/missing", &[]).await;
    let stats = call(&app, Method::GET, "/stats", &[]).await;
    assert_eq!(stats.content_type.as_deref(), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&stats.body).expect("JSON");
    let g = &json["groups"]["g"];
    assert_eq!(g["gets"], 3);
    assert_eq!(g["cache_hits"], 1);
    assert_eq!(g["local_loads"], 1);
    assert_eq!(g["not_found"], 1);
    assert_eq!(g["main"]["items"], 1);
    assert_eq!(json["peers"], serde_json::json!([]));
}

#[tokio::test]
async fn delete_without_a_pool_removes_locally() {
    let (app, world) = app_with(|c| c);
    call(&app, Method::GET, "/api/g/k1", &[]).await;
    let removed = call(&app, Method::DELETE, "/api/g/k1", &[]).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    world.bump();
    assert_eq!(
        call(&app, Method::GET, "/api/g/k1", &[]).await.text(),
        value_of("k1", 1)
    );
    let removed = call(&app, Method::DELETE, "/_geecache/g/k1", &[]).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(world.loads_of("k1").len(), 2);
}

#[tokio::test]
async fn nothing_in_a_path_makes_the_router_panic() {
    let app = app();
    // A spread of hostile paths; each must get an answer, whatever it is.
    let nasty = [
        "/_geecache/%",
        "/_geecache/%%/%%",
        "/_geecache/g/%0",
        "/_geecache/g/%00",
        "/_geecache/g/%C0%80",
        "/_geecache/g/%ED%A0%80",
        "/_geecache/%2F/%2F",
        "/_geecache/g/+",
        "/_geecache/g/%2B%2b",
        "/api/%/%",
        "/api//",
        "/api/g//",
        "/_geecache/g/%E2%82",
        "/_geecache/g/~!$&'()*,;=:@",
        "/stats/x",
        "/healthz/",
    ];
    for uri in nasty {
        let reply = call(&app, Method::GET, uri, &[]).await;
        assert!(
            reply.status.is_client_error() || reply.status.is_success(),
            "{uri}: {}",
            reply.status
        );
    }
}

#[test]
fn invalid_configurations_are_errors() {
    let registry = Registry::new;
    assert!(try_router(RouterConfig::new(registry()).base_path("no-slash")).is_err());
    assert!(try_router(RouterConfig::new(registry()).base_path("/api/")).is_err());
    assert!(try_router(RouterConfig::new(registry()).base_path("/metrics/")).is_err());
    assert!(try_router(RouterConfig::new(registry()).max_key_bytes(0)).is_err());
    assert!(try_router(RouterConfig::new(registry()).peer_token(Some(String::new()))).is_err());
    assert!(try_router(RouterConfig::new(registry()).base_path("/_groupcache/")).is_ok());
}

// A key the group's source refuses is 400 `invalid-key` on both routes, whether its text gives
// it away (the key check, before the cache) or only the load does.
#[tokio::test]
async fn refused_keys_are_invalid_key() {
    let (app, world) = app_with(|c| c);
    for uri in [
        "/api/g/bad1",
        "/_geecache/g/bad1",
        "/api/g/deny1",
        "/_geecache/g/deny1",
    ] {
        let reply = call(&app, Method::GET, uri, &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(
            reply.kind.as_deref(),
            Some(ErrorKind::InvalidKey.as_str()),
            "{uri}"
        );
        assert!(
            reply.text().starts_with("invalid key: "),
            "{uri}: {}",
            reply.text()
        );
    }
    assert!(world.loads_of("bad1").is_empty(), "refused before any load");
    assert_eq!(
        world.loads_of("deny1").len(),
        2,
        "never cached: each get loads again"
    );
}

#[tokio::test]
async fn readiness_and_metrics_come_from_the_application() {
    let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&ready);
    let (app, _) = app_with(|c| {
        c.readiness(
            move || match flag.load(std::sync::atomic::Ordering::SeqCst) {
                true => Ok(()),
                false => Err("warming up".to_owned()),
            },
        )
        .metrics(|accept| {
            (
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
                format!("hits 1\naccept {accept:?}\n"),
            )
        })
    });
    let not_ready = call(&app, Method::GET, "/readyz", &[]).await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        not_ready.kind.as_deref(),
        Some(ErrorKind::NotReady.as_str())
    );
    assert_eq!(not_ready.text(), "not ready: warming up\n");
    ready.store(true, std::sync::atomic::Ordering::SeqCst);
    let now_ready = call(&app, Method::GET, "/readyz", &[]).await;
    assert_eq!(
        (now_ready.status, now_ready.text().as_str()),
        (StatusCode::OK, "ready\n")
    );

    let metrics = call(&app, Method::GET, "/metrics", &[]).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(
        metrics.content_type.as_deref(),
        Some("text/plain; version=0.0.4")
    );
    assert_eq!(metrics.text(), "hits 1\naccept None\n");
    // The renderer sees what the scraper accepts, to choose the format.
    let asked = call(&app, Method::GET, "/metrics", &[("accept", "text/plain")]).await;
    assert_eq!(asked.text(), "hits 1\naccept Some(\"text/plain\")\n");

    // Without a renderer there is no such route.
    let (bare, _) = app_with(|c| c);
    let none = call(&bare, Method::GET, "/metrics", &[]).await;
    assert_eq!(none.kind.as_deref(), Some(ErrorKind::NoRoute.as_str()));
    let always = call(&bare, Method::GET, "/readyz", &[]).await;
    assert_eq!(always.status, StatusCode::OK, "ready unless told otherwise");
}

// Every admin route sits behind the peer token, the application's included: one guard, one
// answer.
#[tokio::test]
async fn the_peer_token_guards_readyz_and_metrics_too() {
    let (app, _) = app_with(|c| {
        c.peer_token(Some("s3cret".into()))
            .metrics(|_| (http::HeaderValue::from_static("text/plain"), String::new()))
    });
    for uri in ["/readyz", "/metrics"] {
        let refused = call(&app, Method::GET, uri, &[]).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(
            refused.kind.as_deref(),
            Some(ErrorKind::Unauthorized.as_str())
        );
        let admitted = call(
            &app,
            Method::GET,
            uri,
            &[("authorization", "Bearer s3cret")],
        )
        .await;
        assert_eq!(admitted.status, StatusCode::OK, "{uri}");
    }
    // A path no route matches is `no-route`, token or not.
    let stray = call(&app, Method::GET, "/nowhere", &[]).await;
    assert_eq!(stray.kind.as_deref(), Some(ErrorKind::NoRoute.as_str()));
}

// A group's name is any string: the path escapes it, so `/` in a name needs no rule.
#[tokio::test]
async fn a_group_name_with_a_slash_is_served_escaped() {
    let registry = Registry::new();
    let world = World::default();
    Group::builder("team/scores")
        .register(&registry)
        .getter(Loader {
            node: "local".into(),
            world: world.clone(),
            gate: None,
        })
        .build()
        .expect("any non-empty name");
    let app = router(RouterConfig::new(registry));
    let reply = call(&app, Method::GET, "/api/team%2Fscores/k1", &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), value_of("k1", 0));
    let raw = call(&app, Method::GET, "/api/team/scores/k1", &[]).await;
    assert_eq!(
        raw.kind.as_deref(),
        Some(ErrorKind::UnknownGroup.as_str()),
        "group is `team`"
    );
}

// A peek answers from the cache only: the value when it is cached (marked as a peek's), 404
// `not-cached` when it is not, and the errors of a get for a key no get could take.
#[tokio::test]
async fn a_peek_never_loads() {
    let (app, world) = app_with(|c| c);
    let peek = [
        (PEER_HEADER, "1"),
        (geecache_transport_http::PEEK_HEADER, "1"),
    ];
    let miss = call(&app, Method::GET, "/_geecache/g/k1", &peek).await;
    assert_eq!(miss.status, StatusCode::NOT_FOUND);
    assert_eq!(miss.kind.as_deref(), Some(ErrorKind::NotCached.as_str()));
    assert!(world.loads_of("k1").is_empty(), "a peek never loads");

    call(&app, Method::GET, "/api/g/k1", &[]).await;
    let hit = call(&app, Method::GET, "/_geecache/g/k1", &peek).await;
    assert_eq!(hit.status, StatusCode::OK);
    assert_eq!(hit.peek.as_deref(), Some("hit"));
    let value = GetResponse::decode(hit.body).expect("protobuf");
    assert_eq!(value.value.as_deref(), Some(value_of("k1", 0).as_bytes()));
    assert_eq!(world.loads_of("k1").len(), 1);

    let refused = call(&app, Method::GET, "/_geecache/g/bad1", &peek).await;
    assert_eq!(
        refused.kind.as_deref(),
        Some(ErrorKind::InvalidKey.as_str())
    );
    let unknown = call(&app, Method::GET, "/_geecache/nope/k1", &peek).await;
    assert_eq!(
        unknown.kind.as_deref(),
        Some(ErrorKind::UnknownGroup.as_str())
    );
}
