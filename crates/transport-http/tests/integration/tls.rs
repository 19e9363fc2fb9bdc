//! TLS: a pool fetching from a peer over TLS, mutual TLS refusing callers without a good
//! certificate, plain HTTP on a TLS port, and handshakes that stall. Certificates are made
//! here, with rcgen.

use std::sync::Arc;
use std::time::Duration;

use geecache_group::{Group, Loaded, Registry, getter_fn};
use geecache_transport_http::{
    HandshakeFailure, HttpPool, RouterConfig, ServeConfig, router, serve_with,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::support::PATIENT;

/// A certificate authority of a test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key.
struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Leaf {
    fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    /// A certificate for `127.0.0.1` (and `localhost`), valid now unless `expired`.
    fn leaf(&self, expired: bool) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        Arc::new(roots)
    }
}

fn server_config(ca: &Ca, leaf: &Leaf, client_auth: bool) -> Arc<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder();
    let builder = if client_auth {
        builder
            .with_client_cert_verifier(WebPkiClientVerifier::builder(ca.roots()).build().unwrap())
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(
        builder
            .with_single_cert(leaf.chain.clone(), leaf.key())
            .unwrap(),
    )
}

fn client_config(ca: &Ca, leaf: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder().with_root_certificates(ca.roots());
    Arc::new(match leaf {
        Some(leaf) => builder
            .with_client_auth_cert(leaf.chain.clone(), leaf.key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

/// A node serving group `g` over TLS, whose loader answers `from-{name}`; the failed
/// handshakes arrive on the returned channel.
struct TlsNode {
    url: String,
    failures: mpsc::UnboundedReceiver<HandshakeFailure>,
    _stop: oneshot::Sender<()>,
}

async fn tls_node(serving: ServeConfig) -> TlsNode {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let registry = Registry::new();
    Group::builder("g")
        .register(&registry)
        .getter(getter_fn(|key: String| async move {
            Ok(Loaded::from(format!("from-server:{key}")))
        }))
        .build()
        .unwrap();
    let (tx, failures) = mpsc::unbounded_channel();
    let serving = serving.on_handshake_failure(Arc::new(move |reason| {
        let _ = tx.send(reason);
    }));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_with(
        listener,
        router(RouterConfig::new(registry)),
        serving,
        async move {
            let _ = stopped.await;
        },
    ));
    TlsNode {
        url,
        failures,
        _stop: stop,
    }
}

impl TlsNode {
    async fn next_failure(&mut self) -> HandshakeFailure {
        tokio::time::timeout(PATIENT, self.failures.recv())
            .await
            .expect("a handshake failed in time")
            .expect("the server is running")
    }
}

/// A group on a client node whose pool dials `server` with `tls`, and a key `server` owns.
fn client_of(server: &str, tls: Arc<rustls::ClientConfig>) -> (Arc<Group>, String) {
    let pool = HttpPool::builder("https://127.0.0.1:1")
        .tls(tls)
        .build()
        .unwrap();
    pool.set_peers(["https://127.0.0.1:1", server]).unwrap();
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|key| pool.owner_of(key).as_deref() == Some(server))
        .unwrap();
    let group = Group::builder("g")
        .peers(pool)
        .getter(getter_fn(|key: String| async move {
            Ok(Loaded::from(format!("from-client:{key}")))
        }))
        .build()
        .unwrap();
    (group, key)
}

#[tokio::test]
async fn a_pool_fetches_from_a_tls_peer() {
    let ca = Ca::new("cluster CA");
    let server = ca.leaf(false);
    let node = tls_node(ServeConfig::new().tls(server_config(&ca, &server, false))).await;
    let (group, key) = client_of(&node.url, client_config(&ca, None));
    let value = group.get(&key).await.unwrap();
    assert_eq!(value.as_ref(), format!("from-server:{key}").as_bytes());
}

#[tokio::test]
async fn mutual_tls_takes_a_certificate_of_the_ca() {
    let ca = Ca::new("cluster CA");
    let (server, client) = (ca.leaf(false), ca.leaf(false));
    let node = tls_node(ServeConfig::new().tls(server_config(&ca, &server, true))).await;
    let (group, key) = client_of(&node.url, client_config(&ca, Some(&client)));
    let value = group.get(&key).await.unwrap();
    assert_eq!(value.as_ref(), format!("from-server:{key}").as_bytes());
}

#[tokio::test]
async fn mutual_tls_refuses_a_peer_without_a_certificate_and_counts_it() {
    let ca = Ca::new("cluster CA");
    let server = ca.leaf(false);
    let mut node = tls_node(ServeConfig::new().tls(server_config(&ca, &server, true))).await;
    let (group, key) = client_of(&node.url, client_config(&ca, None));
    // The peer refuses: the group loads the key itself.
    let value = group.get(&key).await.unwrap();
    assert_eq!(value.as_ref(), format!("from-client:{key}").as_bytes());
    assert_eq!(node.next_failure().await, HandshakeFailure::NoClientCert);
}

#[tokio::test]
async fn mutual_tls_refuses_a_certificate_of_another_ca() {
    let (ca, other) = (Ca::new("cluster CA"), Ca::new("another CA"));
    let server = ca.leaf(false);
    let stranger = other.leaf(false);
    let mut node = tls_node(ServeConfig::new().tls(server_config(&ca, &server, true))).await;
    let (group, key) = client_of(&node.url, client_config(&ca, Some(&stranger)));
    let value = group.get(&key).await.unwrap();
    assert_eq!(value.as_ref(), format!("from-client:{key}").as_bytes());
    assert_eq!(node.next_failure().await, HandshakeFailure::UnknownCa);
}

#[tokio::test]
async fn an_expired_client_certificate_is_refused_as_expired() {
    let ca = Ca::new("cluster CA");
    let (server, expired) = (ca.leaf(false), ca.leaf(true));
    let mut node = tls_node(ServeConfig::new().tls(server_config(&ca, &server, true))).await;
    let (group, key) = client_of(&node.url, client_config(&ca, Some(&expired)));
    let value = group.get(&key).await.unwrap();
    assert_eq!(value.as_ref(), format!("from-client:{key}").as_bytes());
    assert_eq!(node.next_failure().await, HandshakeFailure::Expired);
}

#[tokio::test]
async fn a_server_certificate_of_another_ca_is_refused_by_the_pool() {
    let (ca, other) = (Ca::new("cluster CA"), Ca::new("another CA"));
    let server = other.leaf(false);
    let mut node = tls_node(ServeConfig::new().tls(server_config(&other, &server, false))).await;
    let (group, key) = client_of(&node.url, client_config(&ca, None));
    let value = group.get(&key).await.unwrap();
    assert_eq!(value.as_ref(), format!("from-client:{key}").as_bytes());
    // The client said why with an alert, and the server counts the refusal.
    assert_eq!(node.next_failure().await, HandshakeFailure::UnknownCa);
}

#[tokio::test]
async fn plain_http_on_a_tls_port_is_answered_400_and_counted() {
    let ca = Ca::new("cluster CA");
    let server = ca.leaf(false);
    let mut node = tls_node(ServeConfig::new().tls(server_config(&ca, &server, false))).await;
    let mut socket = TcpStream::connect(node.url.trim_start_matches("https://"))
        .await
        .unwrap();
    socket
        .write_all(b"GET /api/g/x HTTP/1.1\r\nHost: node\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(
        answer.contains("x-geecache-error: tls-required"),
        "{answer}"
    );
    assert!(answer.ends_with("use https:// to reach it\n"), "{answer}");
    assert_eq!(node.next_failure().await, HandshakeFailure::Plaintext);
}

#[tokio::test]
async fn a_stalled_handshake_is_closed_and_holds_no_slot_meanwhile_beyond_the_limit() {
    let ca = Ca::new("cluster CA");
    let server = ca.leaf(false);
    let mut node = tls_node(
        ServeConfig::new()
            .max_connections(1)
            .tls(server_config(&ca, &server, false))
            .handshake_timeout(Duration::from_secs(2)),
    )
    .await;
    let address = node.url.trim_start_matches("https://").to_owned();
    // Half a ClientHello's record header, then nothing.
    let mut stalled = TcpStream::connect(&address).await.unwrap();
    stalled.write_all(&[0x16, 0x03]).await.unwrap();
    // The one slot is the stalled connection's: another is refused at once.
    let mut refused = TcpStream::connect(&address).await.unwrap();
    let mut answer = String::new();
    refused.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    // The handshake timeout closes the stalled connection and counts it.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(PATIENT, stalled.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    assert_eq!(node.next_failure().await, HandshakeFailure::Timeout);
}
