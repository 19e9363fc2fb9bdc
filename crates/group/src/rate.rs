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

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod clock;

pub(crate) use clock::Clock;

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

    /// Whether this time comes before `other`. Past half the range, a time is taken to be
    /// behind, not four years ahead.
    pub(crate) fn is_behind(self, other: Tick) -> bool {
        self.0.wrapping_sub(other.0) > u32::MAX / 2
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

    fn to_bits(self) -> u64 {
        u64::from(self.per_sec.to_bits()) << 32 | u64::from(self.at.0)
    }

    fn from_bits(bits: u64) -> Rate {
        Rate {
            per_sec: f32::from_bits((bits >> 32) as u32),
            at: Tick(bits as u32),
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
        // A `now` behind the last request (a hit reading the clock's hand, a quarter of a
        // second behind, after a peer's request read the precise time) counts at that last
        // request's time: moving `at` back would decay everything counted by the difference
        // a second time.
        if !now.is_behind(self.at) {
            self.at = now;
        }
    }

    /// The rate at `now`: what was counted, decayed since. A `now` before the last request
    /// (which a shared clock read outside the cache's lock can produce) reads as that time.
    pub(crate) fn at(&self, now: Tick) -> f32 {
        let dt = now.0.wrapping_sub(self.at.0);
        if dt == 0 || now.is_behind(self.at) {
            return self.per_sec;
        }
        let secs = dt as f32 / TICKS_PER_SEC as f32;
        self.per_sec * (-secs / TAU_SECS).exp()
    }
}

/// A [`Rate`] inside a cache entry, moved through a shared reference: a hit then reads the
/// entry as any other get does, instead of taking it mutably, which would have the cache weigh
/// the entry again and republish all of its counters on every hit.
///
/// The rate is one word, loaded and stored whole. Every hit moves it with the cache segment's
/// lock held, so two hits never interleave their load and store, and the atomic is only what
/// lets a shared reference write: on the machines we run on, a relaxed load or store is a plain
/// move.
pub(crate) struct RateCell(AtomicU64);

impl RateCell {
    pub(crate) fn new(rate: Rate) -> Self {
        RateCell(AtomicU64::new(rate.to_bits()))
    }

    pub(crate) fn get(&self) -> Rate {
        Rate::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// Counts one request at `now`. Callers hold the lock of the cache the entry is in.
    pub(crate) fn hit(&self, now: Tick) {
        let mut rate = self.get();
        rate.hit(now);
        self.0.store(rate.to_bits(), Ordering::Relaxed);
    }
}

impl Clone for RateCell {
    fn clone(&self) -> Self {
        RateCell::new(self.get())
    }
}

impl std::fmt::Debug for RateCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
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
