//! Cluster membership through etcd: each node keeps its own key alive under a lease, and every
//! node watches the keys to know the live peer set.
//!
//! A [`Config`] says where etcd is and which cluster this is. The key layout it defines is the
//! whole protocol, so other tools can read it too:
//!
//! ```
//! use std::time::Duration;
//! use geecache_discovery_etcd::Config;
//!
//! let config = Config::builder()
//!     .endpoint("http://127.0.0.1:2379")
//!     .cluster("scores")
//!     .ttl(Duration::from_secs(10))
//!     .build()?;
//! // Every node of cluster "scores" puts one key here, named after its URL:
//! assert_eq!(
//!     config.node_key("http://10.0.0.1:8001"),
//!     "/geecache/scores/nodes/http://10.0.0.1:8001"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A node then does two things, both backed by a background task:
//!
//! - [`Registration`] puts the node's key under a lease and keeps the lease alive. If the node
//!   dies, the lease runs out and etcd deletes the key: liveness without a heartbeat protocol
//!   of our own. [`Registration::shutdown`] revokes the lease, so a graceful exit is seen at
//!   once; a lost lease is replaced automatically.
//! - [`Membership`] reads the keys, watches them from the read's revision on, and publishes the
//!   complete, sorted peer list whenever it changes. When etcd is unreachable the last list
//!   stays in force; after the outage the list settles for one lease TTL, keeping members
//!   whose leases ran out while they register again.
//!
//! This needs a running etcd, so the example is not run as a test:
//!
//! ```no_run
//! use geecache_discovery_etcd::{Config, Membership, Registration};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = Config::builder()
//!         .endpoint("http://127.0.0.1:2379")
//!         .cluster("scores")
//!         .build()?;
//!     let registration = Registration::start(&config, "http://10.0.0.1:8001").await?;
//!     let membership = Membership::start(&config).await?;
//!
//!     let mut lists = membership.subscribe();
//!     // The first turn of the loop sees the list `start` read; later turns see changes.
//!     while lists.changed().await.is_ok() {
//!         let Some(peers) = lists.borrow_and_update().clone() else { continue };
//!         // A server hands the list to its peer picker here, e.g. `pool.set_peers(&peers)`.
//!         println!("peers: {peers:?}");
//!     }
//!
//!     registration.shutdown().await?; // peers drop this node now, not after the TTL
//!     membership.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! # Failure behaviour
//!
//! Only the `start` and `shutdown` calls report etcd errors. Afterwards both types ride out
//! failures on their own, with jittered exponential backoff ([`ConfigBuilder::backoff`]), and
//! log through `tracing`: lost registrations and interrupted watches at `warn`, recoveries at
//! `info`, individual failed attempts at `debug`. Background tasks end on `shutdown` or drop.
//!
//! This crate knows nothing of the cache or its transport: it yields lists of URLs, and the
//! server wires them to its peer picker.
//!
//! # Building
//!
//! `etcd-client` compiles etcd's protobuf definitions at build time, so `protoc` and the
//! protobuf well-known types must be installed (Debian: `protobuf-compiler` and
//! `libprotobuf-dev`).
#![deny(missing_docs)]

mod backoff;
mod client;
mod config;
mod error;
mod liveness;
mod membership;
mod peers;
mod registration;
mod task;

#[cfg(test)]
mod tests;

pub use config::{
    Config, ConfigBuilder, DEFAULT_BACKOFF, DEFAULT_PREFIX, DEFAULT_REQUEST_TIMEOUT, DEFAULT_TTL,
};
pub use error::Error;
pub use membership::Membership;
pub use registration::Registration;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
