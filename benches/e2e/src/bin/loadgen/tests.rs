use clap::Parser as _;

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

/// A server that answers every request `200 ok` and closes the connection; it counts the
/// connections it accepted, and stops once the count reaches `stop_after`.
fn closing_server(stop_after: usize) -> (String, std::thread::JoinHandle<usize>) {
    use std::io::{Read as _, Write as _};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let serving = std::thread::spawn(move || {
        let mut accepted = 0;
        while accepted < stop_after {
            let (mut tcp, _) = listener.accept().expect("accept");
            accepted += 1;
            let mut head = Vec::new();
            let mut buf = [0; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tcp.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
        accepted
    });
    (url, serving)
}

#[test]
fn a_connection_per_request_opens_one_connection_for_each_request_up_to_the_budget() {
    let (url, serving) = closing_server(20);
    let args = Args::try_parse_from([
        "loadgen",
        "--target",
        &url,
        "--connection-per-request",
        "--max-requests",
        "20",
        "--connections",
        "4",
        "--duration",
        "120s",
        "--keys",
        "10",
    ])
    .expect("parses");
    let report = super::run(&args).expect("ran");
    assert_eq!(report.ok, 20, "{report:?}");
    assert_eq!(report.errors() + report.connect_failures, 0, "{report:?}");
    assert_eq!(report.tls_handshakes, 0);
    assert_eq!(serving.join().expect("server thread"), 20);
}
