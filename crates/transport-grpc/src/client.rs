//! The peer client: calls to one peer, multiplexed on one HTTP/2 connection.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use geecache_group::{
    BoxFuture, Loaded, ObservedFetch, PeerError, PeerGetter, PeerObserver, PeerOutcome, RemoveMode,
};
use tonic::transport::{Channel, Endpoint};

use crate::auth::Token;
use crate::error::Error;
use crate::kind::{ErrorKind, peer_error};
use crate::proto::{
    self, GetManyRequest, GetRequest, GetResponse, HandOverRequest, HandedValue, KeyResult,
    PeerClient, PurgeRequest, RemoveRequest, SetRequest,
};

/// What every peer of a pool shares: the call settings.
pub(crate) struct Settings {
    pub(crate) timeout: Duration,
    pub(crate) max_message_bytes: usize,
    pub(crate) token: Option<Token>,
    /// Hears how each fetch ended (the same hook the HTTP pool takes).
    pub(crate) observer: Option<Arc<dyn PeerObserver>>,
    /// The TLS client configuration (ALPN `h2`); `None`: h2c.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

/// One peer, named by its base URL, and its channel.
///
/// A tonic [`Channel`] is one HTTP/2 connection, made on the first call and made again when
/// it breaks; every call to the peer is a stream on it, so concurrent fetches share one
/// socket instead of each holding a connection of its own (the HTTP/1.1 client keeps up to 64
/// per peer). Cloning the client clones a handle to the same channel.
pub(crate) struct GrpcPeer {
    url: String,
    endpoint: Endpoint,
    /// Dials the peer over TLS; `None`: tonic's own plain TCP connector.
    tls: Option<TlsDialer>,
    /// Made on the first call rather than with the peer: a channel starts a task, which needs
    /// a runtime, and a pool's list may be set before there is one (or outside one).
    client: OnceLock<PeerClient<Channel>>,
    settings: Arc<Settings>,
    /// Cleared when the peer answers `GetMany` UNIMPLEMENTED (an older node): it is then asked
    /// key by key.
    batches: AtomicBool,
}

impl GrpcPeer {
    /// A peer at `url` (checked by the pool). Connects lazily: a member that is down when the
    /// list arrives costs nothing until a key is asked of it.
    pub(crate) fn new(url: String, settings: Arc<Settings>) -> Result<GrpcPeer, Error> {
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|_| Error::InvalidUrl {
                url: url.clone(),
                reason: "not a URI",
            })?
            .connect_timeout(settings.timeout)
            .tcp_nodelay(true)
            // A peer that vanishes without closing its socket (a pulled cable, a frozen VM)
            // is found by pings instead of by every call waiting out its deadline.
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10));
        let tls = match &settings.tls {
            None => None,
            Some(config) => Some(TlsDialer::new(&url, Arc::clone(config))?),
        };
        Ok(GrpcPeer {
            url,
            endpoint,
            tls,
            client: OnceLock::new(),
            settings,
            batches: AtomicBool::new(true),
        })
    }

    /// A handle to the peer's channel (cloning one is cheap: it shares the connection).
    fn client(&self) -> PeerClient<Channel> {
        let client = self.client.get_or_init(|| {
            let channel = match &self.tls {
                None => self.endpoint.connect_lazy(),
                Some(dialer) => self
                    .endpoint
                    .connect_with_connector_lazy(dialer.clone().into_connector()),
            };
            PeerClient::new(channel)
                .max_decoding_message_size(self.settings.max_message_bytes)
                .max_encoding_message_size(self.settings.max_message_bytes)
        });
        client.clone()
    }

    /// `message` as a request with the token and the deadline.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        // Sent as `grpc-timeout`, so the receiver knows when nobody waits any more.
        request.set_timeout(self.settings.timeout);
        if let Some(token) = &self.settings.token {
            (request.metadata_mut()).insert("authorization", token.value().clone());
        }
        request
    }

    /// Runs one call within the deadline. The group drops a call at its own peer timeout
    /// too; this one makes the client whole on its own. Dropping a call resets its stream
    /// only, never the connection the other calls share.
    async fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, PeerError> {
        match tokio::time::timeout(self.settings.timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            // Tonic's own deadlines (connecting, here) end a call with CANCELLED: the peer
            // did not answer in time, as when the deadline below passes.
            Ok(Err(status)) if status.code() == tonic::Code::Cancelled => {
                Err(PeerError::Timeout(self.settings.timeout))
            }
            Ok(Err(status)) => Err(peer_error(&status)),
            Err(_) => Err(PeerError::Timeout(self.settings.timeout)),
        }
    }

    async fn fetch(&self, group: &str, key: &str) -> Result<Loaded, PeerError> {
        let Some(observer) = &self.settings.observer else {
            return self.fetch_unobserved(group, key).await;
        };
        let watch = ObservedFetch::start(observer.as_ref(), &self.url);
        let result = self.fetch_unobserved(group, key).await;
        watch.finish(PeerOutcome::of(&result));
        result
    }

    async fn fetch_unobserved(&self, group: &str, key: &str) -> Result<Loaded, PeerError> {
        let mut client = self.client();
        let request = self.request(get_request(group, key));
        let answer = self.call(client.get(request)).await?;
        Ok(answer.into_loaded(SystemTime::now()))
    }

    async fn peek_at(&self, group: &str, key: &str) -> Result<Option<Loaded>, PeerError> {
        let mut client = self.client();
        let request = self.request(get_request(group, key));
        let answer = self.call(client.peek(request)).await?;
        Ok(answer.hit.map(|hit| hit.into_loaded(SystemTime::now())))
    }

    async fn delete(
        &self,
        group: &str,
        key: &str,
        mode: RemoveMode,
    ) -> Result<Vec<String>, PeerError> {
        let mode = match mode {
            RemoveMode::Owner => proto::RemoveMode::Owner,
            _ => proto::RemoveMode::Local,
        };
        let mut client = self.client();
        let request = self.request(RemoveRequest {
            group: group.to_owned(),
            key: key.to_owned(),
            mode: mode.into(),
        });
        let answer = self.call(client.remove(request)).await?;
        Ok(answer.unconfirmed)
    }

    async fn give(&self, group: &str, values: Vec<(String, Loaded)>) -> Result<usize, PeerError> {
        if values.is_empty() {
            return Ok(0);
        }
        let now = SystemTime::now();
        let values = (values.into_iter())
            .map(|(key, value)| {
                let ttl = value.ttl();
                HandedValue {
                    key,
                    value: Some(GetResponse::of(value.into_value(), ttl, now)),
                }
            })
            .collect();
        let mut client = self.client();
        let request = self.request(HandOverRequest {
            group: group.to_owned(),
            values,
        });
        let answer = self.call(client.hand_over(request)).await?;
        Ok(answer.taken as usize)
    }
}

impl GrpcPeer {
    /// Asks for `keys` in one `GetMany` call; a peer without it is asked key by key, side by
    /// side, now and from then on.
    async fn fetch_many(
        &self,
        group: &str,
        keys: &[String],
    ) -> Result<Vec<Result<Loaded, PeerError>>, PeerError> {
        if !self.batches.load(Ordering::Relaxed) {
            return Ok(self.fetch_each(group, keys).await);
        }
        let watch = (self.settings.observer.as_deref())
            .map(|observer| ObservedFetch::start(observer, &self.url));
        let mut client = self.client();
        let request = self.request(GetManyRequest {
            group: group.to_owned(),
            keys: keys.to_vec(),
        });
        let answer = match tokio::time::timeout(self.settings.timeout, client.get_many(request))
            .await
        {
            Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => {
                // An answer, not a fetch that timed out: the peer is asked key by key below.
                if let Some(watch) = watch {
                    watch.finish(PeerOutcome::Status);
                }
                self.batches.store(false, Ordering::Relaxed);
                tracing::info!(peer = %self.url, "peer does not answer GetMany; asking it key by key");
                return Ok(self.fetch_each(group, keys).await);
            }
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) if status.code() == tonic::Code::Cancelled => {
                Err(PeerError::Timeout(self.settings.timeout))
            }
            Ok(Err(status)) => Err(peer_error(&status)),
            Err(_) => Err(PeerError::Timeout(self.settings.timeout)),
        };
        if let Some(watch) = watch {
            watch.finish(PeerOutcome::of(&answer));
        }
        let results = answer?.results;
        if results.len() != keys.len() {
            return Err(PeerError::Malformed(format!(
                "{} results to a batch of {} keys",
                results.len(),
                keys.len()
            )));
        }
        let now = SystemTime::now();
        Ok(results.into_iter().map(|r| key_result(r, now)).collect())
    }

    async fn fetch_each(&self, group: &str, keys: &[String]) -> Vec<Result<Loaded, PeerError>> {
        futures_util::future::join_all(keys.iter().map(|key| self.fetch(group, key))).await
    }

    async fn store(&self, group: &str, key: &str, value: Loaded) -> Result<Vec<String>, PeerError> {
        let ttl = value.ttl();
        let mut client = self.client();
        let request = self.request(SetRequest {
            group: group.to_owned(),
            key: key.to_owned(),
            value: Some(GetResponse::of(value.into_value(), ttl, SystemTime::now())),
        });
        match self.call(client.set(request)).await {
            Ok(answer) => Ok(answer.unconfirmed),
            Err(PeerError::Status { status: 501, .. }) => Err(PeerError::Unsupported("set")),
            Err(error) => Err(error),
        }
    }

    async fn purge_group(&self, group: &str) -> Result<(), PeerError> {
        let mut client = self.client();
        let request = self.request(PurgeRequest {
            group: group.to_owned(),
        });
        match self.call(client.purge(request)).await {
            Ok(_) => Ok(()),
            Err(PeerError::Status { status: 501, .. }) => Err(PeerError::Unsupported("purge")),
            Err(error) => Err(error),
        }
    }
}

/// One key's result in a batch, read as the same answer to a `Get` would be.
fn key_result(result: KeyResult, now: SystemTime) -> Result<Loaded, PeerError> {
    if result.error.is_empty() {
        return Ok(result.value.unwrap_or_default().into_loaded(now));
    }
    let status = match ErrorKind::parse(&result.error) {
        Some(kind) => kind.status(result.message),
        None => tonic::Status::internal(result.message),
    };
    Err(peer_error(&status))
}

fn get_request(group: &str, key: &str) -> GetRequest {
    GetRequest {
        group: group.to_owned(),
        key: key.to_owned(),
    }
}

impl PeerGetter for GrpcPeer {
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
        Box::pin(self.peek_at(group, key))
    }

    fn hand_over<'a>(
        &'a self,
        group: &'a str,
        values: Vec<(String, Loaded)>,
    ) -> BoxFuture<'a, Result<usize, PeerError>> {
        Box::pin(self.give(group, values))
    }

    fn get_many<'a>(
        &'a self,
        group: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Result<Loaded, PeerError>>, PeerError>> {
        Box::pin(self.fetch_many(group, keys))
    }

    fn takes_batches(&self) -> bool {
        self.batches.load(Ordering::Relaxed)
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

impl fmt::Debug for GrpcPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcPeer").field("url", &self.url).finish()
    }
}

/// Opens TLS connections to one peer for its channel: TCP to the URL's `host:port`, then a
/// handshake that checks the peer's certificate names the host.
///
/// Ours rather than tonic's `tls-ring` feature, which builds its own rustls configuration from
/// PEM bytes: this way the pool takes the application's `rustls::ClientConfig` as it is, with
/// its client certificate and its rotating verifier, as the HTTP transport does.
#[derive(Clone)]
struct TlsDialer {
    /// `host:port`, as dialled.
    address: Arc<str>,
    name: rustls::pki_types::ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
}

impl TlsDialer {
    fn new(url: &str, config: Arc<rustls::ClientConfig>) -> Result<TlsDialer, Error> {
        let invalid = |reason| Error::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let authority = url
            .strip_prefix("https://")
            .ok_or_else(|| invalid("must start with https:// when the pool speaks TLS"))?;
        let (host, address) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (ip, rest) = bracketed
                    .split_once(']')
                    .ok_or_else(|| invalid("unclosed '[' in the host"))?;
                let address = match rest.strip_prefix(':') {
                    Some(_) => authority.to_owned(),
                    None => format!("{authority}:443"),
                };
                (ip, address)
            }
            None => match authority.rsplit_once(':') {
                Some((host, _)) => (host, authority.to_owned()),
                None => (authority, format!("{authority}:443")),
            },
        };
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| invalid("host is not a valid TLS server name"))?;
        Ok(TlsDialer {
            address: address.into(),
            name,
            connector: tokio_rustls::TlsConnector::from(config),
        })
    }

    /// The connector tonic calls for each new connection (the URI it passes is the peer's,
    /// known already).
    fn into_connector(
        self,
    ) -> impl tower::Service<
        http::Uri,
        Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
        Error = std::io::Error,
        Future = futures_util::future::BoxFuture<
            'static,
            std::io::Result<
                hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
            >,
        >,
    > + Send
    + Clone
    + 'static {
        tower::service_fn(move |_: http::Uri| {
            let dialer = self.clone();
            Box::pin(async move {
                let stream = tokio::net::TcpStream::connect(&*dialer.address).await?;
                // Calls are small and latency-bound; Nagle would hold them back.
                let _ = stream.set_nodelay(true);
                let session = dialer.connector.connect(dialer.name, stream).await?;
                Ok(hyper_util::rt::TokioIo::new(session))
            }) as futures_util::future::BoxFuture<'static, _>
        })
    }
}
