//! `serve` over TLS: a cluster with mutual TLS on either transport, callers refused in the
//! handshake and counted, plain HTTP on the TLS port, bad PEM at start and at reload, and a
//! certificate rotated on SIGHUP while an open connection keeps working. Certificates are
//! made in the test, with rcgen.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::support::{
    DEADLINE, Response, Running, free_ports, geecache, metric, parse_metrics, parse_response, run,
};

/// A CA of a test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate for `127.0.0.1` and its key, as DER and PEM.
struct Leaf {
    der: CertificateDer<'static>,
    key_der: Vec<u8>,
    cert_pem: String,
    key_pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn leaf(&self) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        Leaf {
            der: cert.der().clone(),
            key_der: key.serialize_der(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A client trusting this CA, showing `leaf` if given.
    fn client(&self, leaf: Option<&Leaf>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let builder = ClientConfig::builder().with_root_certificates(roots);
        Arc::new(match leaf {
            Some(leaf) => builder
                .with_client_auth_cert(
                    vec![leaf.der.clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        })
    }
}

/// Where a node's TLS files are.
struct Files {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl Files {
    fn write(dir: &Path, name: &str, ca: &Ca, leaf: &Leaf) -> Files {
        let files = Files {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
            ca: dir.join(format!("{name}-ca.crt")),
        };
        files.replace(ca, leaf);
        files
    }

    fn replace(&self, ca: &Ca, leaf: &Leaf) {
        std::fs::write(&self.cert, &leaf.cert_pem).unwrap();
        std::fs::write(&self.key, &leaf.key_pem).unwrap();
        std::fs::write(&self.ca, ca.pem()).unwrap();
    }

    fn args(&self) -> Vec<String> {
        let path = |p: &PathBuf| p.display().to_string();
        vec![
            "--tls-cert".into(),
            path(&self.cert),
            "--tls-key".into(),
            path(&self.key),
            "--tls-ca".into(),
            path(&self.ca),
        ]
    }
}

/// A TLS connection to `addr`, kept open for several requests.
struct Session(StreamOwned<ClientConnection, TcpStream>);

impl Session {
    fn open(addr: SocketAddr, client: &Arc<ClientConfig>) -> std::io::Result<Session> {
        let tcp = TcpStream::connect_timeout(&addr, DEADLINE)?;
        tcp.set_read_timeout(Some(DEADLINE))?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let connection =
            ClientConnection::new(Arc::clone(client), name).map_err(std::io::Error::other)?;
        let mut stream = StreamOwned::new(connection, tcp);
        // The handshake, and with TLS 1.3 the server's verdict on our certificate, come with
        // the first exchange; `complete_io` drives the handshake itself now.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Session(stream))
    }

    /// One request on this connection; `close` asks the server to close it after answering.
    fn request(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        close: bool,
    ) -> std::io::Result<Response> {
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        if close {
            head.push_str("Connection: close\r\n");
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        self.0.write_all(head.as_bytes())?;
        self.0.flush()?;
        let raw = if close {
            let mut raw = Vec::new();
            // A server that closes without close_notify is still a complete answer here.
            match self.0.read_to_end(&mut raw) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
                Err(e) => return Err(e),
            }
            raw
        } else {
            self.read_one()?
        };
        parse_response(&raw)
    }

    /// Reads one response with a `content-length` body.
    fn read_one(&mut self) -> std::io::Result<Vec<u8>> {
        let mut raw = Vec::new();
        let mut byte = [0_u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            self.0.read_exact(&mut byte)?;
            raw.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| std::io::Error::other("no content-length"))?;
        let mut body = vec![0_u8; length];
        self.0.read_exact(&mut body)?;
        raw.extend_from_slice(&body);
        Ok(raw)
    }
}

/// One request on a new TLS connection.
fn tls_get(
    addr: SocketAddr,
    client: &Arc<ClientConfig>,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    Session::open(addr, client)?.request(path, headers, true)
}

/// A `serve` process over TLS.
struct TlsNode {
    process: Running,
    addr: SocketAddr,
}

impl TlsNode {
    /// Starts `cmd` and waits until `/readyz` answers 200 to `client`.
    fn start(cmd: &mut std::process::Command, client: &Arc<ClientConfig>) -> TlsNode {
        let mut process = Running::spawn(cmd);
        let addr = process.wait_for_line("listening on https://");
        let node = TlsNode {
            process,
            addr: addr.parse().unwrap(),
        };
        node.until(client, |r| r.is_ok_and(|r| r.status == 200), "ready");
        node
    }

    /// Polls `/readyz` on new connections until `done` holds for the outcome (bounded).
    fn until(
        &self,
        client: &Arc<ClientConfig>,
        done: impl Fn(std::io::Result<Response>) -> bool,
        what: &str,
    ) {
        let end = Instant::now() + DEADLINE;
        while !done(tls_get(self.addr, client, "/readyz", &[])) {
            assert!(
                Instant::now() < end,
                "the node was never {what}; stderr:\n{}",
                self.process.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(10)); // polling interval
        }
    }

    fn metrics(&self, client: &Arc<ClientConfig>) -> prometheus_parse::Scrape {
        let answer = tls_get(self.addr, client, "/metrics", &[]).unwrap();
        parse_metrics(&answer.text())
    }
}

fn serve(port: u16, files: &Files) -> std::process::Command {
    let mut cmd = geecache();
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(files.args())
        .args(["--group", "scores=demo"]);
    cmd
}

/// Two nodes with mutual TLS, peers over `transport`: every key loaded once, at its owner.
fn mutual_tls_cluster_loads_each_key_once(transport: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("cluster CA");
    let ports = free_ports(2);
    let peers: Vec<String> = ports
        .iter()
        .map(|p| format!("https://127.0.0.1:{p}"))
        .collect();
    let operator = ca.leaf();
    let client = ca.client(Some(&operator));
    let nodes: Vec<TlsNode> = (ports.iter().enumerate())
        .map(|(i, port)| {
            let files = Files::write(dir.path(), &format!("node{i}"), &ca, &ca.leaf());
            TlsNode::start(
                serve(*port, &files)
                    .args(["--peers", &peers.join(","), "--transport", transport])
                    .args(["--tls-client-auth", "required"]),
                &client,
            )
        })
        .collect();
    let keys: Vec<String> = (0..30).map(|i| format!("player-{i:06}")).collect();
    for key in &keys {
        for node in &nodes {
            let r = tls_get(node.addr, &client, &format!("/api/scores/{key}"), &[]).unwrap();
            assert_eq!(r.status, 200, "{key}: {}", r.text());
        }
    }
    let scrapes: Vec<_> = nodes.iter().map(|n| n.metrics(&client)).collect();
    let g = [("group", "scores")];
    let sum = |name: &str| -> f64 { scrapes.iter().map(|s| metric(s, name, &g).unwrap()).sum() };
    assert_eq!(
        sum("geecache_group_local_loads_total"),
        keys.len() as f64,
        "each key loaded once"
    );
    assert_eq!(sum("geecache_group_peer_errors_total"), 0.0);
    assert!(sum("geecache_group_peer_loads_total") > 0.0);
    for s in &scrapes {
        let failed: f64 = (s.samples.iter())
            .filter(|m| m.metric == "geecache_tls_handshake_failures_total")
            .map(|m| match m.value {
                prometheus_parse::Value::Counter(v) => v,
                _ => 0.0,
            })
            .sum();
        assert_eq!(failed, 0.0, "no handshake failed between peers");
    }
}

#[test]
fn a_mutual_tls_cluster_over_http_loads_each_key_once() {
    mutual_tls_cluster_loads_each_key_once("http");
}

#[test]
fn a_mutual_tls_cluster_over_grpc_loads_each_key_once() {
    mutual_tls_cluster_loads_each_key_once("grpc");
}

#[test]
fn mutual_tls_refuses_callers_without_a_certificate_or_of_another_ca_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, other) = (Ca::new("cluster CA"), Ca::new("another CA"));
    let files = Files::write(dir.path(), "node", &ca, &ca.leaf());
    let good = ca.client(Some(&ca.leaf()));
    let node = TlsNode::start(
        serve(0, &files).args(["--tls-client-auth", "required"]),
        &good,
    );
    let anonymous = ca.client(None);
    assert!(tls_get(node.addr, &anonymous, "/api/scores/player-000001", &[]).is_err());
    let stranger = ca.client(Some(&other.leaf()));
    assert!(tls_get(node.addr, &stranger, "/api/scores/player-000001", &[]).is_err());

    let scrape = node.metrics(&good);
    let reason = |r: &str| {
        metric(
            &scrape,
            "geecache_tls_handshake_failures_total",
            &[("reason", r)],
        )
    };
    assert_eq!(reason("no_client_cert"), Some(1.0));
    assert_eq!(reason("unknown_ca"), Some(1.0));
    assert_eq!(reason("expired"), Some(0.0), "every reason has a series");
}

#[test]
fn optional_client_auth_lets_api_clients_use_the_token_instead() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("cluster CA");
    let files = Files::write(dir.path(), "node", &ca, &ca.leaf());
    let anonymous = ca.client(None);
    let node = TlsNode::start(
        serve(0, &files).args(["--tls-client-auth", "optional", "--api-token", "api-secret"]),
        &anonymous,
    );
    let path = "/api/scores/player-000001";
    assert_eq!(
        tls_get(node.addr, &anonymous, path, &[]).unwrap().status,
        401
    );
    let auth = [("Authorization", "Bearer api-secret")];
    assert_eq!(
        tls_get(node.addr, &anonymous, path, &auth).unwrap().status,
        200
    );
}

#[test]
fn plain_http_on_the_tls_port_is_told_to_use_https() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("cluster CA");
    let files = Files::write(dir.path(), "node", &ca, &ca.leaf());
    let client = ca.client(None);
    let node = TlsNode::start(&mut serve(0, &files), &client);
    let answer = crate::support::request(node.addr, "GET", "/api/scores/player-000001", &[]);
    assert_eq!(answer.status, 400);
    assert_eq!(answer.headers["x-geecache-error"], "tls-required");
    assert!(answer.text().contains("use https://"), "{}", answer.text());
    let scrape = node.metrics(&client);
    assert_eq!(
        metric(
            &scrape,
            "geecache_tls_handshake_failures_total",
            &[("reason", "plaintext")]
        ),
        Some(1.0)
    );
}

#[test]
fn a_malformed_pem_at_start_stops_the_node_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("cluster CA");
    let files = Files::write(dir.path(), "node", &ca, &ca.leaf());
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let out = run(&mut serve(0, &files));
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("config error: certificate "),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&files.cert.display().to_string()),
        "{}",
        out.stderr
    );
}

#[test]
fn a_rotation_on_sighup_reaches_new_connections_while_an_open_one_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let files = Files::write(dir.path(), "node", &old_ca, &old_ca.leaf());
    let (old_client, new_client) = (old_ca.client(None), new_ca.client(None));
    let mut node = TlsNode::start(&mut serve(0, &files), &old_client);
    let mut open = Session::open(node.addr, &old_client).unwrap();
    let path = "/api/scores/player-000001";
    assert_eq!(open.request(path, &[], false).unwrap().status, 200);

    // A bad file first: the reload fails, says why, and the old certificate stays.
    std::fs::write(&files.key, "not a key\n").unwrap();
    node.process.hangup();
    let end = Instant::now() + DEADLINE;
    while !node.process.stderr_text().contains("TLS reload failed") {
        assert!(Instant::now() < end, "no reload failure logged");
        std::thread::sleep(Duration::from_millis(10)); // polling interval
    }
    let log = node.process.stderr_text();
    assert!(log.contains(&files.key.display().to_string()), "{log}");
    assert_eq!(
        tls_get(node.addr, &old_client, path, &[]).unwrap().status,
        200
    );

    // Then a new certificate from a new CA.
    files.replace(&new_ca, &new_ca.leaf());
    node.process.hangup();
    node.until(&new_client, |r| r.is_ok_and(|r| r.status == 200), "rotated");
    // A client that trusts the old CA only, with no session to resume (a resumed session
    // skips the certificate), refuses the new one.
    assert!(
        tls_get(node.addr, &old_ca.client(None), path, &[]).is_err(),
        "new connections get the new certificate only"
    );
    // The connection opened before still works, on the session it negotiated.
    assert_eq!(open.request(path, &[], false).unwrap().status, 200);
    assert!(
        node.process.try_exit().is_none(),
        "SIGHUP reloads; it does not stop"
    );
}

#[test]
fn get_fetches_over_mutual_tls_and_refuses_https_without_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("cluster CA");
    let files = Files::write(dir.path(), "node", &ca, &ca.leaf());
    let client = Files::write(dir.path(), "client", &ca, &ca.leaf());
    let node = TlsNode::start(
        serve(0, &files).args(["--tls-client-auth", "required"]),
        &ca.client(Some(&ca.leaf())),
    );
    let url = format!("https://{}", node.addr);
    let path = |p: &PathBuf| p.display().to_string();
    let out = run(geecache()
        .args(["get", &url, "scores", "player-000001"])
        .args([
            "--tls-ca",
            &path(&client.ca),
            "--tls-cert",
            &path(&client.cert),
            "--tls-key",
            &path(&client.key),
        ]));
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("player-000001"), "{}", out.stdout);

    let out = run(geecache().args(["get", &url, "scores", "player-000001"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("give --tls-ca FILE"), "{}", out.stderr);
}

#[test]
fn the_demo_runs_its_three_nodes_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("demo CA");
    let files = Files::write(dir.path(), "demo", &ca, &ca.leaf());
    let out = run(geecache()
        .args(["demo", "--keys", "200", "--requests", "500"])
        .args(["--failover-requests", "100", "--load-delay", "1ms"])
        .args(files.args()));
    assert_eq!(out.status.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("listening on https://"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("500 succeeded, 0 failed"),
        "{}",
        out.stdout
    );
}
