//! A named cache namespace that loads what it misses, once, from whoever owns it.
//!
//! A [`Group`] is groupcache's central idea: a name, a byte budget, and a loader ([`Getter`]).
//! [`Group::get`] answers from the local cache when it can; on a miss it collapses concurrent
//! loads of the same key into one (singleflight), asks the peer that owns the key (through a
//! [`PeerPicker`]), and falls back to the local loader when there is no owner elsewhere or the
//! owner fails. Values are immutable [`ByteView`]s, so a hit is a reference-count bump.
//!
//! ```
//! use geecache_group::{Group, Loaded, LoadError, getter_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scores = Group::builder("scores")
//!     .cache_bytes(64 << 20)
//!     .getter(getter_fn(|key: String| async move {
//!         match key.as_str() {
//!             "Tom" => Ok(Loaded::from("630")),
//!             _ => Err(LoadError::NotFound),
//!         }
//!     }))
//!     .build()?;
//!
//! assert_eq!(scores.get("Tom").await?, "630"); // loaded
//! assert_eq!(scores.get("Tom").await?, "630"); // cached
//! assert!(scores.get("Sam").await.unwrap_err().is_not_found());
//!
//! let stats = scores.stats();
//! assert_eq!((stats.gets, stats.local_loads, stats.main.hits), (3, 1, 1));
//! # Ok(())
//! # }
//! ```
//!
//! # The request path
//!
//! 0. The source's key check ([`Getter::check_key`]): cheap, no I/O. A key the source refuses
//!    is [`Error::Rejected`], before the cache, whether or not something is cached under it.
//! 1. The main cache (values this node owns), then the hot cache (copies of other nodes' hot
//!    values). A hit ends here.
//! 2. One flight per key: concurrent misses wait for the first, and the flight checks the
//!    cache once more before doing any work.
//! 3. If a [`PeerPicker`] names another node as the key's owner, ask it. A value from a peer is
//!    kept in the hot cache when the owner measured enough requests for the key
//!    ([`GroupBuilder::hot_qps`]; the owner keeps each key's rate in its cache entry and sends
//!    it with the value), or one time in ten at random when the peer sends no rate (a Go
//!    node) or the group asks for groupcache's rule ([`GroupBuilder::hot_admission`]). A peer's "not
//!    found" and "rejected" are answers; a peer's failure (error, bad reply, or no answer
//!    within [`GroupBuilder::peer_timeout`]) is counted in [`Stats::peer_errors`]. A failure
//!    that says nothing of the key (a timeout, an unreachable peer, a server error) sends the
//!    key to the peer's stand-in, [`PeerPicker::pick_after`]: for a [`Cluster`], the next
//!    member on the ring that every node picks once it skips the failed one, so the key is
//!    still loaded once in the cluster. It is asked once, within the peer timeout; when it is
//!    this node, or fails too, or the failure was of another kind, the request falls through.
//! 4. The local [`Getter`]. Its value goes into the main cache; its errors are never cached.
//!
//! A request that arrived *from* a peer ([`Origin::Peer`]) skips step 3: the sender already
//! decided this node owns the key, and forwarding again could bounce a key between two nodes
//! whose peer lists disagree.
//!
//! # Many keys at once
//!
//! [`Group::get_many`] answers a list of keys as single gets would, with one request per
//! owning peer ([`PeerGetter::get_many`]) instead of one per key, and the keys this node owns
//! loaded side by side within a bound ([`GroupBuilder::batch_concurrency`]). Each key keeps its
//! own flight, so a batch and a single get of the same key share one load. With
//! [`GroupBuilder::peer_batch_window`], single gets whose misses go to the same peer within a
//! short window are sent as one such request as well, each caller still getting its own answer.
//!
//! # Writes and "not found"
//!
//! [`Group::set`] stores a value at the key's owner and has every other member drop its copy;
//! [`Group::purge`] drops every value of the group on every member. Neither lets a load that
//! was in flight cache an older value over them. With [`GroupBuilder::negative_ttl`], the owner
//! of a key its source does not have answers "not found" for that long without asking again.
//!
//! # Removal
//!
//! [`Group::remove`] drops a key everywhere it can reach: here, at the owner, and every hot
//! copy on the other members, through the same peer traits ([`PeerGetter::remove`]). The
//! protocol is the group's, so every transport gets it; a transport only carries the two
//! requests ([`RemoveMode`]) and hands a peer's request to [`Group::remove_for_peer`].
//!
//! # Registering
//!
//! Building a group registers nothing. A server that looks groups up by name gets them from a
//! [`Registry`]: put a group there with [`GroupBuilder::register`] or [`Registry::insert`]
//! (the process-wide one is [`groups::global`]).
//!
//! # Expiry
//!
//! A group may have a default time to live ([`GroupBuilder::ttl`]), and a loader may give each
//! value its own ([`Loaded::with_ttl`]), which wins. An expired value is a miss. A background
//! task purges expired entries one cache segment at a time; it needs a tokio runtime when the
//! group is built and stops when the group is dropped.
#![deny(missing_docs)]

mod batch;
mod builder;
mod cache;
mod cluster;
mod coalesce;
mod error;
mod getter;
mod group;
mod handover;
mod key;
mod observe;
mod peers;
mod random;
mod rate;
mod registry;
mod remote;
mod removal;
mod stats;
mod sweeper;
mod warnings;
mod write;

#[cfg(test)]
mod tests;

pub use builder::GroupBuilder;
pub use cache::Charge;
pub use cluster::{Cluster, ClusterBuilder, HealthPolicy, PeerHealth, PeerState};
pub use error::{
    AlreadyRegistered, BoxError, BuildError, DuplicateGroup, Error, LoadError, PeerError, Rejected,
};
pub use geecache_byteview::ByteView;
pub use geecache_lru::Policy;
pub use getter::{BoxFuture, Getter, GetterFn, Loaded, getter_fn};
pub use group::{Fetched, Group, Origin, Source};
pub use handover::HandOver;
pub use observe::{ObservedFetch, PeerObserver, PeerOutcome};
pub use peers::{
    GET_MANY_BATCH, GET_MANY_BATCH_BYTES, HAND_OVER_BATCH, HAND_OVER_BATCH_BYTES, PeerGetter,
    PeerPicker, Pick, RemoveMode,
};
pub use rate::HotAdmission;
pub use registry::{Registry, groups};
pub use removal::Removal;
pub use stats::{CacheStats, Field, FieldKind, Stats};
pub use write::{Purged, SetError, Written};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
