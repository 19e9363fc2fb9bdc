//! A key's request rate, as its owner measures it: an exponentially decaying average kept in
//! the key's main-cache entry.
//!
//! Each request adds `1 / TAU` to the rate, and the rate decays by `e^(-dt / TAU)` between
//! requests, so for requests arriving at a steady `λ` per second it settles at `λ`, and a key
//! no longer asked for fades within a few minutes. `TAU` is a minute, the window of
//! groupcache's `minute_qps`. This is the classic exponentially weighted moving average of
//! event counts (the Unix load average's); a sliding window of counters would be exact over
//! its window but cost a counter per slot per key, where this costs one number and a time.
//!
//! Eight bytes: the rate as an `f32` (a rate needs no more than seven digits) and the time of
//! the last request as a `u32` count of sixteenths of a second since the cache was made. That
//! wraps after eight and a half years; a key idle that long across the wrap reads a little
//! hot once, which is harmless. The clock is read by the caller, so tests drive the rate with
//! whatever times they like.

use std::time::{Duration, Instant};

/// The time constant of the decay, in seconds.
pub(crate) const TAU_SECS: f32 = 60.0;

/// Ticks per second of a rate's timestamp.
pub(crate) const TICKS_PER_SEC: u32 = 16;

/// A time as a rate counts it: sixteenths of a second since an epoch, wrapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tick(pub(crate) u32);

impl Tick {
    /// `now` in ticks since `epoch` (0 before it).
    pub(crate) fn since(epoch: Instant, now: Instant) -> Tick {
        let elapsed = now.saturating_duration_since(epoch);
        Tick(ticks(elapsed) as u32)
    }
}

fn ticks(elapsed: Duration) -> u64 {
    elapsed.as_secs() * u64::from(TICKS_PER_SEC)
        + u64::from(elapsed.subsec_nanos()) * u64::from(TICKS_PER_SEC) / 1_000_000_000
}

/// A decaying request rate, in requests per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rate {
    /// The rate as of `at`.
    per_sec: f32,
    /// When it was last moved.
    at: Tick,
}

impl Rate {
    /// The rate of a key asked for once, just now.
    pub(crate) const FIRST: f32 = 1.0 / TAU_SECS;

    /// The rate of a key asked for once, at `now`.
    pub(crate) fn first(now: Tick) -> Rate {
        Rate {
            per_sec: Self::FIRST,
            at: now,
        }
    }

    /// The rate as of the last request, not decayed since: what a hit, which has just moved
    /// it, reads without looking at the clock again.
    pub(crate) fn latest(&self) -> f32 {
        self.per_sec
    }

    /// Counts one request at `now`.
    pub(crate) fn hit(&mut self, now: Tick) {
        self.per_sec = self.at(now) + 1.0 / TAU_SECS;
        self.at = now;
    }

    /// The rate at `now`: what was counted, decayed since. A `now` before the last request
    /// (which a shared clock read outside the cache's lock can produce) reads as that time.
    pub(crate) fn at(&self, now: Tick) -> f32 {
        let dt = now.0.wrapping_sub(self.at.0);
        // Past half the range, `now` is taken to be behind `at`, not 4 years ahead of it.
        if dt == 0 || dt > u32::MAX / 2 {
            return self.per_sec;
        }
        let secs = dt as f32 / TICKS_PER_SEC as f32;
        self.per_sec * (-secs / TAU_SECS).exp()
    }
}

/// How a node decides to keep a copy of a value it fetched from the key's owner in its hot
/// cache. See [`GroupBuilder::hot_qps`](crate::GroupBuilder::hot_qps) and
/// [`GroupBuilder::hot_admission`](crate::GroupBuilder::hot_admission).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum HotAdmission {
    /// Keep one value in `n`, at random (0: never, 1: always): groupcache's rule, which its
    /// own code calls a placeholder. Every fetch of a key has the same chance, so over time
    /// keys asked for once or twice fill the hot cache as much as the keys asked for often.
    Random(u32),
    /// Keep a value when its owner measured at least this many requests per second for the
    /// key (a decaying average over about a minute). The owner is the one node that sees a
    /// key's whole demand, so it can tell a key asked for everywhere from one asked for once.
    /// A peer that sends no rate (a Go groupcache node) falls back to
    /// `Random(10)`.
    Rate(f64),
}

impl HotAdmission {
    /// Groupcache's one in ten: `Random`'s default, and the fallback for peers with no rate.
    pub(crate) const GROUPCACHE_ONE_IN: u32 = 10;

    /// The default threshold of [`HotAdmission::Rate`], in requests per second.
    pub const DEFAULT_QPS: f64 = 0.05;
}

impl Default for HotAdmission {
    fn default() -> Self {
        HotAdmission::Rate(Self::DEFAULT_QPS)
    }
}

#[cfg(test)]
mod tests;
