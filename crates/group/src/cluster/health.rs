//! One peer's health: a circuit breaker that skips a peer that keeps failing, and probes it back.
//!
//! ```text
//!            failures reach the threshold            backoff elapsed: one caller probes
//!  Closed ─────────────────────────────────▶ Open ──────────────────────────────────▶ HalfOpen
//!    ▲                                        ▲                                          │
//!    │                                        └──── probe fails: backoff doubles ────────┤
//!    └──────────────────────────────── probe succeeds ───────────────────────────────────┘
//! ```
//!
//! A timeout or a refused connection opens the circuit at once (by default): a hung peer must
//! cost at most one timeout per backoff period, not one per request, and that one is paid by a
//! probe sent apart from any client's request ([`PeerPicker::pick`](crate::PeerPicker::pick)). Other failures (an error
//! status, a malformed answer) must repeat before they open it, since a single one says more
//! about a request than about the peer. "Not found" and "rejected" are answers, so they count
//! as successes.
//!
//! The state is a small struct behind a `std::sync::Mutex`: it is touched once per peer request
//! (never on a cache hit), held for a few instructions and never across an await, so a lock is
//! simpler than a lock-free encoding and costs about the same.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::PeerError;

/// When a peer's circuit opens and how long it stays open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthPolicy {
    /// Consecutive failures (error status, malformed answer) that open the circuit. Default 3.
    pub failures_to_open: u32,
    /// Consecutive timeouts or refused connections that open it. Default 1: a hung or dead
    /// peer is skipped after the first request that finds out.
    pub unreachable_to_open: u32,
    /// The first backoff before a probe. Default 250 ms.
    pub backoff_min: Duration,
    /// The longest backoff; each failed probe doubles it up to this. Default 10 s.
    pub backoff_max: Duration,
    /// A peer whose answers take on average (an exponentially weighted moving average) more
    /// than this many times the median of the other peers' averages is ejected as slow.
    /// Default 5. `0` turns slow-peer ejection off.
    pub slow_factor: u32,
    /// ... but only when its average is also above this. Default 100 ms: a peer a few
    /// milliseconds slower than very fast ones is not a problem worth routing around.
    pub slow_floor: Duration,
    /// Answers a peer's average needs before it is judged, and that another peer's needs
    /// before it counts towards the median. Default 8.
    pub slow_min_samples: u32,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            failures_to_open: 3,
            unreachable_to_open: 1,
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            slow_factor: 5,
            slow_floor: Duration::from_millis(100),
            slow_min_samples: 8,
        }
    }
}

impl HealthPolicy {
    /// This policy with other backoff bounds.
    #[must_use]
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }

    /// This policy with other counts: `failures` consecutive failures, or `unreachable`
    /// consecutive timeouts or refused connections, open the circuit.
    #[must_use]
    pub fn with_thresholds(mut self, failures: u32, unreachable: u32) -> Self {
        self.failures_to_open = failures;
        self.unreachable_to_open = unreachable;
        self
    }

    /// This policy with another slow-peer rule: eject a peer whose average answer time is over
    /// `factor` times the other peers' median and over `floor` (`factor` 0: never).
    #[must_use]
    pub fn with_slow(mut self, factor: u32, floor: Duration) -> Self {
        self.slow_factor = factor;
        self.slow_floor = floor;
        self
    }

    /// The policy with its counts at least 1 and `backoff_max` at least `backoff_min`, so
    /// that any value makes a working breaker.
    #[must_use]
    pub fn normalized(mut self) -> Self {
        self.failures_to_open = self.failures_to_open.max(1);
        self.slow_min_samples = self.slow_min_samples.max(1);
        self.unreachable_to_open = self.unreachable_to_open.max(1);
        self.backoff_max = self.backoff_max.max(self.backoff_min);
        self
    }
}

/// Where a peer's circuit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerState {
    /// Healthy: requests go to the peer.
    Closed,
    /// Failing: the peer is skipped and its keys go to the next member on the ring.
    Open,
    /// One request is probing the peer; the others still skip it.
    HalfOpen,
}

impl PeerState {
    /// `"closed"`, `"open"` or `"half-open"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Closed => "closed",
            PeerState::Open => "open",
            PeerState::HalfOpen => "half-open",
        }
    }
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one request to a peer ended, as the breaker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An answer: a value, "not found" or "rejected".
    Answered,
    /// No answer in time, or the connection was refused: the peer may be gone.
    Unreachable,
    /// A failed request to a peer that is there: an error status, a malformed answer.
    Failed,
    /// An answer, but so much slower than the other peers' that the peer is an outlier (see
    /// [`HealthPolicy::slow_factor`]): it is ejected like an unreachable peer.
    Slow,
}

impl Outcome {
    pub(crate) fn of<T>(result: &Result<T, PeerError>) -> Outcome {
        match result {
            Ok(_)
            | Err(PeerError::NotFound | PeerError::Rejected(_) | PeerError::Unsupported(_)) => {
                Outcome::Answered
            }
            Err(PeerError::Timeout(_) | PeerError::Unavailable(_)) => Outcome::Unreachable,
            Err(_) => Outcome::Failed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
        unreachable: u32,
    },
    Open {
        until: Instant,
        backoff: Duration,
    },
    /// A probe went out at `since`. If it never reports (its caller joined another flight and
    /// dropped the pick, say), the next caller after one more backoff probes instead.
    HalfOpen {
        backoff: Duration,
        since: Instant,
    },
}

/// How a request is let through to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// The circuit is closed: an ordinary request.
    Closed,
    /// The backoff has passed: this caller probes the peer, and its outcome closes or reopens
    /// the circuit.
    Probe,
}

/// What a state change was, for the caller to log once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Opened { backoff: Duration },
    Closed,
}

/// One peer's breaker.
pub(crate) struct Health {
    policy: HealthPolicy,
    state: Mutex<State>,
    openings: AtomicU64,
}

impl Health {
    pub(crate) fn new(policy: HealthPolicy) -> Self {
        Health {
            policy: policy.normalized(),
            state: Mutex::new(State::Closed {
                failures: 0,
                unreachable: 0,
            }),
            openings: AtomicU64::new(0),
        }
    }

    /// Whether [`admit_as`](Self::admit_as) lets the caller through, as a request or a probe.
    #[cfg(test)]
    pub(crate) fn admit(&self, now: Instant) -> bool {
        self.admit_as(now).is_some()
    }

    /// Whether a request may go to the peer now, and as what: a request
    /// ([`Admitted::Closed`]) or a probe ([`Admitted::Probe`]). When the backoff has passed,
    /// the first caller to ask becomes the probe (the state turns half-open) and the others
    /// keep skipping.
    pub(crate) fn admit_as(&self, now: Instant) -> Option<Admitted> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Some(Admitted::Closed),
            State::Open { until, backoff } if now >= until => {
                *state = State::HalfOpen {
                    backoff,
                    since: now,
                };
                Some(Admitted::Probe)
            }
            State::HalfOpen { backoff, since } if now >= since + backoff => {
                *state = State::HalfOpen {
                    backoff,
                    since: now,
                };
                Some(Admitted::Probe)
            }
            State::Open { .. } | State::HalfOpen { .. } => None,
        }
    }

    /// Records how a request ended. `jitter` is a number in `0..=u64::MAX` that spreads the
    /// next probe over the backoff's last quarter, so the nodes of a cluster do not all probe a
    /// peer in the same instant.
    pub(crate) fn record(&self, outcome: Outcome, now: Instant, jitter: u64) -> Option<Change> {
        let policy = &self.policy;
        let mut state = self.lock();
        let open = |backoff: Duration| State::Open {
            until: now + jittered(backoff, jitter),
            backoff,
        };
        let (next, change) = match (*state, outcome) {
            // An answer ends a run of failures: they must be consecutive to open the circuit.
            (State::Closed { .. }, Outcome::Answered) => (
                State::Closed {
                    failures: 0,
                    unreachable: 0,
                },
                None,
            ),
            (State::HalfOpen { .. }, Outcome::Answered) => (
                State::Closed {
                    failures: 0,
                    unreachable: 0,
                },
                Some(Change::Closed),
            ),
            (
                State::Closed {
                    failures,
                    unreachable,
                },
                outcome,
            ) => {
                let (failures, unreachable) = match outcome {
                    Outcome::Unreachable => (failures, unreachable + 1),
                    _ => (failures + 1, unreachable),
                };
                // A slow verdict is already an average over many answers: it ejects at once.
                if outcome == Outcome::Slow
                    || failures >= policy.failures_to_open
                    || unreachable >= policy.unreachable_to_open
                {
                    let backoff = policy.backoff_min;
                    (open(backoff), Some(Change::Opened { backoff }))
                } else {
                    (
                        State::Closed {
                            failures,
                            unreachable,
                        },
                        None,
                    )
                }
            }
            (State::HalfOpen { backoff, .. }, _) => {
                let backoff = backoff.saturating_mul(2).min(policy.backoff_max);
                (open(backoff), Some(Change::Opened { backoff }))
            }
            // A request that was already in flight when the circuit opened: it says nothing new.
            (State::Open { .. }, _) => return None,
        };
        *state = next;
        if matches!(change, Some(Change::Opened { .. })) {
            self.openings.fetch_add(1, Ordering::Relaxed);
        }
        change
    }

    pub(crate) fn state(&self) -> PeerState {
        match *self.lock() {
            State::Closed { .. } => PeerState::Closed,
            State::Open { .. } => PeerState::Open,
            State::HalfOpen { .. } => PeerState::HalfOpen,
        }
    }

    /// How many times the circuit has opened.
    pub(crate) fn openings(&self) -> u64 {
        self.openings.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // No code panics while holding the lock; a poisoned state is still a valid state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `backoff` less up to a quarter of it, by `jitter`.
fn jittered(backoff: Duration, jitter: u64) -> Duration {
    let quarter = backoff / 4;
    let nanos = u64::try_from(quarter.as_nanos()).unwrap_or(u64::MAX);
    let off = if nanos == 0 { 0 } else { jitter % nanos };
    backoff - Duration::from_nanos(off)
}

#[cfg(test)]
mod tests;
