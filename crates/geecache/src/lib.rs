//! A distributed read-through in-memory cache in the groupcache family, in one crate.
//!
//! geecache is a set of small crates; this one re-exports them as modules, each behind a
//! cargo feature, so an application depends on one crate and turns on what it uses. A cache
//! [`group`] loads each missing key once (from the node that owns it, or from your loader)
//! and keeps it in memory; [`transport_http`] lets nodes find each other's keys over HTTP.
//!
//! ```
//! use geecache::group::{Group, LoadError, Loaded, Registry, getter_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = Registry::new();
//! let scores = Group::builder("scores")
//!     .register(&registry)
//!     .cache_bytes(64 << 20)
//!     .getter(getter_fn(|key: String| async move {
//!         // Stands for a database read.
//!         match key.as_str() {
//!             "Tom" => Ok(Loaded::from("630")),
//!             _ => Err(LoadError::NotFound),
//!         }
//!     }))
//!     .build()?;
//!
//! assert_eq!(scores.get("Tom").await?, "630"); // loaded
//! assert_eq!(scores.get("Tom").await?, "630"); // from the cache
//! assert!(scores.get("Sam").await.unwrap_err().is_not_found());
//! assert_eq!(scores.stats().local_loads, 1);
//!
//! // With peers: a pool names the cluster's nodes, and the group asks each key's owner.
//! let pool = geecache::transport_http::HttpPool::builder("http://127.0.0.1:8001").build()?;
//! pool.set_peers(["http://127.0.0.1:8001", "http://127.0.0.1:8002"])?;
//! let owner = pool.owner_of("Tom").ok_or("empty ring")?;
//! assert!(owner.starts_with("http://127.0.0.1:800"));
//! # Ok(())
//! # }
//! ```
//!
//! To serve a group, build [`transport_http::router`] over the registry and run it with
//! [`transport_http::serve`]; the `geecache` binary (package `geecache-server`) does exactly
//! that, with configuration, metrics and data sources, and is the quickest way to try a
//! cluster: `cargo run --release -p geecache-server -- demo`.
//!
//! # Crate features
//!
//! | feature | module | what it is | brings |
//! |---|---|---|---|
//! | `group` (default) | [`group`] | cache groups: loader, peers, hot cache, TTL, stats | tokio |
//! | `http` (default) | [`transport_http`] | peer pool, HTTP routes, graceful server; implies `group` | axum, hyper, prost |
//! | `grpc` | [`transport_grpc`] | gRPC peer pool and peer service, one HTTP/2 connection per peer; implies `group` | tonic, prost |
//! | `lru` | [`lru`] | byte-bounded LRU caches, single-threaded and segmented | — |
//! | `byteview` | [`byteview`] | immutable, cheaply cloned value bytes | bytes |
//! | `consistenthash` | [`consistenthash`] | groupcache-compatible consistent-hash ring | — |
//! | `singleflight` | [`singleflight`] | one in-flight call per key, result shared | — |
//! | `full` | all of the above | | |
//!
//! The floor-level modules (`lru`, `byteview`, `consistenthash`, `singleflight`) need no async
//! runtime, so `default-features = false, features = ["lru"]` gives a plain byte-bounded LRU
//! without pulling in tokio.
#![deny(missing_docs)]

/// Byte-bounded LRU caches; see the [`geecache-lru`](geecache_lru) crate.
#[cfg(feature = "lru")]
#[doc(inline)]
pub use geecache_lru as lru;

/// Immutable value bytes; see the [`geecache-byteview`](geecache_byteview) crate.
#[cfg(feature = "byteview")]
#[doc(inline)]
pub use geecache_byteview as byteview;

/// The consistent-hash ring; see the [`geecache-consistenthash`](geecache_consistenthash)
/// crate.
#[cfg(feature = "consistenthash")]
#[doc(inline)]
pub use geecache_consistenthash as consistenthash;

/// Duplicate-call suppression; see the [`geecache-singleflight`](geecache_singleflight) crate.
#[cfg(feature = "singleflight")]
#[doc(inline)]
pub use geecache_singleflight as singleflight;

/// Cache groups; see the [`geecache-group`](geecache_group) crate.
#[cfg(feature = "group")]
#[doc(inline)]
pub use geecache_group as group;

/// The HTTP transport; see the [`geecache-transport-http`](geecache_transport_http) crate.
#[cfg(feature = "http")]
#[doc(inline)]
pub use geecache_transport_http as transport_http;

/// The gRPC transport between peers; see the
/// [`geecache-transport-grpc`](geecache_transport_grpc) crate.
#[cfg(feature = "grpc")]
#[doc(inline)]
pub use geecache_transport_grpc as transport_grpc;

#[cfg(all(doctest, feature = "http"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
