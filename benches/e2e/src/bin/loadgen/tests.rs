use std::io::{Read, Write};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use clap::Parser as _;
use geecache_bench_e2e::tls::Pki;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::{Args, KeyCounts, check_batch, parse_target};

#[test]
fn targets_are_loopback_http_or_https_only() {
    let plain = parse_target("http://127.0.0.1:8001/").expect("plain target");
    assert!(!plain.tls);
    assert_eq!(plain.host, "127.0.0.1:8001");
    let tls = parse_target("https://127.0.0.1:8443").expect("TLS target");
    assert!(tls.tls);
    assert_eq!(tls.addr.port(), 8443);
    for bad in [
        "ftp://127.0.0.1:21",
        "127.0.0.1:8001",
        "https://example.com:443",
        "https://192.0.2.1:443",
        "http://127.0.0.1",
    ] {
        assert!(parse_target(bad).is_err(), "{bad:?} parsed");
    }
}

#[test]
fn the_connection_and_tls_flags_parse() {
    let args = Args::try_parse_from([
        "loadgen",
        "--target",
        "https://127.0.0.1:8443",
        "--tls-ca",
        "/tmp/ca.crt",
        "--tls-resume",
        "--connection-per-request",
        "--max-requests",
        "500",
    ])
    .expect("parses");
    assert!(args.tls_resume && args.connection_per_request);
    assert_eq!(args.max_requests, Some(500));
    assert_eq!(
        args.tls_ca.as_deref(),
        Some(std::path::Path::new("/tmp/ca.crt"))
    );
    let defaults =
        Args::try_parse_from(["loadgen", "--target", "http://127.0.0.1:1"]).expect("parses");
    assert!(!defaults.tls_resume && !defaults.connection_per_request);
    assert_eq!(defaults.max_requests, None);
    assert!(
        Args::try_parse_from([
            "loadgen",
            "--target",
            "http://127.0.0.1:1",
            "--max-requests",
            "0"
        ])
        .is_err(),
        "a budget of no requests is refused"
    );
}

#[test]
fn an_https_target_without_a_ca_is_refused_before_any_connection() {
    let args =
        Args::try_parse_from(["loadgen", "--target", "https://127.0.0.1:1"]).expect("parses");
    let e = super::run(&args).expect_err("no CA");
    assert!(format!("{e:#}").contains("--tls-ca"), "{e:#}");
}

/// A server that answers every request `200 ok` and closes the connection, over TLS when
/// given a configuration; it counts the connections it accepted, and stops once the count
/// reaches `stop_after`.
fn closing_server(
    stop_after: usize,
    tls: Option<Arc<ServerConfig>>,
) -> (String, std::thread::JoinHandle<usize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr().expect("address"));
    let serving = std::thread::spawn(move || {
        let mut accepted = 0;
        while accepted < stop_after {
            let (tcp, _) = listener.accept().expect("accept");
            accepted += 1;
            match &tls {
                None => answer(tcp),
                Some(config) => {
                    let session = ServerConnection::new(Arc::clone(config)).expect("session");
                    answer(StreamOwned::new(session, tcp));
                }
            }
        }
        accepted
    });
    (url, serving)
}

/// Reads a request head from `stream` and answers it, closing the connection.
fn answer(mut stream: impl Read + Write) {
    let mut head = Vec::new();
    let mut buf = [0; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ =
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
    let _ = stream.flush();
}

/// `loadgen` opening a connection per request to `url`, `n` requests in all.
fn per_request(url: &str, n: u64, more: &[&str]) -> Args {
    let n = n.to_string();
    let mut argv = vec![
        "loadgen",
        "--target",
        url,
        "--connection-per-request",
        "--max-requests",
        &n,
        "--duration",
        "120s",
        "--keys",
        "10",
    ];
    argv.extend_from_slice(more);
    Args::try_parse_from(argv).expect("parses")
}

#[test]
fn a_connection_per_request_opens_one_connection_for_each_request_up_to_the_budget() {
    let (url, serving) = closing_server(20, None);
    let report = super::run(&per_request(&url, 20, &["--connections", "4"])).expect("ran");
    assert_eq!(report.ok, 20, "{report:?}");
    assert_eq!(report.keys, 20, "a single get answers one key: {report:?}");
    assert_eq!(report.errors() + report.connect_failures, 0, "{report:?}");
    assert_eq!(report.tls_handshakes, 0);
    assert_eq!(serving.join().expect("server thread"), 20);
}

#[test]
fn over_tls_each_connection_makes_a_full_handshake_unless_told_to_resume() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::generate(dir.path()).expect("certificates");
    let chain = CertificateDer::pem_file_iter(&pki.cert)
        .expect("readable")
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM");
    let key = PrivateKeyDer::from_pem_file(&pki.key).expect("PEM key");
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("key matches"),
    );
    let ca = pki.ca.display().to_string();
    for (resume, resumed) in [(false, 0), (true, 5)] {
        let (url, serving) = closing_server(6, Some(Arc::clone(&server)));
        let mut more = vec!["--connections", "1", "--tls-ca", &ca];
        if resume {
            more.push("--tls-resume");
        }
        let report = super::run(&per_request(&url, 6, &more)).expect("ran");
        assert_eq!(report.ok, 6, "{report:?}");
        assert_eq!(report.tls_handshakes, 6, "{report:?}");
        // One connection at a time: each after the first resumes the session the one
        // before it left.
        assert_eq!(report.tls_resumed, resumed, "resume: {resume}: {report:?}");
        assert_eq!(serving.join().expect("server thread"), 6);
    }
}

#[test]
fn the_batch_flag_parses_and_refuses_nonsense() {
    let base = ["loadgen", "--target", "http://127.0.0.1:1"];
    let with = |more: &[&str]| Args::try_parse_from(base.iter().chain(more));
    assert_eq!(with(&["--batch", "100"]).expect("parses").batch, Some(100));
    assert_eq!(with(&[]).expect("parses").batch, None);
    assert!(with(&["--batch", "0"]).is_err(), "a batch of no keys");
    assert!(with(&["--batch", "100001"]).is_err(), "over the bound");
    assert!(
        with(&["--batch", "10", "--connection-per-request"]).is_err(),
        "batches are sent on kept-alive connections only"
    );
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|&k| k.to_owned()).collect()
}

#[test]
fn a_batch_answer_must_answer_every_key_in_order() {
    let asked = keys(&["a", "b", "c"]);
    let good = br#"{"results":[{"key":"a","value":"MQ==","source":"main"},
        {"key":"b","error":"not-found","message":"no such key"},{"key":"c","value":""}]}"#;
    assert_eq!(
        check_batch(&asked, good),
        Some(KeyCounts {
            found: 2,
            failed: 1
        })
    );
    for bad in [
        // One short, one over, out of order.
        &br#"{"results":[{"key":"a","value":""},{"key":"b","value":""}]}"#[..],
        br#"{"results":[{"key":"a","value":""},{"key":"b","value":""},{"key":"c","value":""},{"key":"c","value":""}]}"#,
        br#"{"results":[{"key":"b","value":""},{"key":"a","value":""},{"key":"c","value":""}]}"#,
        // A key with neither a value nor an error, or both.
        br#"{"results":[{"key":"a"},{"key":"b","value":""},{"key":"c","value":""}]}"#,
        br#"{"results":[{"key":"a","value":"","error":"internal"},{"key":"b","value":""},{"key":"c","value":""}]}"#,
        // Not the shape at all.
        br#"[]"#,
        b"ok",
    ] {
        assert_eq!(
            check_batch(&asked, bad),
            None,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

/// How the in-process batch server misbehaves, if at all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Misbehave {
    /// Answers as geecache's client batch route does.
    Not,
    /// Leaves the last key out of every answer.
    DropLast,
}

/// What the in-process batch server saw and how it answers.
struct Fake {
    misbehave: Misbehave,
    /// The most keys a batch may ask for; 413 beyond, as geecache's `--max-batch-keys`.
    limit: usize,
    /// Every key asked for, in the order the requests arrived.
    asked: Mutex<Vec<String>>,
}

#[derive(serde::Deserialize)]
struct Asked {
    keys: Vec<String>,
}

/// `POST /api/{group}`: one result per key in the order asked, in the JSON of geecache's client
/// batch route; a key whose number is a multiple of 3 is answered `not-found`.
async fn batch_route(State(fake): State<Arc<Fake>>, Json(asked): Json<Asked>) -> Response {
    if asked.keys.len() > fake.limit {
        return (StatusCode::PAYLOAD_TOO_LARGE, "too-large").into_response();
    }
    (fake.asked.lock().unwrap_or_else(PoisonError::into_inner)).extend(asked.keys.iter().cloned());
    let mut results: Vec<serde_json::Value> = (asked.keys.iter())
        .map(|key| {
            let n: u64 = key.trim_start_matches("player-").parse().unwrap_or(1);
            if n.is_multiple_of(3) {
                serde_json::json!({"key": key, "error": "not-found", "message": "not found"})
            } else {
                serde_json::json!({"key": key, "value": "MTIz", "source": "main"})
            }
        })
        .collect();
    if fake.misbehave == Misbehave::DropLast {
        results.pop();
    }
    Json(serde_json::json!({ "results": results })).into_response()
}

/// An axum server with the batch route on 127.0.0.1 port 0, on a runtime of its own (loadgen
/// makes its own), stopped and joined when dropped.
struct BatchServer {
    url: String,
    fake: Arc<Fake>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BatchServer {
    fn start(misbehave: Misbehave, limit: usize) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let fake = Arc::new(Fake {
            misbehave,
            limit,
            asked: Mutex::new(Vec::new()),
        });
        let router = axum::Router::new()
            .route("/api/{group}", axum::routing::post(batch_route))
            .with_state(Arc::clone(&fake));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        BatchServer {
            url,
            fake,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn asked(&self) -> Vec<String> {
        (self
            .fake
            .asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
        .clone()
    }
}

impl Drop for BatchServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `loadgen --batch` against `url`, with `more` flags.
fn batches(url: &str, more: &[&str]) -> Args {
    let mut argv = vec!["loadgen", "--target", url, "--duration", "120s"];
    argv.extend_from_slice(more);
    Args::try_parse_from(argv).expect("parses")
}

#[test]
fn a_batch_run_asks_for_every_key_once_and_counts_keys_and_key_errors_apart() {
    let server = BatchServer::start(Misbehave::Not, 1000);
    // Every key of 95 once, in order, ten at a time on one connection: nine batches of ten
    // and one of the five that are left.
    let args = batches(
        &server.url,
        &[
            "--batch",
            "10",
            "--mode",
            "sequential",
            "--keys",
            "95",
            "--connections",
            "1",
        ],
    );
    let report = super::run(&args).expect("ran");
    let expected: Vec<String> = (0..95).map(|i| format!("player-{i:06}")).collect();
    assert_eq!(server.asked(), expected);
    assert_eq!(report.ok, 10, "{report:?}");
    // 0, 3, ..., 93 are answered not-found: 32 keys, counted apart from the request errors.
    assert_eq!(report.key_errors, 32, "{report:?}");
    assert_eq!(report.keys, 95 - 32, "{report:?}");
    assert_eq!(report.errors() + report.connect_failures, 0, "{report:?}");
    assert!(report.keys_per_s > 0.0, "{report:?}");
}

#[test]
fn a_batch_answer_short_of_a_key_or_refused_is_a_request_error() {
    let server = BatchServer::start(Misbehave::DropLast, 1000);
    let args = batches(
        &server.url,
        &["--batch", "20", "--max-requests", "4", "--connections", "2"],
    );
    let report = super::run(&args).expect("ran");
    assert_eq!(report.bad_answers, 4, "{report:?}");
    assert_eq!(
        (report.ok, report.keys, report.errors()),
        (0, 0, 4),
        "{report:?}"
    );
    assert_eq!(server.asked().len(), 80, "every request reached the server");

    let limited = BatchServer::start(Misbehave::Not, 5);
    let args = batches(
        &limited.url,
        &["--batch", "6", "--max-requests", "3", "--connections", "2"],
    );
    let report = super::run(&args).expect("ran");
    assert_eq!((report.bad_status, report.ok), (3, 0), "{report:?}");
    assert!(limited.asked().is_empty());
}
