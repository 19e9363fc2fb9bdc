//! Graceful shutdown: in-flight requests finish, a request on an open connection is still
//! answered (and its connection closed), then the server returns.

use std::sync::Arc;

use bytes::Bytes;
use geecache_group::{Group, Registry};
use geecache_transport_http::{RouterConfig, router, serve};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{SendRequest, handshake};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::support::{GROUP, Loader, PATIENT, World, gate, loopback, value_of};

/// One keep-alive connection, driven by hand so the test decides what travels on it.
async fn connection(addr: std::net::SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, conn) = handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    sender
}

async fn ask(
    sender: &mut SendRequest<Empty<Bytes>>,
    path: &str,
) -> (StatusCode, Option<String>, String) {
    let work = async {
        sender.ready().await.expect("connection still open");
        let request = Request::get(path)
            .header("host", "node")
            .body(Empty::new())
            .expect("valid request");
        let response = sender.send_request(request).await.expect("an answer");
        let status = response.status();
        let connection = response
            .headers()
            .get("connection")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            connection,
            String::from_utf8_lossy(&body).into_owned(),
        )
    };
    tokio::time::timeout(PATIENT, work)
        .await
        .expect("answered in time")
}

// Current-thread runtime on purpose: once the shutdown future has returned, the server sets its
// "shutting down" flag before it next yields, so when this test hears the acknowledgement the
// flag is already set. No sleeping, no polling.
#[tokio::test(flavor = "current_thread")]
async fn shutdown_drains_in_flight_requests_and_still_answers_on_open_connections() {
    let registry = Registry::new();
    let (gate, mut control) = gate();
    let world = World::default();
    let _group: Arc<Group> = Group::builder(GROUP)
        .register(&registry)
        .getter(Loader {
            node: "solo".into(),
            world,
            gate: Some(gate),
        })
        .build()
        .expect("valid group");
    let listener = loopback().await;
    let addr = listener.local_addr().expect("bound");
    let (trigger, triggered) = oneshot::channel::<()>();
    let (ack, acked) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        router(RouterConfig::new(registry)),
        async move {
            let _ = triggered.await;
            let _ = ack.send(());
        },
    ));

    let mut busy = connection(addr).await;
    let mut idle = connection(addr).await;
    assert_eq!(ask(&mut idle, "/healthz").await.0, StatusCode::OK);

    // A request is in the loader when shutdown begins.
    let in_flight = tokio::spawn(async move { ask(&mut busy, "/api/g/slow1").await });
    assert_eq!(control.next_entered().await, "slow1");
    trigger.send(()).expect("server listening for shutdown");
    acked.await.expect("shutdown future ran");

    // The open connection still gets its answer, and an invitation to go away: a client of a
    // draining node sees no error (a rolling restart shows no 5xx).
    let (status, connection_header, body) = ask(&mut idle, "/api/g/k1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(connection_header.as_deref(), Some("close"));
    assert_eq!(body, value_of("k1", 0));
    // New connections are refused: the listener is closed.
    assert!(TcpStream::connect(addr).await.is_err());

    // The in-flight request completes, then the server returns.
    control.release(1);
    let (status, _, body) = tokio::time::timeout(PATIENT, in_flight)
        .await
        .expect("in-flight request finishes")
        .expect("no panic");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, value_of("slow1", 0));
    tokio::time::timeout(PATIENT, server)
        .await
        .expect("server returns once drained")
        .expect("no panic")
        .expect("serve returns Ok");
}

#[tokio::test]
async fn an_idle_server_stops_at_once_even_with_open_connections() {
    let listener = loopback().await;
    let addr = listener.local_addr().expect("bound");
    let (trigger, triggered) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        router(RouterConfig::new(Registry::new())),
        async move {
            let _ = triggered.await;
        },
    ));
    let mut idle = connection(addr).await;
    assert_eq!(ask(&mut idle, "/healthz").await.0, StatusCode::OK);
    trigger.send(()).expect("server listening for shutdown");
    tokio::time::timeout(PATIENT, server)
        .await
        .expect("an idle keep-alive connection does not hold the server")
        .expect("no panic")
        .expect("serve returns Ok");
}
