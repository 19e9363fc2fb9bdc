//! The HTTP client the binary's own requests use: hyper-util's pooled client, plus a bounded
//! GET and POST.
//!
//! The transport crate already links hyper and hyper-util, so the origin source, the `get`
//! command and the demo's load generator use them too rather than pulling in a second HTTP
//! stack (reqwest) for a few plain requests. (Peer traffic goes through the transport's own
//! per-peer connections.)

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A keep-alive client for `http://` and, given a TLS configuration, `https://` URLs.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A pooled client for `http://` URLs. Connections are reused across requests and tasks. An
/// `https://` URL fails its handshake: no CA is trusted (the `get` command refuses such a URL
/// without `--tls-ca` before it gets here).
pub(crate) fn new_client() -> HttpClient {
    let trusts_nothing = rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    new_tls_client(Arc::new(trusts_nothing))
}

/// A pooled client that speaks `https://` with `tls` (and `http://` as before).
pub(crate) fn new_tls_client(tls: Arc<rustls::ClientConfig>) -> HttpClient {
    let mut connector = HttpConnector::new();
    // Small requests on a hot path: Nagle's delay would add latency for no gain.
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    // The TLS layer above takes `https://` URLs; this one must let them through.
    connector.enforce_http(false);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// A response whose body was read completely.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// The status code.
    pub(crate) status: StatusCode,
    /// A geecache node's error kind (`x-geecache-error`), e.g. `not-found`.
    pub(crate) kind: Option<String>,
    /// The body.
    pub(crate) body: Bytes,
}

/// Why a request produced no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The URL does not parse.
    #[error("invalid URL {0:?}")]
    InvalidUrl(String),
    /// Request and body took longer than the deadline.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// No connection could be made; the text says why, e.g. `connection refused`.
    #[error("{0}")]
    Connect(String),
    /// Sending the request or reading the response's head failed.
    #[error("request failed: {0}")]
    Request(#[source] hyper_util::client::legacy::Error),
    /// The body was longer than allowed.
    #[error("response body is larger than {0} bytes")]
    TooLarge(usize),
    /// The body could not be read.
    #[error("reading the response body failed: {0}")]
    Body(String),
    /// A TLS file given for the client could not be used; the text names it.
    #[error("{0}")]
    Tls(String),
}

/// GETs `url`, reading at most `max_body` bytes of body, all within `timeout`.
pub(crate) async fn get(
    client: &HttpClient,
    url: &str,
    bearer: Option<&str>,
    timeout: Duration,
    max_body: usize,
) -> Result<Fetched, FetchError> {
    send(
        client,
        Method::GET,
        url,
        Bytes::new(),
        bearer,
        timeout,
        max_body,
    )
    .await
}

/// POSTs `body` (JSON) to `url`, reading at most `max_body` bytes of answer, all within
/// `timeout`.
pub(crate) async fn post_json(
    client: &HttpClient,
    url: &str,
    body: Bytes,
    bearer: Option<&str>,
    timeout: Duration,
    max_body: usize,
) -> Result<Fetched, FetchError> {
    send(client, Method::POST, url, body, bearer, timeout, max_body).await
}

async fn send(
    client: &HttpClient,
    method: Method,
    url: &str,
    body: Bytes,
    bearer: Option<&str>,
    timeout: Duration,
    max_body: usize,
) -> Result<Fetched, FetchError> {
    let invalid = || FetchError::InvalidUrl(url.to_owned());
    let uri: Uri = url.parse().map_err(|_| invalid())?;
    let mut request = Request::builder().method(method.clone()).uri(uri);
    if method == Method::POST {
        request = request.header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Some(token) = bearer {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| invalid())?;
        request = request.header(header::AUTHORIZATION, value);
    }
    let request = request.body(Full::new(body)).map_err(|_| invalid())?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| {
            if e.is_connect() {
                FetchError::Connect(connect_failure(&e))
            } else {
                FetchError::Request(e)
            }
        })?;
        let status = response.status();
        let kind = response
            .headers()
            .get(geecache_transport_http::ERROR_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = Limited::new(response.into_body(), max_body)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    FetchError::TooLarge(max_body)
                } else {
                    FetchError::Body(e.to_string())
                }
            })?
            .to_bytes();
        Ok(Fetched { status, kind, body })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(FetchError::Timeout(timeout)))
}

/// Why a connection failed, in a person's words: hyper-util says only "client error
/// (Connect)" and keeps the reason, an I/O error, further down its chain of sources.
fn connect_failure(error: &(dyn std::error::Error + 'static)) -> String {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
                std::io::ErrorKind::TimedOut => "connection timed out".to_owned(),
                _ => format!("cannot connect: {io}"),
            };
        }
        source = e.source();
    }
    format!("cannot connect: {error}")
}
