use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

fn policy() -> HealthPolicy {
    HealthPolicy {
        failures_to_open: 3,
        unreachable_to_open: 1,
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_millis(1600),
        ..HealthPolicy::default()
    }
}

#[test]
fn a_timeout_opens_at_once_and_a_probe_closes_it() {
    let health = Health::new(policy());
    let t0 = Instant::now();
    assert!(health.admit(t0));
    let change = health.record(Outcome::Unreachable, t0, 0);
    assert_eq!(
        change,
        Some(Change::Opened {
            backoff: Duration::from_millis(200)
        })
    );
    assert_eq!(health.state(), PeerState::Open);
    assert!(
        !health.admit(t0 + Duration::from_millis(199)),
        "skipped while open"
    );
    let later = t0 + Duration::from_millis(200);
    assert!(
        health.admit(later),
        "the first caller after the backoff probes"
    );
    assert_eq!(health.state(), PeerState::HalfOpen);
    assert!(!health.admit(later), "one probe at a time");
    assert_eq!(
        health.record(Outcome::Answered, later, 0),
        Some(Change::Closed)
    );
    assert!(health.admit(later));
    assert_eq!(health.openings(), 1);
}

// The caller let through after the backoff is told it is a probe, so that the cluster can
// send the probe apart from a client's request; an ordinary admission is not.
#[test]
fn only_the_caller_after_the_backoff_is_admitted_as_a_probe() {
    let health = Health::new(policy());
    let t0 = Instant::now();
    assert_eq!(health.admit_as(t0), Some(Admitted::Closed));
    health.record(Outcome::Unreachable, t0, 0);
    assert_eq!(health.admit_as(t0), None);
    let later = t0 + Duration::from_millis(200);
    assert_eq!(health.admit_as(later), Some(Admitted::Probe));
    assert_eq!(health.admit_as(later), None, "one probe at a time");
    // A probe that never reports: the next caller after one more backoff probes instead.
    let again = later + Duration::from_millis(200);
    assert_eq!(health.admit_as(again), Some(Admitted::Probe));
    health.record(Outcome::Answered, again, 0);
    assert_eq!(health.admit_as(again), Some(Admitted::Closed));
}

#[test]
fn errors_must_repeat_and_answers_reset_the_count() {
    let health = Health::new(policy());
    let t = Instant::now();
    assert_eq!(health.record(Outcome::Failed, t, 0), None);
    assert_eq!(health.record(Outcome::Failed, t, 0), None);
    assert_eq!(
        health.record(Outcome::Answered, t, 0),
        None,
        "an answer resets the count"
    );
    assert_eq!(health.record(Outcome::Failed, t, 0), None);
    assert_eq!(health.record(Outcome::Failed, t, 0), None);
    assert!(matches!(
        health.record(Outcome::Failed, t, 0),
        Some(Change::Opened { .. })
    ));
}

#[test]
fn failed_probes_double_the_backoff_up_to_the_cap() {
    let health = Health::new(policy());
    let mut t = Instant::now();
    health.record(Outcome::Unreachable, t, 0);
    let mut seen = Vec::new();
    for _ in 0..6 {
        t += Duration::from_secs(2);
        assert!(health.admit(t));
        match health.record(Outcome::Unreachable, t, 0) {
            Some(Change::Opened { backoff }) => seen.push(backoff.as_millis()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, [400, 800, 1600, 1600, 1600, 1600]);
}

#[test]
fn a_probe_that_never_reports_is_replaced_after_a_backoff() {
    let health = Health::new(policy());
    let t0 = Instant::now();
    health.record(Outcome::Unreachable, t0, 0);
    let probe = t0 + Duration::from_millis(200);
    assert!(health.admit(probe));
    assert!(!health.admit(probe + Duration::from_millis(199)));
    assert!(
        health.admit(probe + Duration::from_millis(200)),
        "a lost probe is not forever"
    );
}

#[test]
fn jitter_shortens_a_backoff_by_at_most_a_quarter() {
    for jitter in [0, 1, 12_345, u64::MAX / 3, u64::MAX] {
        let backoff = jittered(Duration::from_millis(400), jitter);
        assert!(backoff <= Duration::from_millis(400) && backoff > Duration::from_millis(300));
    }
    assert_eq!(jittered(Duration::ZERO, 7), Duration::ZERO);
}

// ---- model ----

#[derive(Clone, Debug)]
enum Op {
    Admit {
        after_ms: u64,
    },
    Record {
        outcome: u8,
        after_ms: u64,
        jitter: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..400u64).prop_map(|after_ms| Op::Admit { after_ms }),
        (0..4u8, 0..400u64, any::<u64>()).prop_map(|(outcome, after_ms, jitter)| Op::Record {
            outcome,
            after_ms,
            jitter
        }),
    ]
}

/// The breaker written out as its documentation says it, with plain fields.
#[derive(Debug)]
struct Model {
    policy: HealthPolicy,
    /// `None` while closed; while open, when the next probe may go.
    next_probe: Option<Instant>,
    /// While a probe is out, when it went.
    probe_since: Option<Instant>,
    backoff: Duration,
    failures: u32,
    unreachable: u32,
    openings: u64,
}

impl Model {
    fn admit(&mut self, now: Instant) -> bool {
        match (self.next_probe, self.probe_since) {
            (None, _) => true,
            (Some(_), Some(since)) if now < since + self.backoff => false,
            (Some(at), None) if now < at => false,
            (Some(_), _) => {
                self.probe_since = Some(now);
                true
            }
        }
    }

    fn record(&mut self, outcome: Outcome, now: Instant, jitter: u64) {
        let open = |m: &mut Model, backoff: Duration| {
            m.backoff = backoff;
            m.next_probe = Some(now + jittered(backoff, jitter));
            m.probe_since = None;
            m.openings += 1;
        };
        match (self.next_probe, self.probe_since, outcome) {
            (None, _, Outcome::Answered) => {
                self.failures = 0;
                self.unreachable = 0;
            }
            (None, _, outcome) => {
                if outcome == Outcome::Unreachable {
                    self.unreachable += 1;
                } else {
                    self.failures += 1;
                }
                if outcome == Outcome::Slow
                    || self.failures >= self.policy.failures_to_open
                    || self.unreachable >= self.policy.unreachable_to_open
                {
                    self.failures = 0;
                    self.unreachable = 0;
                    open(self, self.policy.backoff_min);
                }
            }
            (Some(_), Some(_), Outcome::Answered) => {
                self.next_probe = None;
                self.probe_since = None;
            }
            (Some(_), Some(_), _) => {
                let doubled = (self.backoff * 2).min(self.policy.backoff_max);
                open(self, doubled);
            }
            (Some(_), None, _) => {}
        }
    }

    fn state(&self) -> PeerState {
        match (self.next_probe, self.probe_since) {
            (None, _) => PeerState::Closed,
            (Some(_), None) => PeerState::Open,
            (Some(_), Some(_)) => PeerState::HalfOpen,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_breaker_follows_the_model(
        failures_to_open in 1..4u32,
        unreachable_to_open in 1..3u32,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let policy = HealthPolicy { failures_to_open, unreachable_to_open, ..policy() };
        let health = Health::new(policy);
        let mut model = Model {
            policy,
            next_probe: None,
            probe_since: None,
            backoff: policy.backoff_min,
            failures: 0,
            unreachable: 0,
            openings: 0,
        };
        let mut now = Instant::now();
        for op in ops {
            match op {
                Op::Admit { after_ms } => {
                    now += Duration::from_millis(after_ms);
                    prop_assert_eq!(health.admit(now), model.admit(now));
                }
                Op::Record { outcome, after_ms, jitter } => {
                    now += Duration::from_millis(after_ms);
                    let outcome = [
                        Outcome::Answered,
                        Outcome::Unreachable,
                        Outcome::Failed,
                        Outcome::Slow,
                    ][usize::from(outcome)];
                    health.record(outcome, now, jitter);
                    model.record(outcome, now, jitter);
                }
            }
            prop_assert_eq!(health.state(), model.state());
            prop_assert_eq!(health.openings(), model.openings);
            prop_assert!(model.backoff >= policy.backoff_min && model.backoff <= policy.backoff_max);
        }
    }
}

#[test]
fn answers_are_successes_and_a_refusal_is_unreachable() {
    use crate::error::{PeerError, Rejected};
    let of = |e: PeerError| Outcome::of::<()>(&Err(e));
    assert_eq!(Outcome::of(&Ok::<_, PeerError>(())), Outcome::Answered);
    assert_eq!(of(PeerError::NotFound), Outcome::Answered);
    assert_eq!(
        of(PeerError::Rejected(Rejected::new("no"))),
        Outcome::Answered
    );
    assert_eq!(
        of(PeerError::Timeout(Duration::from_secs(1))),
        Outcome::Unreachable
    );
    assert_eq!(
        of(PeerError::Unavailable("refused".into())),
        Outcome::Unreachable
    );
    let status = PeerError::Status {
        status: 500,
        message: String::new(),
    };
    assert_eq!(of(status), Outcome::Failed);
    assert_eq!(of(PeerError::Malformed(String::new())), Outcome::Failed);
}
