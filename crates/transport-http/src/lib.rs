//! Nodes of a geecache cluster talk to each other over HTTP, with bodies in Go groupcache's
//! protobuf format.
//!
//! This crate is the network around a [`geecache_group::Group`], and only moves bytes: what a
//! request means (where a key is loaded, how a removal reaches every node) is the group's.
//! [`router`] answers peers, clients and operators; [`serve`] runs it with a graceful
//! shutdown; [`HttpPool`] is the group's [`PeerPicker`](geecache_group::PeerPicker), which
//! picks each key's owner on a consistent-hash ring of peer URLs and talks to it over
//! keep-alive connections it keeps per peer.
//!
//! A node in one process, serving on a loopback port:
//!
//! ```
//! use geecache_group::{Group, LoadError, Loaded, Registry, getter_fn};
//! use geecache_transport_http::{HttpPool, RouterConfig, router, serve};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let me = format!("http://{}", listener.local_addr()?);
//!
//! let registry = Registry::new(); // this node's groups
//! let pool = HttpPool::builder(me.as_str()).build()?;
//! pool.set_peers([me.as_str()])?; // a cluster of one; list every node's URL here
//! Group::builder("scores")
//!     .register(&registry)
//!     .peers(pool.clone())
//!     .getter(getter_fn(|key: String| async move {
//!         match key.as_str() {
//!             "Tom" => Ok(Loaded::from("630")),
//!             _ => Err(LoadError::NotFound),
//!         }
//!     }))
//!     .build()?;
//!
//! let app = router(RouterConfig::new(registry).pool(pool));
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(serve(listener, app, async { stopped.await.unwrap_or(()) }));
//!
//! // Any HTTP client will do; a bare socket keeps the example free of one.
//! let mut socket = tokio::net::TcpStream::connect(me.trim_start_matches("http://")).await?;
//! socket.write_all(b"GET /api/scores/Tom HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n").await?;
//! let mut answer = String::new();
//! socket.read_to_string(&mut answer).await?;
//! assert!(answer.starts_with("HTTP/1.1 200 OK"));
//! assert!(answer.ends_with("\r\n\r\n630"));
//!
//! let _ = stop.send(());
//! server.await??; // returns once in-flight requests are done
//! # Ok(())
//! # }
//! ```
//!
//! # The routes
//!
//! - `GET {base}{group}/{key}`: the peer route, groupcache's. The answer is a protobuf
//!   [`proto::GetResponse`]. `base` is `/_geecache/` by default; with `/_groupcache/` Go
//!   groupcache nodes can fetch from this node and this node from them.
//! - `DELETE {base}{group}/{key}`: removes the key, as the group's removal protocol asks
//!   ([`Group::remove`](geecache_group::Group::remove)).
//! - `GET /api/{group}/{key}`: the client route, the value's raw bytes. `DELETE` removes the key
//!   everywhere.
//! - `GET /healthz`, `GET /readyz`, `GET /stats` (every group's counters, as JSON) and, when
//!   the application renders them, `GET /metrics`.
//!
//! Every error answer names its [`ErrorKind`] in the `x-geecache-error` header. The full
//! protocol, status codes and headers included, is in `docs/wire-protocol.md`.
//!
//! # Loops, and how they are avoided
//!
//! A node asks the owner of a key on its ring. If two nodes' rings disagreed (during a change of
//! membership, say), each could think the other owns a key and forward it back and forth. So a
//! peer request carries [`PEER_HEADER`], and a node that receives one loads the key itself. Go
//! groupcache nodes do not send the header, and are served the way groupcache serves them.
//!
//! # Failures
//!
//! A peer that refuses the connection, times out, answers with an error status or sends
//! something that is not a `GetResponse` is a peer error: the group counts it and loads the key
//! itself; the client sees a value. Only "not found" and "invalid key" from the peer are
//! answers. The peer timeout is the group's
//! ([`GroupBuilder::peer_timeout`](geecache_group::GroupBuilder::peer_timeout)): it drops a
//! request that takes longer, so the pool has no deadline of its own.
//!
//! # Security
//!
//! With [`RouterConfig::peer_token`], the peer and admin routes require
//! `Authorization: Bearer <token>` (compared in constant time, by a [`RequireBearer`] layer)
//! and the pool sends it ([`PoolBuilder::peer_token`]). The token is not encryption: across an
//! untrusted network, serve over TLS ([`ServeConfig::tls`], with client certificates if the
//! rustls configuration asks for them) and give the pool a rustls client configuration
//! ([`PoolBuilder::tls`]); peer URLs are then `https://`. The transport reads no files: the
//! application builds both configurations (see [`tls`]).
#![deny(missing_docs)]

mod auth;
mod budget;
mod client;
mod conn;
mod error;
mod failure;
mod kind;
pub mod path;
mod pool;
pub mod proto;
mod routes;
mod serve;
mod stats;
pub mod tls;
pub mod validate;

#[cfg(test)]
mod tests;

pub use auth::{BearerService, RequireBearer};
// The observer is the group's, so one implementation serves every transport; re-exported
// here because the pool's builder takes it.
pub use error::Error;
pub use geecache_group::{PeerObserver, PeerOutcome};
pub use kind::ErrorKind;
pub use pool::{HttpPool, PoolBuilder};
pub use routes::{RouterConfig, router, try_router};
pub use serve::{ServeConfig, serve, serve_with};
pub use tls::HandshakeFailure;

/// Marks a request from a geecache peer (value `1`): the receiver loads the key itself and
/// never forwards the request again.
pub const PEER_HEADER: &str = "x-geecache-peer";

/// On a peer-marked `GET` (value `1`): "answer from your cache only". The answer is the value
/// with this header set to `hit`, or 404 `not-cached`; the receiver never loads the key for it.
/// A new owner sends it to a key's previous owner after a change of membership.
pub const PEEK_HEADER: &str = "x-geecache-peek";

/// On a peer-marked `DELETE` (value `1`): "you own this key; remove it and tell every other
/// node to drop its copy". A receiver never forwards such a request.
pub const FANOUT_HEADER: &str = "x-geecache-fanout";

/// On an error answer: the kind of error, for programs ([`ErrorKind`]). The body says the
/// same for people.
pub const ERROR_HEADER: &str = "x-geecache-error";

/// On a value: where this node found it (`main`, `hot`, `peer` or `loader`).
pub const SOURCE_HEADER: &str = "x-geecache-source";

/// On a removal's answer (value `1`): "this node removed the key", the confirmation a peer's
/// `DELETE` needs. A Go groupcache node serves a `DELETE` as a `GET` and answers 200 without
/// it, which must not count as a removal.
pub const REMOVED_HEADER: &str = "x-geecache-removed";

/// On a removal's answer: the peers that did not confirm they dropped the key, comma-separated.
pub const UNCONFIRMED_HEADER: &str = "x-geecache-unconfirmed";

/// On the answer to a hand-over (`POST {base}{group}/`): how many of the values this node
/// stored as its own.
pub const TAKEN_HEADER: &str = "x-geecache-taken";

/// On the answer to a batch get (`POST {base}{group}`, value `1`): "this is a batch answer". A
/// node that does not know the batch request (a Go groupcache node answers it 400, and
/// proxies have their own ideas) sends none, and is asked key by key from then on.
pub const BATCH_HEADER: &str = "x-geecache-batch";

/// On the answer to a peer's `PUT` (value `1`): "this node stored the value as the key's
/// owner". A Go groupcache node serves a `PUT` as a `GET` and sends none: the write is then not
/// taken.
pub const STORED_HEADER: &str = "x-geecache-stored";

/// On a `PUT`: the value's time to live in seconds (a decimal number, e.g. `30` or `0.5`).
/// Without it the group's own time to live applies.
pub const TTL_HEADER: &str = "x-geecache-ttl";

/// The default base path of the peer route.
pub const DEFAULT_BASE_PATH: &str = "/_geecache/";

/// The base path Go groupcache uses.
pub const GROUPCACHE_BASE_PATH: &str = "/_groupcache/";

/// The content type of protobuf bodies, as groupcache sends it.
pub(crate) const PROTOBUF: &str = "application/x-protobuf";

/// The header names above as [`HeaderName`](http::HeaderName)s, for inserting. Inserting a
/// name given as `&str` copies it into a new allocation every time; these are built once, at
/// compile time, and point at the static text.
pub(crate) mod names {
    use http::HeaderName;

    pub(crate) const PEER: HeaderName = HeaderName::from_static(super::PEER_HEADER);
    pub(crate) const FANOUT: HeaderName = HeaderName::from_static(super::FANOUT_HEADER);
    pub(crate) const PEEK: HeaderName = HeaderName::from_static(super::PEEK_HEADER);
    pub(crate) const ERROR: HeaderName = HeaderName::from_static(super::ERROR_HEADER);
    pub(crate) const SOURCE: HeaderName = HeaderName::from_static(super::SOURCE_HEADER);
    pub(crate) const UNCONFIRMED: HeaderName = HeaderName::from_static(super::UNCONFIRMED_HEADER);
    pub(crate) const REMOVED: HeaderName = HeaderName::from_static(super::REMOVED_HEADER);
    pub(crate) const BATCH: HeaderName = HeaderName::from_static(super::BATCH_HEADER);
    pub(crate) const STORED: HeaderName = HeaderName::from_static(super::STORED_HEADER);
    pub(crate) const TTL: HeaderName = HeaderName::from_static(super::TTL_HEADER);
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
