//! Deadlines in 8 bytes: nanoseconds from an instant the cache takes when it is made.
//!
//! `Option<Instant>` takes 16 bytes on Linux (seconds, nanoseconds, padding), in a slot of
//! 72 to 100 bytes that every entry pays for whether it has a deadline or not. A signed
//! nanosecond count from the cache's epoch covers 292 years either side of it in 8 bytes, with
//! one value set aside for "none". Converting costs a subtraction when a deadline is stored
//! and one on each lookup of an entry that has a deadline; entries without one, the common
//! case, are told apart by the sentinel without reading the clock, as before.
//!
//! Order is kept: for instants within 292 years of the epoch the conversion is exact, and
//! beyond that it saturates, so `a <= b` implies `offset(a) <= offset(b)` for every pair and
//! an expiry test on offsets agrees with one on instants except between two instants that are
//! both centuries away.
//!
//! Reading a deadline back (`Epoch::instant`) adds the offset to the epoch again. Both ends
//! count whole nanoseconds, `Instant`'s own resolution, so a deadline within those 292 years
//! comes back as the very `Instant` that was given, and a caller can compute a time to live
//! from it to the nanosecond.

use std::time::{Duration, Instant};

/// The instant deadlines are counted from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Epoch(Instant);

/// A deadline as nanoseconds from an [`Epoch`], or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deadline(i64);

impl Deadline {
    /// No deadline: never expires.
    pub(crate) const NONE: Deadline = Deadline(i64::MAX);

    #[inline]
    pub(crate) fn is_some(self) -> bool {
        self != Deadline::NONE
    }

    /// Whether a clock reading `now` (an offset from the same epoch) is at or past it.
    #[inline]
    pub(crate) fn passed_at(self, now: i64) -> bool {
        self.is_some() && now >= self.0
    }
}

impl Epoch {
    pub(crate) fn now() -> Self {
        Epoch(Instant::now())
    }

    /// `at` in nanoseconds from the epoch, saturating below `i64::MAX`, which means none.
    #[inline]
    pub(crate) fn offset(self, at: Instant) -> i64 {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX - 1);
        match at.checked_duration_since(self.0) {
            Some(after) => nanos(after).min(i64::MAX - 1),
            None => -nanos(self.0.duration_since(at)),
        }
    }

    /// `at` as a [`Deadline`].
    #[inline]
    pub(crate) fn deadline(self, at: Option<Instant>) -> Deadline {
        at.map_or(Deadline::NONE, |at| Deadline(self.offset(at)))
    }

    /// The instant `deadline` stands for: exactly the one given to [`deadline`](Epoch::deadline)
    /// when it lay within 292 years of the epoch, else the saturated bound 292 years away.
    ///
    /// An instant the platform cannot represent (that bound, on a platform whose `Instant` is
    /// narrower) reads back as "none" when it is in the future (it never comes) and as the
    /// epoch when it is in the past (it has passed): either way, an expiry test on the result
    /// agrees with one on the offset.
    #[inline]
    pub(crate) fn instant(&self, deadline: Deadline) -> Option<Instant> {
        // The common case, no deadline, is one compare inline; the conversion is a call, so
        // a hit on such an entry does not load the epoch or make room for the arithmetic.
        if deadline.is_some() {
            self.convert(deadline)
        } else {
            None
        }
    }

    #[inline(never)]
    fn convert(&self, deadline: Deadline) -> Option<Instant> {
        let magnitude = Duration::from_nanos(deadline.0.unsigned_abs());
        if deadline.0 >= 0 {
            self.0.checked_add(magnitude)
        } else {
            Some(self.0.checked_sub(magnitude).unwrap_or(self.0))
        }
    }
}
