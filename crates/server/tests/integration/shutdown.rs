//! SIGTERM stops accepting, lets in-flight requests finish, and exits 0.

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use tokio::sync::watch;

use crate::support::{DEADLINE, Server, geecache, request};

/// An origin that holds every request until released.
struct HeldOrigin {
    url: String,
    arrived: Arc<AtomicUsize>,
    release: watch::Sender<bool>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct Hold {
    arrived: Arc<AtomicUsize>,
    released: watch::Receiver<bool>,
}

async fn held(State(mut hold): State<Hold>) -> &'static str {
    hold.arrived.fetch_add(1, Ordering::SeqCst);
    let _ = hold.released.wait_for(|r| *r).await;
    "slow value"
}

impl HeldOrigin {
    fn start() -> HeldOrigin {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let arrived = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let app = axum::Router::new()
            .route("/{key}", get(held))
            .with_state(Hold {
                arrived: Arc::clone(&arrived),
                released,
            });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        HeldOrigin {
            url: format!("http://{addr}/"),
            arrived,
            release,
            _runtime: runtime,
        }
    }
}

/// Polls `done` until it holds, failing after the deadline.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10)); // polling interval
    }
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let origin = HeldOrigin::start();
    let mut node = Server::start_with(geecache().args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--drain-timeout",
        "30s",
        "--group",
        &format!("slow=http:{},origin_timeout=60s", origin.url),
    ]));
    let addr = node.addr;
    let in_flight: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|key| {
            std::thread::spawn(move || request(addr, "GET", &format!("/api/slow/{key}"), &[]))
        })
        .collect();
    wait_until("three requests at the origin", || {
        origin.arrived.load(Ordering::SeqCst) == 3
    });

    node.process.terminate();
    // Stop accepting: new connections are refused once the listener is closed.
    wait_until("the listener to close", || {
        TcpStream::connect(addr).is_err()
    });
    assert!(
        node.process.try_exit().is_none(),
        "the node must wait for its in-flight requests"
    );

    origin.release.send(true).unwrap();
    for request in in_flight {
        let r = request.join().unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "slow value"));
    }
    let status = node.process.wait(DEADLINE);
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:\n{}",
        node.process.stderr_text()
    );
    let log = node.process.stderr_text();
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(log.contains("drained"), "{log}");
}

#[test]
fn an_idle_node_exits_zero_on_sigterm() {
    let mut node = Server::start(&["--group", "scores=demo"]);
    node.process.terminate();
    let status = node.process.wait(DEADLINE);
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:\n{}",
        node.process.stderr_text()
    );
}
