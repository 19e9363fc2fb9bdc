//! Duplicate-call suppression for async code: while the work for a key is running, every other
//! call for that key waits for it and shares its result instead of running the work again.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use geecache_singleflight::Group;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let group = Group::<String, String, std::io::Error>::new();
//! let loads = AtomicUsize::new(0);
//! let load = || async {
//!     loads.fetch_add(1, Ordering::Relaxed);
//!     tokio::task::yield_now().await; // stands for a slow database read
//!     Ok(String::from("630"))
//! };
//!
//! // Three overlapping misses for one hot key: the source is read once.
//! let (a, b, c) = tokio::join!(
//!     group.work("Tom".to_string(), load),
//!     group.work("Tom".to_string(), load),
//!     group.work("Tom".to_string(), load),
//! );
//! assert_eq!((a?, b?, c?), ("630".into(), "630".into(), "630".into()));
//! assert_eq!(loads.load(Ordering::Relaxed), 1);
//!
//! // Nothing is cached: a call after the flight has landed runs the work again.
//! group.work("Tom".to_string(), load).await?;
//! assert_eq!(loads.load(Ordering::Relaxed), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Cancellation and panics
//!
//! Each caller passes its own closure. Only the caller running the work (the *leader*) calls
//! it; the others wait. If the leader's future is dropped (its request timed out, its client
//! went away), one of the waiters becomes the leader and calls *its* closure, so the waiters
//! neither hang nor fail. If the work panics, the leader's panic is resumed, every waiter gets
//! [`Error::Panicked`], and the group stays usable. An error returned by the work reaches every
//! caller as the same [`Arc`](std::sync::Arc) in [`Error::Failed`]. [`Group::work`] lists what
//! each caller sees in each case.
//!
//! # Runtime and cost
//!
//! The crate depends on no async runtime: a group is a `std::sync::Mutex` around a hash index and
//! a slab of flights, and waiting callers are woken through their own `Waker`s. The closure's
//! future is polled in place by its caller, never spawned, so it may borrow from the caller. A
//! call for an idle key takes the lock twice (join, finish), never clones its key or its value,
//! and, once the group has warmed up, allocates nothing unless the work fails (the error goes
//! into one `Arc`). A value is cloned once per waiter.
#![deny(missing_docs)]

mod error;
mod flight;
mod group;
mod slab;
mod sync;

#[cfg(test)]
mod tests;

pub use error::Error;
pub use group::Group;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
