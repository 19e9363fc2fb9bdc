//! A hook that hears how each fetch from a peer ended, whatever the wire: metrics for every
//! transport from one implementation.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::PeerError;

/// What became of one fetch from a peer, as reported to a [`PeerObserver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerOutcome {
    /// The peer answered with the value.
    Ok,
    /// The peer answered that the key does not exist.
    NotFound,
    /// The peer answered that its source refuses the key.
    Rejected,
    /// The caller stopped waiting before the peer answered: the peer timeout passed (or,
    /// rarely, every caller of the fetch went away).
    Timeout,
    /// The peer could not be reached, the connection broke, or the peer is draining.
    Unavailable,
    /// The peer answered with an error status.
    Status,
    /// The peer's answer could not be decoded, or was too large.
    Malformed,
    /// This node stopped (or never started) receiving the answer, to keep the bytes of peer
    /// answers it receives at once within its budget. The peer is not to blame.
    OverBudget,
}

impl PeerOutcome {
    /// A short lower-case name, e.g. for a metrics label: `"ok"`, `"not_found"`,
    /// `"rejected"`, `"timeout"`, `"unavailable"`, `"status"`, `"malformed"`,
    /// `"over_budget"`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            PeerOutcome::Ok => "ok",
            PeerOutcome::NotFound => "not_found",
            PeerOutcome::Rejected => "rejected",
            PeerOutcome::Timeout => "timeout",
            PeerOutcome::Unavailable => "unavailable",
            PeerOutcome::Status => "status",
            PeerOutcome::Malformed => "malformed",
            PeerOutcome::OverBudget => "over_budget",
        }
    }

    /// The outcome of a fetch (of one key, or of a batch) that returned `result`.
    #[must_use]
    pub fn of<T>(result: &Result<T, PeerError>) -> PeerOutcome {
        match result {
            Ok(_) => PeerOutcome::Ok,
            Err(PeerError::NotFound) => PeerOutcome::NotFound,
            Err(PeerError::Rejected(_)) => PeerOutcome::Rejected,
            Err(PeerError::Timeout(_)) => PeerOutcome::Timeout,
            Err(PeerError::Unavailable(_)) => PeerOutcome::Unavailable,
            Err(PeerError::Status { .. }) => PeerOutcome::Status,
            Err(PeerError::OverLimit(_)) => PeerOutcome::OverBudget,
            Err(_) => PeerOutcome::Malformed,
        }
    }
}

impl fmt::Display for PeerOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hears about every fetch from a peer: a hook for metrics, which each transport's pool takes
/// (the HTTP and the gRPC pool alike), so one observer serves a node whatever its wire.
///
/// Called once per fetch, on the task that made it, after the answer (or the failure) is in:
/// keep it cheap and never block in it.
pub trait PeerObserver: Send + Sync + 'static {
    /// A fetch from `peer` (its name, the base URL) ended with `outcome` after `elapsed`.
    fn on_peer_request(&self, peer: &str, outcome: PeerOutcome, elapsed: Duration);
}

/// One fetch from a peer being timed for a [`PeerObserver`]: [`finish`](Self::finish) reports
/// how it ended, and a fetch dropped unfinished (the group's peer timeout passed, so its
/// future was dropped) is reported as [`PeerOutcome::Timeout`]. Every transport's client
/// times its fetches with it, so the observer hears the same thing whatever the wire.
pub struct ObservedFetch<'a> {
    observer: &'a dyn PeerObserver,
    peer: &'a str,
    started: Instant,
    reported: bool,
}

impl<'a> ObservedFetch<'a> {
    /// Starts timing a fetch from `peer` (its name, the base URL).
    #[must_use]
    pub fn start(observer: &'a dyn PeerObserver, peer: &'a str) -> Self {
        ObservedFetch {
            observer,
            peer,
            started: Instant::now(),
            reported: false,
        }
    }

    /// Reports that the fetch ended with `outcome`.
    pub fn finish(mut self, outcome: PeerOutcome) {
        self.report(outcome);
    }

    fn report(&mut self, outcome: PeerOutcome) {
        self.reported = true;
        let elapsed = self.started.elapsed();
        self.observer.on_peer_request(self.peer, outcome, elapsed);
    }
}

impl Drop for ObservedFetch<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.report(PeerOutcome::Timeout);
        }
    }
}

impl fmt::Debug for ObservedFetch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObservedFetch")
            .field("peer", &self.peer)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}
