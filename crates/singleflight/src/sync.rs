//! The one lock of a group, swapped for loom's model-checked twin in `--cfg loom` test builds.
//!
//! A std `Mutex` rather than an async one: it is never held across an `.await` (the user's future
//! runs with the lock released), so a waiting thread only ever waits for a few map and slab
//! operations, and the crate needs no runtime.

#[cfg(all(test, loom))]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::{Mutex, MutexGuard};
