use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

/// Exponential backoff with jitter, for reconnecting to etcd.
///
/// When etcd comes back after an outage, every node of every cluster reconnects at once. The
/// jitter spreads those attempts out; the doubling keeps a long outage from turning into a
/// steady stream of doomed requests.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    /// The ceiling of the next pause; doubles after each one, up to `max`.
    ceiling: Duration,
}

impl Backoff {
    pub(crate) fn new((initial, max): (Duration, Duration)) -> Self {
        Backoff {
            initial,
            max,
            ceiling: initial,
        }
    }

    /// The next pause, jittered.
    pub(crate) fn next_pause(&mut self) -> Duration {
        self.next_pause_with(random_fraction())
    }

    /// The next pause for a given `fraction` in `[0, 1)`: somewhere in the upper half of the
    /// current ceiling ("equal jitter"). Keeping half of the ceiling fixed guarantees the pause
    /// grows, which full jitter (anywhere from zero) does not.
    pub(crate) fn next_pause_with(&mut self, fraction: f64) -> Duration {
        let half = self.ceiling / 2;
        let pause = half + half.mul_f64(fraction.clamp(0.0, 1.0));
        self.ceiling = self.ceiling.saturating_mul(2).min(self.max);
        pause
    }

    /// Back to the first pause, after a success.
    pub(crate) fn reset(&mut self) {
        self.ceiling = self.initial;
    }
}

/// A fraction in `[0, 1)` that differs between calls and between processes.
///
/// std's `RandomState` is seeded randomly per process and varies per instance, which is all the
/// randomness jitter needs; a random-number crate would be a dependency for one number.
fn random_fraction() -> f64 {
    let bits = RandomState::new().hash_one(0_u8);
    // The top 53 bits fill an f64 mantissa exactly.
    (bits >> 11) as f64 / (1_u64 << 53) as f64
}
