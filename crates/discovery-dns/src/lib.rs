//! Cluster membership through DNS: look a name up every few seconds and publish the peer list
//! it yields, keeping the last good list whenever DNS does not answer.
//!
//! This is how caches of the groupcache family usually find each other on Kubernetes: a
//! headless Service has one DNS record per pod, so the members are whatever the name resolves
//! to. A [`Config`] says what to ask. `NAME:PORT` asks for A/AAAA records and gives every
//! address the same port; a bare `NAME` asks for SRV records, which carry a host and a port
//! each:
//!
//! ```
//! use std::time::Duration;
//! use geecache_discovery_dns::{Config, Target};
//!
//! let config = Config::builder()
//!     .target("geecache.default.svc.cluster.local:8001")
//!     .interval(Duration::from_secs(5))
//!     .build()?;
//! assert_eq!(config.target().port(), Some(8001));
//!
//! // No port: SRV records, e.g. the named port `peer` of a headless Service.
//! let srv: Target = "_peer._tcp.geecache.default.svc.cluster.local".parse()?;
//! assert_eq!(srv.port(), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A [`Watcher`] then polls in the background and publishes each new list; [`lookup`] asks
//! once. Both need a DNS server, so this example is not run as a test:
//!
//! ```no_run
//! use geecache_discovery_dns::{Config, Watcher};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = Config::builder()
//!         .target("geecache.default.svc.cluster.local:8001")
//!         .build()?;
//!     println!("now: {:?}", geecache_discovery_dns::lookup(&config).await?);
//!
//!     let watcher = Watcher::spawn(&config)?;
//!     let mut lists = watcher.subscribe();
//!     while lists.changed().await.is_ok() {
//!         let Some(peers) = lists.borrow_and_update().clone() else { continue };
//!         // A server hands the list to its peer picker here, e.g. `pool.set_peers(&peers)`.
//!         println!("peers: {peers:?}");
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Answers and peer lists
//!
//! - A/AAAA: `http://ADDRESS:PORT` per address (IPv6 in brackets). The resolver asks for IPv4
//!   first and IPv6 only when there is no IPv4 answer, so a dual-stack pod is one member, not
//!   two.
//! - SRV: `http://TARGET:PORT` per record, the target host name lower-cased and without its
//!   final dot. Records with target `.` or port 0 are skipped.
//! - The list is sorted and free of duplicates, so the same members always make the same
//!   list, whatever order the server answered in.
//! - An empty answer counts as a failure, like no answer: the last list stays.
//!
//! Without [`ConfigBuilder::name_server`] the system's resolver configuration is used
//! (`/etc/resolv.conf`, with its search domains, as in a Kubernetes pod). The resolver's own
//! cache is cleared before each lookup: the interval is what bounds staleness.
//!
//! This crate knows nothing of the cache or its transport: it yields lists of URLs, and the
//! server wires them to its peer picker.
#![deny(missing_docs)]

mod config;
mod error;
mod lookup;
mod task;
mod watcher;

#[cfg(test)]
mod tests;

pub use config::{Config, ConfigBuilder, DEFAULT_INTERVAL, DEFAULT_TIMEOUT, MIN_INTERVAL, Target};
pub use error::Error;
pub use lookup::lookup;
pub use watcher::{Status, Watcher};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
