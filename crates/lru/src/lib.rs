//! A least-recently-used cache bounded by bytes rather than by entry count, with O(1)
//! operations, optional per-entry expiry, and a segmented variant for many threads.
//!
//! ```
//! use geecache_lru::{Cache, SegmentedCache};
//!
//! // One thread: 8 bytes of budget; every entry weighs len(key) + len(value).
//! let mut cache = Cache::<String, String>::new(8);
//! cache.add("Tom".into(), "630".into()); // 6 bytes
//! cache.add("Sam".into(), "5".into()); // 4 more: over budget, so "Tom" is evicted
//! assert_eq!(cache.get("Sam").map(String::as_str), Some("5"));
//! assert!(cache.get("Tom").is_none());
//! assert_eq!(cache.bytes(), 4);
//!
//! // Many threads: the same cache, split into segments with a lock each.
//! let shared = SegmentedCache::<String, String>::builder(64 << 20).build()?;
//! shared.add("Tom".into(), "630".into());
//! assert_eq!(shared.get("Tom").as_deref(), Some("630"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Why bytes
//!
//! A cache's job is to keep memory bounded. Values in a read-through cache range from a few bytes
//! to megabytes, so a cap of "10 000 entries" bounds nothing useful. Here every entry weighs what
//! a [`Weigher`] says, by default `key.weight() + value.weight()` through the [`Weigh`] trait
//! (implemented for strings, byte vectors, boxed and shared slices, integers, and `bytes::Bytes`
//! with the `bytes` feature); a closure `Fn(&K, &V) -> usize` weighs anything else.
//!
//! # The two caches
//!
//! - [`Cache`] is single-threaded (`&mut self`), and calls an eviction callback for every entry
//!   the budget pushes out. Its recency list is threaded through a `Vec` of slots by index with
//!   a free list, and a `hashbrown` table maps each key to its slot: no allocation per entry, no
//!   `unsafe`.
//! - [`SegmentedCache`] is `Send + Sync`: `N` `Cache`s, each behind a `std::sync::Mutex` with
//!   `max_bytes / N`, a key's hash choosing its segment. The key is hashed once, for the segment
//!   and the table both. Recency is exact within a segment, approximate across them.
//!
//! # Expiry
//!
//! An entry added with a deadline is a miss from that instant on. Time comes from a [`Clock`]
//! (by default [`Instant::now`](std::time::Instant::now)), so tests move it by hand, and it is
//! read only for entries that have a deadline.
//!
//! # Crate features
//!
//! - `bytes`: implements [`Weigh`] for `bytes::Bytes`.
#![deny(missing_docs)]

mod cache;
mod clock;
mod error;
mod segmented;
mod slots;
mod stats;
mod sync;
mod weigh;

#[cfg(test)]
mod tests;

pub use cache::{Cache, Iter};
pub use clock::{Clock, SystemClock};
pub use error::BuildError;
pub use segmented::{DEFAULT_SEGMENTS, MAX_SEGMENTS, SegmentedBuilder, SegmentedCache};
pub use stats::CacheStats;
pub use weigh::{ByWeight, Weigh, Weigher};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
