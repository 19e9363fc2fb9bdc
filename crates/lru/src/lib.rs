//! A cache bounded by bytes rather than by entry count, evicting least-recently-used entries
//! (or, if asked, by the scan-resistant S3-FIFO policy), with O(1) operations, optional
//! per-entry expiry, and a segmented variant for many threads.
//!
//! ```
//! use geecache_lru::{Cache, Policy, SegmentedCache};
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
//!
//! // The same, evicting by S3-FIFO: a scan of one-off keys no longer flushes the hot ones.
//! let scan_proof = SegmentedCache::<String, String>::builder(64 << 20)
//!     .policy(Policy::S3Fifo)
//!     .build()?;
//! scan_proof.add("Tom".into(), "630".into());
//! assert!(scan_proof.contains_key("Tom"));
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
//! # Policies
//!
//! [`Policy::Lru`], the default, keeps one exact recency list: a hit moves the entry to the
//! front. [`Policy::S3Fifo`] keeps a small and a main FIFO queue and the hashes of recently
//! evicted keys; a hit only raises a 2-bit counter, and keys used once pass through the small
//! queue without displacing the rest, so scans and loops slightly larger than the cache do not
//! flush it. The policy is a constructor argument ([`Cache::with_policy`],
//! [`SegmentedBuilder::policy`]), not a type: see [`Policy`] for why, for what it costs the
//! LRU path, and for each policy's eviction order. `examples/hit_ratio.rs` prints both policies'
//! hit ratios beside `quick_cache`, `moka` and Belady's optimum.
//!
//! # The two caches
//!
//! - [`Cache`] is single-threaded (`&mut self`), and calls an eviction callback for every entry
//!   the budget pushes out. Its recency list (or S3-FIFO's two queues) is threaded through a
//!   `Vec` of slots by index with a free list, and a `hashbrown` table maps each key to its
//!   slot: no allocation per entry, no `unsafe`. Beyond `add`/`get`/`peek`/`remove`, it has
//!   [`get_mut`](Cache::get_mut) (a guard that re-weighs the entry when dropped),
//!   [`get_or_insert_with`](Cache::get_or_insert_with), [`contains_key`](Cache::contains_key),
//!   [`retain`](Cache::retain), [`keys`](Cache::keys), [`values`](Cache::values) and
//!   [`set_max_bytes`](Cache::set_max_bytes).
//! - [`SegmentedCache`] is `Send + Sync`: `N` `Cache`s, each behind a `std::sync::Mutex` with
//!   `max_bytes / N`, a key's hash choosing its segment. The key is hashed once, for the segment
//!   and the table both. Recency is exact within a segment, approximate across them. Its
//!   `update`, `get_or_insert_with`, `retain`, `keys` and `snapshot` take one segment lock at a
//!   time.
//!
//! # Expiry
//!
//! An entry added with a deadline is a miss from that instant on. Time comes from a [`Clock`]
//! (by default [`Instant::now`](std::time::Instant::now)), so tests move it by hand, and it is
//! read only for entries that have a deadline. [`Cache::get_with_expiry`],
//! [`SegmentedCache::get_map_with_expiry`] and their `peek`, `iter` and `snapshot` siblings
//! hand an entry's deadline back with its value, the very `Instant` it was added with.
//!
//! # Crate features
//!
//! - `bytes`: implements [`Weigh`] for `bytes::Bytes`.
#![deny(missing_docs)]

mod cache;
mod clock;
mod deadline;
mod error;
mod ghost;
mod policy;
mod segmented;
mod slots;
mod stats;
mod sync;
mod weigh;

#[cfg(test)]
mod tests;

pub use cache::{Cache, Iter, Keys, ValueMut, Values};
pub use clock::{Clock, SystemClock};
pub use error::BuildError;
pub use policy::Policy;
pub use segmented::{DEFAULT_SEGMENTS, MAX_SEGMENTS, SegmentedBuilder, SegmentedCache};
pub use stats::CacheStats;
pub use weigh::{ByWeight, Weigh, Weigher};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
