use std::time::Duration;

use tokio::time::Instant;

/// Whether a watch stream still reaches etcd, judged by when it last heard from it.
///
/// A watch with nothing to report is silent, so silence alone says nothing. After
/// [`quiet`](Liveness::quiet) without a message the watch asks etcd for a progress report;
/// etcd answers at once, so a second stretch of silence means the connection no longer
/// carries anything (etcd stopped, or packets between the two are dropped).
///
/// Why not the connection's HTTP/2 pings alone: etcd refuses pings more often than every 5 s,
/// so with a ping timeout they find a dead connection only after up to 15 s. A lease of the
/// default 10 s TTL runs out in an outage of two thirds of that (its keep-alives go every
/// third), and a watch that outlives such an outage delivers the expiries of every lease and
/// then the registrations, one by one: rings that shrink and grow again, keys moved and back.
/// Judged dead after at most a third of the TTL, the watch ends before any lease can run out,
/// and the read after the outage holds the members it misses while they register again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Liveness {
    quiet: Duration,
    heard: Instant,
    /// When the probe of the present silence was asked for, if it was.
    probed: Option<Instant>,
}

/// What [`Liveness::due`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Ask etcd for a progress report.
    Probe,
    /// The probe went unanswered: end the watch.
    Dead,
}

impl Liveness {
    /// A watch opened at `now`, for a cluster whose leases live `ttl`.
    pub(crate) fn new(ttl: Duration, now: Instant) -> Self {
        Liveness {
            quiet: ttl / 6,
            heard: now,
            probed: None,
        }
    }

    /// How long the watch may be silent before it is probed, and how long a probe may go
    /// unanswered.
    pub(crate) fn quiet(&self) -> Duration {
        self.quiet
    }

    /// A message arrived at `now`: an event, the answer to a probe, anything.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.heard = now;
        self.probed = None;
    }

    /// When [`due`](Liveness::due) next has something to say.
    pub(crate) fn deadline(&self) -> Instant {
        self.probed.unwrap_or(self.heard) + self.quiet
    }

    /// What is due at `now`, if anything. The watch is dead only once a probe went
    /// unanswered for `quiet`, never on silence alone: a task that woke late must ask first.
    pub(crate) fn due(&mut self, now: Instant) -> Option<Due> {
        match self.probed {
            Some(at) if now >= at + self.quiet => Some(Due::Dead),
            None if now >= self.heard + self.quiet => {
                self.probed = Some(now);
                Some(Due::Probe)
            }
            _ => None,
        }
    }
}
