use std::io::{Read, Write};
use std::sync::Arc;

use clap::Parser as _;
use geecache_bench_e2e::tls::Pki;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::{Args, parse_target};

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
