//! The peer client: requests to one peer over its keep-alive connections.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use geecache_byteview::ByteView;
use geecache_group::{
    BoxFuture, Loaded, ObservedFetch, PeerError, PeerGetter, PeerObserver, PeerOutcome, Rejected,
    RemoveMode,
};
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use prost::Message;

use crate::auth::Token;
use crate::budget::{Budget, Claim};
use crate::conn::Connections;
use crate::kind::ErrorKind;
use crate::proto::{GetResponse, HandOver, HandedValue};
mod batch;
mod write;

use crate::{ERROR_HEADER, PEEK_HEADER, PROTOBUF, REMOVED_HEADER, UNCONFIRMED_HEADER, names, path};

/// How much of an error answer's body is read for its message. Error bodies are short plain
/// text; a peer that sends more is not going to say anything useful in the rest.
const ERROR_BODY_LIMIT: usize = 4096;
/// How much of that message is kept in the error.
const ERROR_MESSAGE_CHARS: usize = 200;
/// Idle connections kept per peer: enough for the requests a busy node has in flight to one
/// peer at once, so a burst does not end in a wave of reconnects.
const MAX_IDLE_PER_PEER: usize = 64;
/// How long an idle connection is kept before a request would rather open a new one.
///
/// Shorter than the time after which a geecache server closes a connection that sends nothing
/// ([`crate::serve::HEADER_READ_TIMEOUT`], 30 s): a request is then never sent on a connection
/// just as the server closes it, which would make a healthy peer look failed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
const _: () = assert!(IDLE_TIMEOUT.as_secs() < crate::serve::HEADER_READ_TIMEOUT.as_secs());

/// What every peer of a pool shares: the request settings.
///
/// No timeout: the group bounds every peer call with its own peer timeout and drops the
/// request when it passes (which closes the connection). One owner of the deadline means the
/// binary has no two settings to keep equal.
pub(crate) struct Transport {
    max_response_bytes: usize,
    /// The bytes of answers being received, over every peer of the pool.
    budget: Arc<Budget>,
    token: Option<Token>,
    observer: Option<Arc<dyn PeerObserver>>,
    /// The TLS client configuration (ALPN `http/1.1`); `None`: plain HTTP.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Transport {
    pub(crate) fn new(
        max_response_bytes: usize,
        budget: Arc<Budget>,
        token: Option<Token>,
        observer: Option<Arc<dyn PeerObserver>>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Transport {
        Transport {
            max_response_bytes,
            budget,
            token,
            observer,
            tls,
        }
    }

    /// Whether peers are dialled over TLS.
    pub(crate) fn tls(&self) -> bool {
        self.tls.is_some()
    }

    pub(crate) fn bytes_in_flight(&self) -> usize {
        self.budget.used()
    }
}

/// One peer, named by its base URL, and its open connections.
///
/// A pool keeps the `HttpPeer` of every member that stays in the list when the list is
/// replaced, so its connections outlive the change.
pub(crate) struct HttpPeer {
    url: String,
    /// Whether to peek at all: cleared when the peer answers a peek without saying it was one
    /// (a Go node or an older geecache serves it as a full get), so it is asked at most once.
    peeks: AtomicBool,
    /// Whether to send batch gets: cleared when the peer shows it does not know them (a Go
    /// node, an older geecache), which is then asked key by key.
    batches: AtomicBool,
    /// The base path; a request's path is it, then the encoded group and key.
    base_path: String,
    /// The `Host` header: the URL's `host[:port]`.
    host: HeaderValue,
    connections: Connections,
    transport: Arc<Transport>,
}

impl HttpPeer {
    /// A peer at `url`, which the pool has checked: `http://host[:port]`, nothing after.
    pub(crate) fn new(
        url: String,
        base_path: &str,
        transport: Arc<Transport>,
    ) -> Result<HttpPeer, crate::Error> {
        let invalid = |reason| crate::Error::InvalidUrl {
            url: url.clone(),
            reason,
        };
        let (authority, default_port) = match (url.strip_prefix("http://"), &transport.tls) {
            (Some(authority), None) => (authority, 80),
            _ => match (url.strip_prefix("https://"), &transport.tls) {
                (Some(authority), Some(_)) => (authority, 443),
                _ => return Err(invalid("scheme does not match the pool's (TLS or not)")),
            },
        };
        let host = HeaderValue::from_str(authority)
            .map_err(|_| invalid("host holds a character that is not allowed"))?;
        let mut connections = Connections::new(
            dial_address(authority, default_port),
            MAX_IDLE_PER_PEER,
            IDLE_TIMEOUT,
        );
        if let Some(tls) = &transport.tls {
            let name = crate::tls::server_name(authority).map_err(invalid)?;
            connections = connections.with_tls(Arc::clone(tls), name);
        }
        Ok(HttpPeer {
            peeks: AtomicBool::new(true),
            batches: AtomicBool::new(true),
            connections,
            url,
            base_path: base_path.to_owned(),
            host,
            transport,
        })
    }

    async fn fetch(&self, group: &str, key: &str) -> Result<Loaded, PeerError> {
        let Some(observer) = &self.transport.observer else {
            return self.fetch_unobserved(group, key).await;
        };
        let watch = ObservedFetch::start(observer.as_ref(), &self.url);
        let result = self.fetch_unobserved(group, key).await;
        watch.finish(PeerOutcome::of(&result));
        result
    }

    async fn fetch_unobserved(&self, group: &str, key: &str) -> Result<Loaded, PeerError> {
        let request = self.request(Method::GET, group, key, Mark::Get)?;
        let (parts, body) = self
            .exchange(request, self.transport.max_response_bytes)
            .await?;
        value_of(&parts, body)
    }

    /// Asks for `key` from the peer's cache only; `None` when it holds no copy.
    async fn peek(&self, group: &str, key: &str) -> Result<Option<Loaded>, PeerError> {
        if !self.peeks.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let request = self.request(Method::GET, group, key, Mark::Peek)?;
        let reply = self
            .exchange_any(request, self.transport.max_response_bytes)
            .await?;
        let (parts, body) = match reply {
            Reply::Answered(parts, body) => (parts, body),
            Reply::Refused(parts, _) if kind_of(&parts) == Some(ErrorKind::NotCached) => {
                return Ok(None);
            }
            Reply::Refused(parts, message) => return Err(status_error(&parts, message)),
        };
        if parts.headers.get(PEEK_HEADER).is_none() {
            // A full get, answered by a node that does not know the peek: the value is good,
            // but the node may have loaded it, so it is not asked to peek again.
            self.peeks.store(false, Ordering::Relaxed);
            tracing::info!(peer = %self.url, "peer does not answer peeks; not peeking it again");
        }
        value_of(&parts, body).map(Some)
    }
}

/// The value in a peer's 200 answer.
fn value_of(parts: &http::response::Parts, body: Bytes) -> Result<Loaded, PeerError> {
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // A 200 that is not protobuf is a proxy's page or a confused server, not a value. Checking
    // the type matters because protobuf decoding accepts many byte strings: most garbage
    // decodes as a message of unknown fields.
    if !content_type
        .get(..PROTOBUF.len())
        .is_some_and(|t| t.eq_ignore_ascii_case(PROTOBUF))
    {
        return Err(PeerError::Malformed(format!(
            "content type {content_type:?} is not {PROTOBUF}"
        )));
    }
    decode_answer(body)
}

impl HttpPeer {
    /// Sends a DELETE; returns the peers the receiver could not reach, if it fanned out.
    pub(crate) async fn delete(
        &self,
        group: &str,
        key: &str,
        mode: RemoveMode,
    ) -> Result<Vec<String>, PeerError> {
        let request = self.request(Method::DELETE, group, key, Mark::Remove(mode))?;
        let (parts, _) = self.exchange(request, ERROR_BODY_LIMIT).await?;
        // Only a geecache node's own confirmation counts: a Go groupcache node serves the
        // DELETE as a GET and answers 200, having removed nothing (and the asking node must
        // then tell the others itself).
        if parts
            .headers
            .get(REMOVED_HEADER)
            .is_none_or(|v| v.as_bytes() != b"1")
        {
            return Err(PeerError::Malformed(
                "the answer to a DELETE does not confirm a removal (not a geecache node?)".into(),
            ));
        }
        Ok(unconfirmed_of(&parts))
    }

    /// Sends a PUT with `value`: the receiver, the key's next owner, stores it as its own.
    /// Gives the peer `values` in one `POST {base}{group}/`; how many it took.
    pub(crate) async fn hand_over(
        &self,
        group: &str,
        values: Vec<(String, Loaded)>,
    ) -> Result<usize, PeerError> {
        // Go nodes serve every method as a GET: never hand them anything.
        if self.base_path == crate::GROUPCACHE_BASE_PATH || values.is_empty() {
            return Ok(0);
        }
        let now = SystemTime::now();
        let message = HandOver {
            values: (values.into_iter())
                .map(|(key, value)| {
                    let ttl = value.ttl();
                    HandedValue::with_ttl(key, value.into_value(), ttl, now)
                })
                .collect(),
        };
        let body = Bytes::from(message.encode_to_vec());
        let url = path::peer_url(&self.base_path, group, "");
        let mut request = self.request_with(Method::POST, url, Mark::Get, body)?;
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
        match self.exchange_any(request, ERROR_BODY_LIMIT).await? {
            Reply::Answered(parts, _) => {
                let taken = parts.headers.get(TAKEN).and_then(|v| v.to_str().ok());
                let taken = taken.and_then(|v| v.parse::<usize>().ok());
                taken.ok_or_else(|| {
                    PeerError::Malformed("hand-over answer without a count of values taken".into())
                })
            }
            // An older node without the route: it cannot take values, and is not failing.
            Reply::Refused(parts, _) if parts.status == http::StatusCode::METHOD_NOT_ALLOWED => {
                Ok(0)
            }
            Reply::Refused(parts, message) => Err(status_error(&parts, message)),
        }
    }

    fn request(
        &self,
        method: Method,
        group: &str,
        key: &str,
        mark: Mark,
    ) -> Result<Request<Full<Bytes>>, PeerError> {
        let url = path::peer_url(&self.base_path, group, key);
        self.request_with(method, url, mark, Bytes::new())
    }

    /// A request to `url`, a path under the peer's base path, with `body`.
    fn request_with(
        &self,
        method: Method,
        url: String,
        mark: Mark,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, PeerError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(url)
            .header(HOST, self.host.clone())
            // Marks the request as coming from a peer: the receiver loads locally and never
            // forwards it again, even if its ring says someone else owns the key.
            .header(names::PEER, HeaderValue::from_static("1"));
        match mark {
            Mark::Peek => builder = builder.header(names::PEEK, HeaderValue::from_static("1")),
            Mark::Remove(RemoveMode::Owner) => {
                builder = builder.header(names::FANOUT, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        if let Some(token) = &self.transport.token {
            builder = builder.header(AUTHORIZATION, token.header().clone());
        }
        // Group and key are percent-encoded and the prefix was validated, so the URL always
        // parses; an error here would be a bug, reported rather than panicked on.
        builder
            .body(Full::new(body))
            .map_err(|e| PeerError::Malformed(format!("cannot build request: {e}")))
    }

    /// Sends `request` and reads the answer's body (at most `limit` bytes). A status other
    /// than 2xx is an error.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        limit: usize,
    ) -> Result<(http::response::Parts, Bytes), PeerError> {
        match self.exchange_any(request, limit).await? {
            Reply::Answered(parts, body) => Ok((parts, body)),
            Reply::Refused(parts, message) => Err(status_error(&parts, message)),
        }
    }

    /// Sends `request` and reads the answer: its body (at most `limit` bytes) for a 2xx
    /// status, the start of its message otherwise.
    async fn exchange_any(
        &self,
        request: Request<Full<Bytes>>,
        limit: usize,
    ) -> Result<Reply, PeerError> {
        let (response, connection) = self
            .connections
            .send(request)
            .await
            .map_err(|e| PeerError::Unavailable(Box::new(e)))?;
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            let message = read_message(body).await;
            return Ok(Reply::Refused(parts, message));
        }
        let announced = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(length) = announced.filter(|&n| n > limit as u64) {
            // Refuse before reading a byte: the limit protects memory, and a peer that
            // announces a gigabyte should not get to send it.
            return Err(too_large(length, limit));
        }
        let mut claim = self.transport.budget.claim();
        // An announced length is claimed whole before the first byte, so a fetch that cannot
        // be received fails at once rather than half-way.
        let announced = announced.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        if !claim.cover(announced) {
            return Err(over_budget(&self.transport.budget));
        }
        let body = read_body(body, limit, &mut claim, &self.transport.budget).await?;
        // The claim ends here, with the body handed to its decoder, which copies the value
        // out and drops the body straight after: a short, bounded overlap.
        // Read whole, so the connection is ready for the next request. On every early
        // return above it is dropped instead, and closes.
        connection.release();
        Ok(Reply::Answered(parts, body))
    }
}

/// The members an answer says did not confirm (`x-geecache-unconfirmed`).
fn unconfirmed_of(parts: &http::response::Parts) -> Vec<String> {
    (parts.headers.get(UNCONFIRMED_HEADER))
        .and_then(|v| v.to_str().ok())
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The value, time to live and request rate in a peer's protobuf answer.
///
/// The value is copied into storage of its own. Decoding from `Bytes` does not copy: the value
/// would be a slice of the buffer the connection read the answer into, 8 KiB or more for a
/// value of a few bytes. A value kept in the hot cache would keep that whole buffer alive
/// while the cache counts only the value's bytes.
pub(crate) fn decode_answer(body: Bytes) -> Result<Loaded, PeerError> {
    let response = GetResponse::decode(body).map_err(|e| PeerError::Malformed(e.to_string()))?;
    let ttl = response.ttl_at(SystemTime::now());
    let value = ByteView::copy_from_slice(response.value.as_deref().unwrap_or_default());
    let loaded = Loaded::new(value).with_optional_ttl(ttl);
    Ok(loaded.with_minute_qps(response.minute_qps))
}

/// The `host:port` to dial for a URL's `host[:port]`: `default_port` (80, or 443 for
/// `https`) when it names none.
pub(crate) fn dial_address(authority: &str, default_port: u16) -> String {
    // A bracketed IPv6 address holds colons of its own; only a colon after the bracket starts
    // a port.
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.contains(']'));
    if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    }
}

/// Reads a 2xx body of at most `limit` bytes, growing `claim` as its bytes arrive.
async fn read_body(
    mut body: hyper::body::Incoming,
    limit: usize,
    claim: &mut Claim,
    budget: &Budget,
) -> Result<Bytes, PeerError> {
    let mut received = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| PeerError::Unavailable(Box::new(e)))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let total = received.len().saturating_add(data.len());
        if total > limit {
            return Err(PeerError::Malformed(format!(
                "response body over the {limit}-byte limit"
            )));
        }
        if !claim.cover(total) {
            return Err(over_budget(budget));
        }
        received.extend_from_slice(&data);
    }
    Ok(received.freeze())
}

fn over_budget(budget: &Budget) -> PeerError {
    PeerError::OverLimit(format!(
        "{} of the {} bytes of peer answers this node may receive at once are taken \
         (max_bytes_in_flight)",
        budget.used(),
        budget.limit()
    ))
}

fn too_large(length: u64, limit: usize) -> PeerError {
    PeerError::Malformed(format!(
        "response of {length} bytes is over the {limit}-byte limit"
    ))
}

/// The first bytes of an error answer's body, as text.
async fn read_message(body: hyper::body::Incoming) -> String {
    match Limited::new(body, ERROR_BODY_LIMIT).collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            String::from_utf8_lossy(&bytes)
                .trim()
                .chars()
                .take(ERROR_MESSAGE_CHARS)
                .collect()
        }
        Err(_) => String::from("(error body unreadable or too long)"),
    }
}

/// Which mark a request to a peer carries beside the peer mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    Get,
    Peek,
    Remove(RemoveMode),
}

/// Names the header a receiver sets when it stored a handed-over value.
const TAKEN: &str = crate::TAKEN_HEADER;

/// A peer's answer: a 2xx with its body, or another status with the start of its message.
enum Reply {
    Answered(http::response::Parts, Bytes),
    Refused(http::response::Parts, String),
}

/// The error kind a geecache answer names, when its status is the kind's own.
fn kind_of(parts: &http::response::Parts) -> Option<ErrorKind> {
    parts
        .headers
        .get(ERROR_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(ErrorKind::parse)
        .filter(|kind| kind.status() == parts.status)
}

fn status_error(parts: &http::response::Parts, message: String) -> PeerError {
    // Only our own answers about the key are answers: "no such key" and "the source refuses
    // this key". Any other 404 or 400 (an unknown group, a wrong base path, a proxy's page, a
    // Go node without the group) says nothing about the key, and must make the caller load it
    // itself.
    match kind_of(parts) {
        Some(ErrorKind::NotFound) => PeerError::NotFound,
        Some(ErrorKind::InvalidKey) => {
            // The body is the group's own message, "invalid key: <reason>".
            let reason = message.strip_prefix("invalid key: ").unwrap_or(&message);
            PeerError::Rejected(Rejected::new(reason))
        }
        _ => PeerError::Status {
            status: parts.status.as_u16(),
            message,
        },
    }
}

impl PeerGetter for HttpPeer {
    fn get<'a>(&'a self, group: &'a str, key: &'a str) -> BoxFuture<'a, Result<Loaded, PeerError>> {
        Box::pin(self.fetch(group, key))
    }

    fn remove<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
        mode: RemoveMode,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        Box::pin(self.delete(group, key, mode))
    }

    fn peek<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Loaded>, PeerError>> {
        Box::pin(self.peek(group, key))
    }

    fn hand_over<'a>(
        &'a self,
        group: &'a str,
        values: Vec<(String, Loaded)>,
    ) -> BoxFuture<'a, Result<usize, PeerError>> {
        Box::pin(self.hand_over(group, values))
    }

    fn get_many<'a>(
        &'a self,
        group: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Result<Loaded, PeerError>>, PeerError>> {
        Box::pin(self.fetch_many(group, keys))
    }

    fn takes_batches(&self) -> bool {
        self.batches.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
        value: Loaded,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        Box::pin(self.store(group, key, value))
    }

    fn purge<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<(), PeerError>> {
        Box::pin(self.purge_group(group))
    }

    fn name(&self) -> &str {
        &self.url
    }
}

impl fmt::Debug for HttpPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPeer").field("url", &self.url).finish()
    }
}
