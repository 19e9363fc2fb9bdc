//! The made-up certificates, tried with real handshakes: in memory between a rustls server
//! and client, and over a loopback socket with the blocking probe.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection, StreamOwned};

use super::{Pki, Resumption, client_config};
use crate::probe;

/// A TLS server with the node certificate of `pki`, speaking HTTP/1.1.
fn server_config(pki: &Pki) -> Arc<ServerConfig> {
    let chain = CertificateDer::pem_file_iter(&pki.cert)
        .expect("certificate readable")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate is PEM");
    let key = PrivateKeyDer::from_pem_file(&pki.key).expect("key is PEM");
    let mut config = ServerConfig::builder_with_provider(Arc::new(
        #[allow(deprecated)]
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("the key matches the certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Runs a handshake between `client` (asking for `name`) and `server` in memory; the
/// client's error if it refuses the server.
fn handshake(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    name: &str,
) -> Result<ClientConnection, rustls::Error> {
    let name = ServerName::try_from(name.to_owned()).expect("a valid server name");
    let mut c = ClientConnection::new(Arc::clone(client), name)?;
    let mut s = ServerConnection::new(Arc::clone(server)).expect("server connection");
    // Each round moves what one side wrote to the other; a handshake takes a few.
    for _ in 0..10 {
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(c);
        }
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).expect("client writes");
        }
        s.read_tls(&mut wire.as_slice()).expect("server reads");
        if let Err(e) = s.process_new_packets() {
            // The server's alert goes back, and the client reports what was wrong.
            let mut alert = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut alert).expect("server writes its alert");
            }
            c.read_tls(&mut alert.as_slice()).expect("client reads");
            return Err(c.process_new_packets().err().unwrap_or(e));
        }
        let mut wire = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut wire).expect("server writes");
        }
        c.read_tls(&mut wire.as_slice()).expect("client reads");
        c.process_new_packets()?;
    }
    panic!("the handshake did not finish in 10 rounds");
}

fn pki_in(dir: &Path) -> Pki {
    Pki::generate(dir).expect("certificates made")
}

#[test]
fn a_client_of_the_ca_accepts_the_node_for_its_address_and_name_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = pki_in(dir.path());
    let server = server_config(&pki);
    let client = client_config(&pki.ca, Resumption::Off).expect("client made");
    let done = handshake(&client, &server, "127.0.0.1").expect("the node is trusted");
    assert_eq!(done.alpn_protocol(), Some(&b"http/1.1"[..]));
    handshake(&client, &server, "localhost").expect("the node is trusted as localhost");
    let wrong = handshake(&client, &server, "example.com").expect_err("another name is refused");
    assert!(
        matches!(wrong, rustls::Error::InvalidCertificate(_)),
        "{wrong:?}"
    );
}

#[test]
fn a_client_of_another_ca_refuses_the_node() {
    let ours = tempfile::tempdir().expect("temp dir");
    let theirs = tempfile::tempdir().expect("temp dir");
    let server = server_config(&pki_in(ours.path()));
    let other = client_config(&pki_in(theirs.path()).ca, Resumption::Off).expect("client");
    let refused = handshake(&other, &server, "127.0.0.1").expect_err("unknown CA");
    assert!(
        matches!(refused, rustls::Error::InvalidCertificate(_)),
        "{refused:?}"
    );
}

#[test]
fn the_serve_flags_name_the_three_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = pki_in(dir.path());
    let path = |p: &Path| p.display().to_string();
    assert_eq!(
        pki.serve_args(),
        [
            "--tls-cert".to_owned(),
            path(&pki.cert),
            "--tls-key".to_owned(),
            path(&pki.key),
            "--tls-ca".to_owned(),
            path(&pki.ca),
        ]
    );
    for file in [&pki.ca, &pki.cert, &pki.key] {
        assert!(file.starts_with(dir.path()), "{}", file.display());
    }
}

#[test]
fn a_ca_file_without_a_certificate_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = pki_in(dir.path());
    // The key file is PEM, but holds no certificate.
    let e = client_config(&pki.key, Resumption::On).expect_err("no certificate");
    assert!(e.to_string().contains("node.key"), "{e}");
    let missing = dir.path().join("missing.crt");
    let e = client_config(&missing, Resumption::On).expect_err("no file");
    assert!(e.to_string().contains("missing.crt"), "{e}");
}

/// Regression guard: a TLS server may close the socket after a `Connection: close` answer
/// without sending close_notify; the probe must still read the answer.
#[test]
fn the_probe_reads_an_answer_over_tls_without_close_notify() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = pki_in(dir.path());
    let server = server_config(&pki);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().expect("accept");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut tls = StreamOwned::new(ServerConnection::new(server).expect("server"), tcp);
        let mut request = Vec::new();
        let mut buf = [0; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tls.read(&mut buf).expect("request");
            assert!(n > 0, "the request ended early");
            request.extend_from_slice(&buf[..n]);
        }
        tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nready")
            .expect("answer");
        tls.flush().expect("flush");
        // Dropped without close_notify: the TCP connection just ends.
        String::from_utf8(request).expect("ASCII request")
    });
    let client = client_config(&pki.ca, Resumption::Off).expect("client");
    let response =
        probe::get_tls(addr, "/readyz", Duration::from_secs(10), &client).expect("answered");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ready");
    let request = serving.join().expect("server thread");
    assert!(request.starts_with("GET /readyz HTTP/1.1\r\n"), "{request}");
}
