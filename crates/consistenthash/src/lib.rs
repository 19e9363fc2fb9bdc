//! A consistent-hash ring that picks, for every key, the same peer Go groupcache would pick.
//!
//! ```
//! use geecache_consistenthash::Ring;
//!
//! let mut ring = Ring::default(); // CRC-32, 50 virtual nodes per member, like groupcache
//! ring.add(["http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003"]);
//!
//! let owner = ring.get("k1").ok_or("empty ring")?.to_owned();
//! assert_eq!(owner, "http://127.0.0.1:8003"); // Go groupcache agrees
//!
//! // Adding a member only moves keys to the new member.
//! ring.add(["http://127.0.0.1:8004"]);
//! let now = ring.get("k1").ok_or("empty ring")?;
//! assert!(now == owner || now == "http://127.0.0.1:8004");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Why a ring
//!
//! `hash(key) % n` picks an owner in one step, but when `n` changes almost every key gets a new
//! owner, and a cache cluster then misses on nearly everything at once. On a ring, each member
//! owns the arcs that end at its points; adding a member takes over some arcs (about `1/(n+1)` of
//! the keys, all moving *to* the new member) and removing one hands its arcs to the neighbours.
//! Each member gets several points (*virtual nodes*, [`Ring::replicas`]) so that its arcs add up
//! to a fair share.
//!
//! # Compatibility with Go groupcache
//!
//! The default [`Ring`] (`Ring<Crc32>`) follows Go groupcache's `consistenthash` package
//! exactly: virtual node `i` of member `m` sits at `crc32_ieee(decimal(i) ++ m)`, a key goes to
//! the first point with hash `>= crc32_ieee(key)`, wrapping to the first point, and on equal
//! hashes the member added last wins. The crate's tests reproduce owner and ring vectors produced
//! by the Go library. In a mixed Go/Rust cluster this is what keeps both kinds of node asking the
//! same peer for a key; otherwise a key is loaded, and cached, by two owners.
//!
//! # Balance, and the better option
//!
//! CRC-32 is linear, so the points of one member are correlated with those of another, and
//! balance does not improve with replicas: three groupcache peers at 50 replicas get 42/30/28% of
//! the keys ([`Ring::shares`] computes this exactly), and 160 or 2048 replicas do no better. When
//! every node runs this crate, [`Ring::balanced`] combines a mixing hash ([`Murmur3`]),
//! [`BALANCED_REPLICAS`] virtual nodes and [`Assignment::Nearest`] (a key goes to the closest
//! point in either direction, which halves the variance of shares at equal replicas). It keeps
//! the busiest of 3 to 10 members within 5% of the mean. [`Ring::builder`] sets each option
//! separately. Away from the defaults no option is groupcache-compatible, and all nodes of a
//! cluster must agree on every one of them.
//!
//! # Cost
//!
//! [`Ring::get`] hashes the key once, reads two adjacent entries of a bucket index and one to
//! three points, and never allocates. The work does not grow with the number of points, though a
//! ring too big for the CPU caches waits longer for those reads. Changing membership re-sorts the
//! points and rebuilds the index, so build a ring, share it (in an `Arc`), and swap it whole when
//! membership changes.
#![deny(missing_docs)]

mod builder;
mod hash;
mod preset;
mod ring;
mod successors;

#[cfg(test)]
mod tests;

pub use builder::{Assignment, RingBuilder};
pub use hash::{Crc32, Murmur3, RingHash};
pub use preset::{HashFn, Preset, UnknownPreset};
pub use ring::{BALANCED_REPLICAS, DEFAULT_REPLICAS, MAX_REPLICAS, Ring};
pub use successors::Successors;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
