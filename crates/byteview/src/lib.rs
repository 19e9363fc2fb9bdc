//! An immutable, cheaply cloned view of value bytes.
//!
//! A cache hands the same value to many readers at once. [`ByteView`] makes that safe and cheap:
//! cloning bumps a reference count (the bytes live in a [`bytes::Bytes`]), and there is no way
//! to get `&mut` to them, so no reader can change what the cache or another reader sees. When a
//! caller wants bytes of its own, [`ByteView::to_vec`] makes an explicit copy.
//!
//! ```
//! use geecache_byteview::ByteView;
//!
//! let value = ByteView::from(String::from("630"));
//! let shared = value.clone(); // a reference count, not a copy
//! assert_eq!(shared.as_slice(), b"630");
//! assert_eq!(value, "630");
//!
//! let mut mine = value.to_vec(); // an owned copy
//! mine.push(b'!');
//! assert_eq!(value.len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Weighing a view
//!
//! A byte-bounded cache must know what a value costs. [`ByteView::len`] is that cost. This crate
//! deliberately does not implement `geecache-lru`'s weight trait: floor-1 crates do not know each
//! other, so `geecache-group` gives its cache a weigher closure that calls `len` instead.
#![deny(missing_docs)]

mod view;

#[cfg(test)]
mod tests;

pub use view::ByteView;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
