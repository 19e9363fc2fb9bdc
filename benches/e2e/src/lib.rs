//! Measures a geecache cluster from outside: real processes, real sockets, CPU time from `/proc`.
//!
//! The package holds three programs and the small pieces they share:
//!
//! - `e2e` starts three `geecache serve` processes on 127.0.0.1 that name each other as
//!   peers, warms them, drives them with `loadgen`, and prints a markdown table beside the
//!   same load against `bare-axum`, an axum server that answers a constant (the floor: what
//!   an HTTP request costs on this machine before any cache work).
//! - `loadgen` keeps N keep-alive connections busy, one request in flight on each, and prints a
//!   [`LoadReport`] as one line of JSON.
//! - `bare-axum` answers `GET /api/{group}/{key}` with a constant, and, for the all-miss run,
//!   `GET /objects/{key}` after a fixed delay (the slow origin the cache sits in front of).
//!
//! [`hosts`] makes hosts with their own addresses on one machine (network namespaces joined by
//! a bridge) and cuts or separates them, for faults between machines: `e2e --chaos
//! cut,separate,one-way` runs its nodes there.
//!
//! The load generator runs in its own process so that its CPU time is never counted against
//! the servers; [`procstat`] reads each server's `utime + stime` before and after a run, and
//! its peak resident memory at the end; [`sockets`] counts the connections each node holds to
//! its peers. [`tls`] makes the CA and node certificate of the runs over TLS. [`bound`] computes
//! the fewest peer fetches any hot-cache admission could reach on the warm run.
//!
//! ```
//! use geecache_bench_e2e::{duration, report::percentile};
//!
//! assert_eq!(duration::parse("1ms")?, std::time::Duration::from_millis(1));
//! let mut latencies = vec![30, 10, 20, 40];
//! latencies.sort_unstable();
//! assert_eq!(percentile(&latencies, 0.5), Some(20));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod bound;
pub mod duration;
pub mod hosts;
pub mod probe;
pub mod procstat;
pub mod report;
pub mod soak;
pub mod sockets;
pub mod tls;

#[cfg(test)]
mod tests;

pub use report::LoadReport;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
