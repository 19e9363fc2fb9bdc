//! The server side: the `geecache.v1.Peer` service over a node's groups.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use geecache_group::{Error as GroupError, Group, Origin, Registry, RemoveMode, SetError};
use tonic::{Request, Response, Status};

use crate::auth::Token;
use crate::error::Error;
use crate::kind::ErrorKind;
use crate::proto::{
    self, GetManyRequest, GetManyResponse, GetRequest, GetResponse, HandOverRequest,
    HandOverResponse, HandedValue, KeyResult, PeekResponse, Peer, PeerServer, PurgeRequest,
    PurgeResponse, RemoveRequest, RemoveResponse, SetRequest, SetResponse,
};

/// The most keys one `GetMany` may ask for, as on the HTTP batch routes. A node asks for at
/// most 256 at once.
const MAX_BATCH_KEYS: usize = 1000;

/// The `geecache.v1.Peer` service: answers other nodes' fetches (one key or many), peeks,
/// removals, hand-overs, sets and purges from the groups of a [`Registry`].
///
/// It is a tower service like any route, so it is served beside the HTTP routes on the same
/// port: [`PeerService::into_router`] gives an axum router holding it at `/geecache.v1.Peer/*`,
/// to merge into the node's router. The server must accept HTTP/2 without TLS (h2c), as the
/// HTTP transport's `serve` does.
///
/// ```
/// use geecache_group::Registry;
/// use geecache_transport_grpc::PeerService;
///
/// let grpc = PeerService::builder(Registry::new())
///     .max_key_bytes(1024)
///     .peer_token(Some("s3cret".into()))
///     .build()?;
/// let app: axum::Router = axum::Router::new().merge(grpc.into_router());
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PeerService {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    max_key_bytes: usize,
    max_message_bytes: usize,
    token: Option<Token>,
}

impl PeerService {
    /// Starts configuring the service for the groups of `registry`.
    pub fn builder(registry: Registry) -> ServiceBuilder {
        ServiceBuilder {
            registry,
            max_key_bytes: 64 << 10,
            max_message_bytes: 64 << 20,
            peer_token: None,
        }
    }

    /// The service as tonic serves it, with the message size limit set.
    #[must_use]
    pub fn into_server(self) -> PeerServer<PeerService> {
        let limit = self.inner.max_message_bytes;
        PeerServer::new(self)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit)
    }

    /// An axum router serving the service at `/geecache.v1.Peer/{method}`: merge it into a
    /// node's router ([`axum::Router::merge`]) to serve both protocols on one port. A method
    /// the service does not have is answered `UNIMPLEMENTED`.
    pub fn into_router(self) -> axum::Router {
        let path = format!("/{}/{{*method}}", proto::SERVICE_NAME);
        axum::Router::new().route_service(&path, self.into_server())
    }

    /// Refuses a call without the token, when there is one.
    fn admit<T>(&self, request: &Request<T>) -> Result<(), Status> {
        match &self.inner.token {
            Some(token) if !token.admits(request.metadata()) => {
                tracing::warn!(
                    presented = request.metadata().contains_key("authorization"),
                    "rejected gRPC call: missing or wrong bearer token"
                );
                Err(ErrorKind::Unauthorized.status("missing or wrong bearer token"))
            }
            _ => Ok(()),
        }
    }

    /// The group a call about the whole group names.
    fn locate_group(&self, group: &str) -> Result<Arc<Group>, Status> {
        if group.is_empty() {
            return Err(ErrorKind::BadRequest.status("empty group name"));
        }
        self.inner.registry.get(group).ok_or_else(|| {
            ErrorKind::UnknownGroup.status(format!("no such group: {:?}", shortened(group)))
        })
    }

    /// The group a call names, once its key passes the limits.
    fn locate(&self, group: &str, key: &str) -> Result<Arc<Group>, Status> {
        if key.is_empty() {
            return Err(ErrorKind::BadRequest.status("empty key"));
        }
        let max = self.inner.max_key_bytes;
        if key.len() > max {
            return Err(ErrorKind::KeyTooLong.status(format!(
                "key is {} bytes, over the limit of {max}",
                key.len()
            )));
        }
        if group.is_empty() {
            return Err(ErrorKind::BadRequest.status("empty group name"));
        }
        self.inner.registry.get(group).ok_or_else(|| {
            ErrorKind::UnknownGroup.status(format!("no such group: {:?}", shortened(group)))
        })
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        self.admit(&request)?;
        let GetRequest { group, key } = request.into_inner();
        let group = self.locate(&group, &key)?;
        // Every call comes from a peer, which decided this node owns the key: load it here,
        // never forward it (two nodes whose lists disagree would bounce it back and forth).
        let fetched = (group.fetch(&key, Origin::Peer).await)
            .map_err(|e| status_of(group.name(), &key, &e))?;
        let response = GetResponse::of(fetched.value, fetched.ttl, SystemTime::now());
        Ok(Response::new(response.with_minute_qps(fetched.rate)))
    }

    async fn peek(&self, request: Request<GetRequest>) -> Result<Response<PeekResponse>, Status> {
        self.admit(&request)?;
        let GetRequest { group, key } = request.into_inner();
        let group = self.locate(&group, &key)?;
        let cached = group
            .peek(&key)
            .map_err(|e| status_of(group.name(), &key, &e))?;
        let hit = cached.map(|f| GetResponse::of(f.value, f.ttl, SystemTime::now()));
        Ok(Response::new(PeekResponse { hit }))
    }

    async fn remove(
        &self,
        request: Request<RemoveRequest>,
    ) -> Result<Response<RemoveResponse>, Status> {
        self.admit(&request)?;
        let RemoveRequest { group, key, mode } = request.into_inner();
        let group = self.locate(&group, &key)?;
        let mode = match proto::RemoveMode::try_from(mode) {
            Ok(proto::RemoveMode::Local) => RemoveMode::Local,
            Ok(proto::RemoveMode::Owner) => RemoveMode::Owner,
            Err(_) => {
                return Err(ErrorKind::BadRequest.status(format!("unknown removal mode {mode}")));
            }
        };
        let removal = group.remove_for_peer(&key, mode).await;
        Ok(Response::new(RemoveResponse {
            unconfirmed: removal.unconfirmed,
        }))
    }

    async fn hand_over(
        &self,
        request: Request<HandOverRequest>,
    ) -> Result<Response<HandOverResponse>, Status> {
        self.admit(&request)?;
        let HandOverRequest { group, values } = request.into_inner();
        let group = self.locate_group(&group)?;
        let now = SystemTime::now();
        let max = self.inner.max_key_bytes;
        let mut taken = 0_u32;
        for HandedValue { key, value } in values {
            let loaded = value.unwrap_or_default().into_loaded(now);
            if key.len() <= max && group.take_handed(&key, loaded).is_ok() {
                taken += 1;
            }
        }
        Ok(Response::new(HandOverResponse { taken }))
    }

    async fn get_many(
        &self,
        request: Request<GetManyRequest>,
    ) -> Result<Response<GetManyResponse>, Status> {
        self.admit(&request)?;
        let GetManyRequest { group, keys } = request.into_inner();
        let group = self.locate_group(&group)?;
        if keys.len() > MAX_BATCH_KEYS {
            return Err(ErrorKind::BadRequest.status(format!(
                "a batch may ask for at most {MAX_BATCH_KEYS} keys, not {}",
                keys.len()
            )));
        }
        let max = self.inner.max_key_bytes;
        let fits: Vec<&str> = (keys.iter())
            .filter(|k| k.len() <= max)
            .map(String::as_str)
            .collect();
        let mut fetched = group.fetch_many(&fits, Origin::Peer).await.into_iter();
        let now = SystemTime::now();
        let results = keys
            .iter()
            .map(|key| {
                let result = match key.len() <= max {
                    true => fetched.next(),
                    false => None,
                };
                match result {
                    Some(Ok(f)) => KeyResult {
                        value: Some(GetResponse::of(f.value, f.ttl, now).with_minute_qps(f.rate)),
                        error: String::new(),
                        message: String::new(),
                    },
                    Some(Err(e)) => failed(&status_of(group.name(), key, &e)),
                    None => failed(&ErrorKind::KeyTooLong.status(format!(
                        "key is {} bytes, over the limit of {max}",
                        key.len()
                    ))),
                }
            })
            .collect();
        Ok(Response::new(GetManyResponse { results }))
    }

    async fn set(&self, request: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
        self.admit(&request)?;
        let SetRequest { group, key, value } = request.into_inner();
        let group = self.locate(&group, &key)?;
        let loaded = value.unwrap_or_default().into_loaded(SystemTime::now());
        match group.set_for_peer(&key, loaded).await {
            Ok(written) => Ok(Response::new(SetResponse {
                unconfirmed: written.unconfirmed,
            })),
            Err(SetError::Rejected(rejected)) => {
                Err(ErrorKind::InvalidKey.status(rejected.to_string()))
            }
            Err(error) => Err(ErrorKind::BadRequest.status(error.to_string())),
        }
    }

    async fn purge(
        &self,
        request: Request<PurgeRequest>,
    ) -> Result<Response<PurgeResponse>, Status> {
        self.admit(&request)?;
        let group = self.locate_group(&request.into_inner().group)?;
        group.purge_local();
        Ok(Response::new(PurgeResponse {}))
    }
}

/// A key's failure in a batch, as the status a `Get` of it would have ended with names it.
fn failed(status: &Status) -> KeyResult {
    KeyResult {
        value: None,
        error: ErrorKind::of(status)
            .map_or("internal", ErrorKind::as_str)
            .to_owned(),
        message: status.message().to_owned(),
    }
}

/// The status of a call that failed in the group.
fn status_of(group: &str, key: &str, error: &GroupError) -> Status {
    match error {
        GroupError::NotFound => ErrorKind::NotFound.status(format!(
            "not found: key {:?} in group {group:?}",
            shortened(key)
        )),
        GroupError::Rejected(rejected) => ErrorKind::InvalidKey.status(rejected.to_string()),
        GroupError::EmptyKey => ErrorKind::BadRequest.status("empty key"),
        GroupError::Load(_) | GroupError::Panicked => {
            ErrorKind::LoadFailed.status(error.to_string())
        }
        _ => ErrorKind::Internal.status(error.to_string()),
    }
}

/// Keys and names are quoted in messages up to this many characters.
const QUOTED_CHARS: usize = 80;

fn shortened(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(QUOTED_CHARS) {
        None => std::borrow::Cow::Borrowed(s),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}...", &s[..cut])),
    }
}

impl fmt::Debug for PeerService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerService")
            .field("registry", &self.inner.registry)
            .field("max_key_bytes", &self.inner.max_key_bytes)
            .field("max_message_bytes", &self.inner.max_message_bytes)
            .field("token", &self.inner.token)
            .finish()
    }
}

/// Configures a [`PeerService`]; start with [`PeerService::builder`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct ServiceBuilder {
    registry: Registry,
    max_key_bytes: usize,
    max_message_bytes: usize,
    peer_token: Option<String>,
}

impl ServiceBuilder {
    /// The longest key accepted, in bytes. Default 64 KiB, as the HTTP routes. A longer key
    /// is answered `RESOURCE_EXHAUSTED` `key-too-long` before any group sees it.
    pub fn max_key_bytes(mut self, n: usize) -> Self {
        self.max_key_bytes = n;
        self
    }

    /// The largest message accepted or sent (a hand-over carries a value). Default 64 MiB.
    /// Tonic refuses a larger one before reading it, with `OUT_OF_RANGE`.
    pub fn max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// A shared secret every call must carry as `authorization: Bearer <token>`. Default
    /// none: the service is open, as the HTTP peer routes without a token.
    pub fn peer_token(mut self, token: Option<String>) -> Self {
        self.peer_token = token;
        self
    }

    /// The service.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidToken`], or [`Error::Zero`] for a zero limit.
    pub fn build(self) -> Result<PeerService, Error> {
        if self.max_key_bytes == 0 {
            return Err(Error::Zero("max_key_bytes"));
        }
        if self.max_message_bytes == 0 {
            return Err(Error::Zero("max_message_bytes"));
        }
        Ok(PeerService {
            inner: Arc::new(Inner {
                registry: self.registry,
                max_key_bytes: self.max_key_bytes,
                max_message_bytes: self.max_message_bytes,
                token: Token::from_option(self.peer_token)?,
            }),
        })
    }
}

impl fmt::Debug for ServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceBuilder")
            .field("max_key_bytes", &self.max_key_bytes)
            .field("max_message_bytes", &self.max_message_bytes)
            .finish_non_exhaustive()
    }
}
