//! Model-based test of the whole state machine, through the public API.
//!
//! A deterministic harness plays callers against one group: it creates `work` calls, polls them
//! one at a time with wakers that count their wake-ups, drops them at any point, lets the work of
//! a leader end (value, error or panic) and forgets keys. A plain model of flights predicts, after
//! every step, which closures run, what each call returns, who is woken, how many callers each key
//! has and how many flights the group holds; `validate()` checks the group's internal invariants.
//! At the end every caller is driven to completion by polling only callers that were woken, so a
//! lost wake-up shows up as a stranded caller.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use proptest::prelude::*;

use super::{DELIBERATE, quiet_deliberate_panics};
use crate::{Error, Group};

const KEYS: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Value,
    Failure,
    Panic,
}

#[derive(Debug, Clone)]
enum Op {
    /// A new call for `key`; with `panics_on_call`, its closure panics if it is ever called.
    Call {
        key: u8,
        panics_on_call: bool,
    },
    Poll(usize),
    Drop(usize),
    /// Lets the work of the caller at this position end, if that caller is running work.
    Release(usize, Ending),
    Forget(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let ending = prop_oneof![
        4 => Just(Ending::Value),
        2 => Just(Ending::Failure),
        1 => Just(Ending::Panic),
    ];
    prop_oneof![
        3 => (0..KEYS, proptest::bool::weighted(0.1))
            .prop_map(|(key, panics_on_call)| Op::Call { key, panics_on_call }),
        6 => any::<usize>().prop_map(Op::Poll),
        2 => any::<usize>().prop_map(Op::Drop),
        2 => (any::<usize>(), ending).prop_map(|(i, e)| Op::Release(i, e)),
        1 => (0..KEYS).prop_map(Op::Forget),
    ]
}

/// What the harness shares with the work futures it hands to the group.
#[derive(Default)]
struct Works {
    /// Callers whose closure has been called, in order.
    started: Vec<usize>,
    /// Callers whose work future exists (created and not yet dropped).
    running: BTreeSet<usize>,
    /// How the work of each released caller ends.
    endings: BTreeMap<usize, Ending>,
    /// The waker each work future was last polled with.
    wakers: BTreeMap<usize, Waker>,
}

/// A caller's work: pending until the harness releases it.
struct Work {
    caller: usize,
    works: Rc<RefCell<Works>>,
}

impl Future for Work {
    type Output = Result<u32, u32>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut works = self.works.borrow_mut();
        let id = u32::try_from(self.caller).expect("few callers");
        match works.endings.get(&self.caller).copied() {
            None => {
                works.wakers.insert(self.caller, cx.waker().clone());
                Poll::Pending
            }
            Some(Ending::Value) => Poll::Ready(Ok(id)),
            Some(Ending::Failure) => Poll::Ready(Err(id)),
            Some(Ending::Panic) => {
                drop(works);
                panic!("{DELIBERATE}: work of caller {id}");
            }
        }
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        self.works.borrow_mut().running.remove(&self.caller);
    }
}

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

type Call<'g> = Pin<Box<dyn Future<Output = Result<u32, Error<u32>>> + 'g>>;

struct Caller<'g> {
    key: u8,
    panics_on_call: bool,
    call: Option<Call<'g>>,
    wakes: Arc<CountingWaker>,
    /// The wake count when the caller was last polled.
    seen: usize,
}

impl Caller<'_> {
    fn wakes(&self) -> usize {
        self.wakes.0.load(Ordering::SeqCst)
    }
}

/// What a flight ended with, as the model knows it.
#[derive(Debug, Clone)]
enum Landed {
    Value(u32),
    Failed(Arc<u32>),
    Panicked,
}

#[derive(Debug)]
struct Flight {
    key: u8,
    indexed: bool,
    leader: Option<usize>,
    waiters: BTreeSet<usize>,
    heir: Option<usize>,
    landed: Option<Landed>,
}

impl Flight {
    fn is_over(&self) -> bool {
        self.leader.is_none() && self.waiters.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Created, never polled: it has not joined anything yet.
    Fresh,
    Leading(usize),
    Waiting(usize),
    Finished,
}

#[derive(Default)]
struct Model {
    flights: BTreeMap<usize, Flight>,
    next_flight: usize,
    index: BTreeMap<u8, usize>,
    roles: Vec<Role>,
}

impl Model {
    fn unindex(&mut self, flight: usize) {
        let state = self.flights.get_mut(&flight).expect("live flight");
        if std::mem::take(&mut state.indexed) {
            self.index.remove(&state.key);
        }
    }

    /// Drops the flight from the model once nobody is left in it.
    fn collect(&mut self, flight: usize) {
        if self.flights[&flight].is_over() {
            self.unindex(flight);
            self.flights.remove(&flight);
        }
    }

    fn callers(&self, key: u8) -> usize {
        self.index.get(&key).map_or(0, |flight| {
            let state = &self.flights[flight];
            state.waiters.len() + usize::from(state.leader.is_some())
        })
    }
}

struct Harness<'g> {
    group: &'g Group<u8, u32, u32>,
    works: Rc<RefCell<Works>>,
    callers: Vec<Caller<'g>>,
    model: Model,
}

impl<'g> Harness<'g> {
    fn new(group: &'g Group<u8, u32, u32>) -> Self {
        Harness {
            group,
            works: Rc::default(),
            callers: Vec::new(),
            model: Model::default(),
        }
    }

    fn live(&self, pick: usize) -> Option<usize> {
        let live: Vec<usize> = (0..self.callers.len())
            .filter(|&c| self.callers[c].call.is_some())
            .collect();
        (!live.is_empty()).then(|| live[pick % live.len()])
    }

    fn wake_counts(&self) -> Vec<usize> {
        self.callers.iter().map(Caller::wakes).collect()
    }

    /// Callers woken since `before` was taken, with how often.
    fn woken_since(&self, before: &[usize]) -> BTreeMap<usize, usize> {
        self.callers
            .iter()
            .enumerate()
            .filter_map(|(c, caller)| {
                let old = before.get(c).copied().unwrap_or(0);
                (caller.wakes() != old).then(|| (c, caller.wakes() - old))
            })
            .collect()
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Call {
                key,
                panics_on_call,
            } => self.call(key, panics_on_call),
            Op::Poll(pick) => {
                if let Some(c) = self.live(pick) {
                    self.poll(c);
                }
            }
            Op::Drop(pick) => {
                if let Some(c) = self.live(pick) {
                    self.drop_caller(c);
                }
            }
            Op::Release(pick, ending) => {
                if let Some(c) = self.live(pick) {
                    self.release(c, ending);
                }
            }
            Op::Forget(key) => {
                self.group.forget(&key);
                if let Some(&flight) = self.model.index.get(&key) {
                    self.model.unindex(flight);
                }
            }
        }
        self.check();
    }

    fn call(&mut self, key: u8, panics_on_call: bool) {
        let id = self.callers.len();
        let works = Rc::clone(&self.works);
        let work = move || {
            works.borrow_mut().started.push(id);
            assert!(!panics_on_call, "{DELIBERATE}: closure of caller {id}");
            works.borrow_mut().running.insert(id);
            Work { caller: id, works }
        };
        self.callers.push(Caller {
            key,
            panics_on_call,
            call: Some(Box::pin(self.group.work(key, work))),
            wakes: Arc::default(),
            seen: 0,
        });
        self.model.roles.push(Role::Fresh);
    }

    fn release(&mut self, c: usize, ending: Ending) {
        let Role::Leading(_) = self.model.roles[c] else {
            return;
        };
        let before = self.wake_counts();
        let waker = {
            let mut works = self.works.borrow_mut();
            if works.endings.contains_key(&c) {
                return;
            }
            works.endings.insert(c, ending);
            works.wakers.get(&c).cloned()
        };
        // The work's own wake-up, as a real I/O source would do it.
        waker.expect("a leader's work has been polled").wake();
        let woken = self.woken_since(&before);
        assert_eq!(woken, BTreeMap::from([(c, 1)]), "release wakes its leader");
    }

    fn poll(&mut self, c: usize) {
        let before = self.wake_counts();
        let started_before = self.works.borrow().started.len();
        let caller = &mut self.callers[c];
        caller.seen = caller.wakes();
        let waker = Waker::from(Arc::clone(&caller.wakes));
        let call = caller.call.as_mut().expect("polled a live caller");
        let polled = catch_unwind(AssertUnwindSafe(|| {
            call.as_mut().poll(&mut Context::from_waker(&waker))
        }));
        let started: Vec<usize> = self.works.borrow().started[started_before..].to_vec();

        // What the model expects this poll to do.
        let role = self.model.roles[c];
        let mut expect_start = false;
        let flight = match role {
            Role::Fresh => {
                let key = self.callers[c].key;
                if let Some(&flight) = self.model.index.get(&key) {
                    self.model
                        .flights
                        .get_mut(&flight)
                        .unwrap()
                        .waiters
                        .insert(c);
                    self.model.roles[c] = Role::Waiting(flight);
                } else {
                    let flight = self.model.next_flight;
                    self.model.next_flight += 1;
                    self.model.flights.insert(
                        flight,
                        Flight {
                            key,
                            indexed: true,
                            leader: Some(c),
                            waiters: BTreeSet::new(),
                            heir: None,
                            landed: None,
                        },
                    );
                    self.model.index.insert(key, flight);
                    self.model.roles[c] = Role::Leading(flight);
                    expect_start = true;
                }
                self.model.roles[c]
            }
            Role::Waiting(flight) => {
                let state = self.model.flights.get_mut(&flight).unwrap();
                if state.landed.is_none() && state.heir == Some(c) {
                    state.heir = None;
                    state.waiters.remove(&c);
                    state.leader = Some(c);
                    self.model.roles[c] = Role::Leading(flight);
                    expect_start = true;
                }
                self.model.roles[c]
            }
            Role::Leading(_) => role,
            Role::Finished => unreachable!("finished callers are not live"),
        };
        assert_eq!(
            started,
            if expect_start { vec![c] } else { vec![] },
            "caller {c} ({role:?}): closures called"
        );

        let mut woken_expected = BTreeMap::new();
        match flight {
            Role::Leading(flight) => {
                // A leader ends when its closure panics or its work was released.
                let ending = if self.callers[c].panics_on_call {
                    Some(Ending::Panic)
                } else {
                    self.works.borrow().endings.get(&c).copied()
                };
                match ending {
                    None => assert!(
                        matches!(polled, Ok(Poll::Pending)),
                        "caller {c}: unreleased work is pending"
                    ),
                    Some(ending) => {
                        let landed = match (ending, polled) {
                            (Ending::Value, Ok(Poll::Ready(Ok(v)))) => {
                                assert_eq!(v as usize, c, "a leader gets its own value");
                                Landed::Value(v)
                            }
                            (Ending::Failure, Ok(Poll::Ready(Err(Error::Failed(e))))) => {
                                assert_eq!(*e as usize, c, "a leader gets its own error");
                                Landed::Failed(e)
                            }
                            (Ending::Panic, Err(_)) => Landed::Panicked,
                            (ending, other) => panic!(
                                "caller {c}: work ending {ending:?} gave {:?}",
                                other.map_err(|_| "a panic")
                            ),
                        };
                        let state = self.model.flights.get_mut(&flight).unwrap();
                        state.leader = None;
                        state.landed = Some(landed);
                        woken_expected = state.waiters.iter().map(|&w| (w, 1)).collect();
                        self.model.unindex(flight);
                        self.model.collect(flight);
                        self.finish(c);
                    }
                }
            }
            Role::Waiting(flight) => {
                let state = &self.model.flights[&flight];
                match (&state.landed, polled) {
                    (None, Ok(Poll::Pending)) => {}
                    (Some(Landed::Value(v)), Ok(Poll::Ready(Ok(got)))) => assert_eq!(*v, got),
                    (Some(Landed::Failed(e)), Ok(Poll::Ready(Err(Error::Failed(got))))) => {
                        assert!(Arc::ptr_eq(e, &got), "caller {c}: a different Arc")
                    }
                    (Some(Landed::Panicked), Ok(Poll::Ready(Err(Error::Panicked)))) => {}
                    (landed, got) => panic!(
                        "caller {c}: flight landed {landed:?}, poll gave {:?}",
                        got.map_err(|_| "a panic")
                    ),
                }
                if state.landed.is_some() {
                    self.model
                        .flights
                        .get_mut(&flight)
                        .unwrap()
                        .waiters
                        .remove(&c);
                    self.model.collect(flight);
                    self.finish(c);
                }
            }
            Role::Fresh | Role::Finished => unreachable!(),
        }
        assert_eq!(
            self.woken_since(&before),
            woken_expected,
            "poll of caller {c}: wake-ups"
        );
    }

    fn finish(&mut self, c: usize) {
        self.model.roles[c] = Role::Finished;
        self.callers[c].call = None;
    }

    fn drop_caller(&mut self, c: usize) {
        let before = self.wake_counts();
        drop(self.callers[c].call.take());
        let role = std::mem::replace(&mut self.model.roles[c], Role::Finished);
        let woken = self.woken_since(&before);
        let (flight, lost_lead) = match role {
            Role::Fresh => {
                assert!(woken.is_empty(), "an unpolled call touches nothing");
                return;
            }
            Role::Leading(flight) => {
                assert!(
                    !self.works.borrow().running.contains(&c),
                    "a dropped leader's work is dropped with it"
                );
                self.model.flights.get_mut(&flight).unwrap().leader = None;
                (flight, true)
            }
            Role::Waiting(flight) => {
                let state = self.model.flights.get_mut(&flight).unwrap();
                state.waiters.remove(&c);
                let was_heir = state.heir == Some(c);
                if was_heir {
                    state.heir = None;
                }
                (flight, was_heir)
            }
            Role::Finished => unreachable!("finished callers are not live"),
        };
        let state = self.model.flights.get_mut(&flight).unwrap();
        if lost_lead && !state.waiters.is_empty() {
            // Exactly one remaining waiter is woken to take over; which one is the group's choice.
            assert_eq!(woken.len(), 1, "one heir is woken, got {woken:?}");
            let (&heir, &times) = woken.iter().next().unwrap();
            assert_eq!(times, 1);
            assert!(state.waiters.contains(&heir), "the heir {heir} is a waiter");
            state.heir = Some(heir);
        } else {
            assert!(woken.is_empty(), "dropping caller {c} woke {woken:?}");
        }
        self.model.collect(flight);
    }

    fn check(&self) {
        self.group.validate();
        assert_eq!(
            self.group.in_flight(),
            self.model.flights.len(),
            "flights held"
        );
        for key in 0..KEYS {
            assert_eq!(
                self.group.callers(&key),
                self.model.callers(key),
                "callers of {key}"
            );
        }
        let leaders: BTreeSet<usize> = self
            .model
            .flights
            .values()
            .filter_map(|flight| flight.leader)
            .collect();
        assert_eq!(
            self.works.borrow().running,
            leaders,
            "work runs for exactly the current leaders"
        );
    }

    /// Ends every pending work with a value and polls woken callers until none is left.
    fn drain(&mut self) {
        for _round in 0..4 * self.callers.len() + 4 {
            let mut progressed = false;
            for c in 0..self.callers.len() {
                if self.callers[c].call.is_none() {
                    continue;
                }
                if let Role::Leading(_) = self.model.roles[c] {
                    self.release(c, Ending::Value);
                    self.check();
                }
                let caller = &self.callers[c];
                if self.model.roles[c] == Role::Fresh || caller.wakes() != caller.seen {
                    self.poll(c);
                    self.check();
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        let stranded: Vec<usize> = (0..self.callers.len())
            .filter(|&c| self.callers[c].call.is_some())
            .collect();
        assert!(stranded.is_empty(), "callers never woken: {stranded:?}");
        assert_eq!(self.group.in_flight(), 0, "state left behind");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn group_matches_the_model(ops in proptest::collection::vec(op(), 0..80)) {
        quiet_deliberate_panics();
        let group = Group::new();
        let mut harness = Harness::new(&group);
        for op in &ops {
            harness.apply(op);
        }
        harness.drain();
    }
}
