//! How fast each peer answers, and whether one is an outlier: slow-peer ejection.
//!
//! A peer that answers, but far slower than the others (an overloaded machine, a bad disk, a
//! congested link), is worse than a dead one: it holds every request for its keys for most of
//! the timeout and is never skipped. Each member keeps a moving average of its answer times to
//! single gets; a member whose average is several times the median of the others' is ejected
//! like a failing one, and probed back the same way (as Envoy's outlier detection does). Only
//! single gets (and batches of one key) are timed: a batch of many keys or a hand-over takes
//! longer by its nature, and timed beside single gets it would make a healthy member look slow.
//!
//! Flapping is kept down three ways: the average moves a quarter of the way to each new sample,
//! so one slow answer does not eject; a member needs several answers before it is judged; and
//! ejections back off like other openings, doubling while the probes stay slow. A probe is
//! judged by its own answer time, and a member that passes starts a fresh average. With no other
//! member to compare against (a cluster of two) nothing is ejected for being slow: a peer's own
//! answers cannot tell a slow peer from slow keys.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use super::health::HealthPolicy;

/// One member's answer times.
#[derive(Debug, Default)]
pub(crate) struct Latency {
    /// The moving average, in nanoseconds.
    average: AtomicU64,
    /// Answers averaged so far.
    samples: AtomicU64,
}

impl Latency {
    /// Adds one answer time to the average.
    pub(crate) fn observe(&self, elapsed: Duration) {
        let sample = nanos(elapsed);
        // Racing updates may lose a sample; an average of answer times does not need them all.
        let old = self.average.load(Ordering::Relaxed);
        let new = match self.samples.fetch_add(1, Ordering::Relaxed) {
            0 => sample,
            // A quarter of the way towards the new sample: about the last eight answers count.
            _ => old - old / 4 + sample / 4,
        };
        self.average.store(new, Ordering::Relaxed);
    }

    /// Starts the average afresh from `elapsed` (after a probe passed).
    pub(crate) fn restart(&self, elapsed: Duration) {
        self.average.store(nanos(elapsed), Ordering::Relaxed);
        self.samples.store(1, Ordering::Relaxed);
    }

    fn read(&self) -> (u64, u64) {
        (
            self.average.load(Ordering::Relaxed),
            self.samples.load(Ordering::Relaxed),
        )
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Every member's answer times, to compare one member with the others.
#[derive(Debug, Default)]
pub(crate) struct Board {
    members: RwLock<Vec<Arc<Latency>>>,
}

impl Board {
    /// The members to compare with from now on.
    pub(crate) fn replace(&self, members: Vec<Arc<Latency>>) {
        *self.members.write().unwrap_or_else(PoisonError::into_inner) = members;
    }

    /// The answer time above which `member` counts as slow: `slow_factor` times the median of
    /// the other members' averages, and at least `slow_floor`; `None` when there is nothing to
    /// compare with, or the rule is off.
    pub(crate) fn threshold(&self, member: &Latency, policy: &HealthPolicy) -> Option<Duration> {
        if policy.slow_factor == 0 {
            return None;
        }
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        let mut others: Vec<u64> = (members.iter())
            .filter(|other| !std::ptr::eq(Arc::as_ptr(other), member))
            .map(|other| other.read())
            .filter(|&(_, samples)| samples >= u64::from(policy.slow_min_samples))
            .map(|(average, _)| average)
            .collect();
        if others.is_empty() {
            return None;
        }
        let middle = others.len() / 2;
        let median = *others.select_nth_unstable(middle).1;
        let scaled = Duration::from_nanos(median.saturating_mul(u64::from(policy.slow_factor)));
        Some(scaled.max(policy.slow_floor))
    }

    /// Whether `member`'s average, with enough answers behind it, is over its threshold.
    pub(crate) fn is_slow(&self, member: &Latency, policy: &HealthPolicy) -> bool {
        let (average, samples) = member.read();
        if samples < u64::from(policy.slow_min_samples) {
            return false;
        }
        self.threshold(member, policy)
            .is_some_and(|limit| Duration::from_nanos(average) > limit)
    }
}

#[cfg(test)]
mod tests;
