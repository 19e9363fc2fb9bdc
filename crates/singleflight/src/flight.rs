//! The state machine of a group's flights, all of it behind the group's one lock.
//!
//! A flight is one run of the shared work for one key. It lives in a slot of [`Inner::flights`]
//! from the moment its first caller arrives until its last caller has left, whether that caller
//! took the outcome or was dropped. While new callers may still join it, [`Inner::index`] maps
//! its key to that slot. Each flight goes through
//!
//! ```text
//!              leader dropped, waiters left
//!   Running ────────────────────────────────▶ Handover { heir }
//!      │  ▲                                      │
//!      │  └──────── the heir is polled ──────────┘   (heir dropped: next waiter is heir;
//!      │            and becomes the leader             no waiter left: flight abandoned)
//!      │
//!      └── work finished ──▶ Done(outcome) ── last waiter took its copy ──▶ slot freed
//! ```
//!
//! Every method here runs with the lock held and finishes its mutations before it calls anything
//! that could unwind (a user's `Clone`, `Eq`), so a panic there leaves the state consistent and a
//! poisoned lock is safe to recover. Wakers and dropped flights are handed back to the caller, to
//! be woken and dropped after the lock is released.

use std::borrow::Borrow;
use std::task::Waker;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::Error;
use crate::slab::Slab;

/// What every caller of a flight receives.
pub(crate) type Outcome<V, E> = Result<V, Error<E>>;

/// A flight taken out of the group (its last caller left), handed back so that its key and any
/// outcome are dropped after the lock is released rather than under it.
pub(crate) type Released<K, V, E> = Option<Flight<K, V, E>>;

/// Everything a group guards with its lock.
pub(crate) struct Inner<K, V, E> {
    /// Key → slot in `flights` of the flight that new callers for that key join. It holds slot
    /// numbers, not keys: the key is stored once, in the flight, so neither a call nor its
    /// completion clones it.
    index: HashTable<usize>,
    /// Every flight that still has a caller: running, being handed over, or finished with
    /// outcomes not yet collected. Forgotten flights stay here, outside the index.
    flights: Slab<Flight<K, V, E>>,
}

/// One run of the work for one key.
pub(crate) struct Flight<K, V, E> {
    key: K,
    hash: u64,
    /// Whether `index` points at this flight, i.e. new callers join it.
    indexed: bool,
    phase: Phase<V, E>,
    /// Callers waiting for the outcome, each with the waker of its last poll. During a handover
    /// the heir is one of them until it claims the lead.
    waiters: Slab<Option<Waker>>,
}

enum Phase<V, E> {
    /// A leader is running the work.
    Running,
    /// The leader went away before finishing; the waiter in slot `heir` has been woken to take
    /// over with its own closure.
    Handover { heir: usize },
    /// The work finished; the callers still in `waiters` have yet to take their copy.
    Done(Outcome<V, E>),
}

/// How a caller entered a flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joined {
    /// It started the flight and must run its own work.
    Lead { flight: usize },
    /// It waits in slot `slot` of `flight`'s waiters.
    Wait { flight: usize, slot: usize },
}

/// What polling a waiter found.
pub(crate) enum Polled<V, E> {
    /// The flight is still running (or being handed to another waiter).
    Pending,
    /// The flight finished with this outcome; the waiter has left it.
    Done(Outcome<V, E>),
    /// The waiter is the heir: it has become the flight's leader and must run its own work.
    Lead,
}

impl<K, V, E> Inner<K, V, E> {
    pub(crate) const fn new() -> Self {
        Inner {
            index: HashTable::new(),
            flights: Slab::new(),
        }
    }

    /// Flights that still hold state: running, being handed over, or with outcomes not yet
    /// collected (forgotten ones included).
    pub(crate) fn len(&self) -> usize {
        self.flights.len()
    }

    /// The flight `key` would join, if any.
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let flights = &self.flights;
        self.index
            .find(hash, |&slot| {
                flights
                    .get(slot)
                    .is_some_and(|flight| flight.key.borrow() == key)
            })
            .copied()
    }

    /// Enters the caller into the running flight for `key`, or starts one with it as leader.
    /// Returns the key when a flight already holds one, to be dropped after unlocking.
    pub(crate) fn join(&mut self, key: K, hash: u64) -> (Joined, Option<K>)
    where
        K: Eq,
    {
        let Inner { index, flights } = self;
        // One probe finds the running flight or the place for a new one.
        let entry = index.entry(
            hash,
            |&slot| flights.get(slot).is_some_and(|flight| flight.key == key),
            |&slot| flights.get(slot).map_or(0, |flight| flight.hash),
        );
        match entry {
            Entry::Occupied(running) => {
                let flight = *running.get();
                let slot = live(flights, flight).waiters.insert(None);
                (Joined::Wait { flight, slot }, Some(key))
            }
            Entry::Vacant(place) => {
                let flight = flights.next_index();
                place.insert(flight);
                let inserted = flights.insert(Flight {
                    key,
                    hash,
                    indexed: true,
                    phase: Phase::Running,
                    waiters: Slab::new(),
                });
                debug_assert_eq!(inserted, flight);
                (Joined::Lead { flight }, None)
            }
        }
    }

    /// Polls waiter `slot` of `flight`: takes its copy of a finished outcome, claims the lead if
    /// it is the heir, or records `waker` and stays pending.
    ///
    /// Also returns the flight itself when this waiter was the last one out, to be dropped after
    /// unlocking.
    pub(crate) fn poll_waiter(
        &mut self,
        flight: usize,
        slot: usize,
        waker: &Waker,
    ) -> (Polled<V, E>, Released<K, V, E>)
    where
        V: Clone,
    {
        let state = self.flight_mut(flight);
        match &mut state.phase {
            Phase::Done(outcome) => {
                if state.waiters.len() > 1 {
                    // Clone before leaving the flight: if `V::clone` panics, this waiter is still
                    // registered and its drop takes it out cleanly.
                    let outcome = outcome.clone();
                    state.waiters.remove(slot);
                    return (Polled::Done(outcome), None);
                }
                // The last waiter takes the outcome itself, saving a clone.
                let mut finished = self.remove_flight(flight);
                let Phase::Done(outcome) = std::mem::replace(&mut finished.phase, Phase::Running)
                else {
                    unreachable!("matched above");
                };
                (Polled::Done(outcome), Some(finished))
            }
            Phase::Handover { heir } if *heir == slot => {
                state.waiters.remove(slot);
                state.phase = Phase::Running;
                (Polled::Lead, None)
            }
            Phase::Running | Phase::Handover { .. } => {
                let stored = state.waiters.get_mut(slot).expect("waiter slot is live");
                match stored {
                    Some(known) if known.will_wake(waker) => {}
                    _ => *stored = Some(waker.clone()),
                }
                (Polled::Pending, None)
            }
        }
    }

    /// Waiter `slot` of `flight` was dropped before it took an outcome or the lead.
    ///
    /// If it was the heir, the lead passes to another waiter, whose waker is returned.
    pub(crate) fn waiter_gone(
        &mut self,
        flight: usize,
        slot: usize,
    ) -> (Option<Waker>, Released<K, V, E>) {
        let state = self.flight_mut(flight);
        // Its waker (an executor's code) is dropped at the end, once the state is consistent.
        let _departed = state.waiters.remove(slot);
        match state.phase {
            Phase::Handover { heir } if heir == slot => self.hand_over(flight),
            Phase::Done(_) if state.waiters.is_empty() => (None, Some(self.remove_flight(flight))),
            Phase::Running | Phase::Handover { .. } | Phase::Done(_) => (None, None),
        }
    }

    /// The leader of `flight` was dropped before its work finished.
    pub(crate) fn leader_gone(&mut self, flight: usize) -> (Option<Waker>, Released<K, V, E>) {
        self.hand_over(flight)
    }

    /// Passes the lead of a leaderless `flight` to its first waiter, returning that waiter's
    /// waker; with no waiter left, the flight is abandoned and returned.
    fn hand_over(&mut self, flight: usize) -> (Option<Waker>, Released<K, V, E>) {
        let state = self.flight_mut(flight);
        match state.waiters.first() {
            Some(heir) => {
                state.phase = Phase::Handover { heir };
                let waker = state.waiters.get_mut(heir).and_then(Option::take);
                (waker, None)
            }
            None => (None, Some(self.remove_flight(flight))),
        }
    }

    /// The leader of `flight` finished with `outcome`: the key is free for a new flight, and each
    /// waiter gets a copy.
    ///
    /// Returns the leader's outcome, the waiters' wakers and, when nobody waited, the flight to
    /// drop after unlocking. With nobody waiting the outcome is not cloned at all.
    pub(crate) fn complete(
        &mut self,
        flight: usize,
        outcome: Outcome<V, E>,
    ) -> (Outcome<V, E>, Vec<Waker>, Released<K, V, E>)
    where
        V: Clone,
    {
        if self.flight_mut(flight).waiters.is_empty() {
            return (outcome, Vec::new(), Some(self.remove_flight(flight)));
        }
        let state = live(&mut self.flights, flight);
        // Clone first, mutate after: a panicking `V::clone` leaves the flight running, and the
        // leader's drop then hands it over.
        let shared = outcome.clone();
        let wakers = state
            .waiters
            .iter_mut()
            .filter_map(|(_, waker)| waker.take())
            .collect();
        state.phase = Phase::Done(shared);
        Self::unindex(&mut self.index, state, flight);
        (outcome, wakers, None)
    }

    /// Detaches the flight for `key` from the index, so the next call starts a new one.
    pub(crate) fn forget<Q>(&mut self, hash: u64, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if let Some(flight) = self.find(hash, key) {
            let state = live(&mut self.flights, flight);
            Self::unindex(&mut self.index, state, flight);
        }
    }

    /// Callers that share the flight for `key`: its leader (if running) and its waiters.
    pub(crate) fn callers<Q>(&self, hash: u64, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.find(hash, key)
            .and_then(|flight| self.flights.get(flight))
            .map_or(0, |state| {
                // During a handover the would-be leader is still counted among the waiters.
                state.waiters.len() + usize::from(matches!(state.phase, Phase::Running))
            })
    }

    fn flight_mut(&mut self, flight: usize) -> &mut Flight<K, V, E> {
        live(&mut self.flights, flight)
    }

    /// Takes `flight` out of the slab (and the index, if still there).
    fn remove_flight(&mut self, flight: usize) -> Flight<K, V, E> {
        let mut state = self
            .flights
            .remove(flight)
            .expect("a caller's flight outlives the caller");
        Self::unindex(&mut self.index, &mut state, flight);
        state
    }

    fn unindex(index: &mut HashTable<usize>, state: &mut Flight<K, V, E>, flight: usize) {
        if std::mem::take(&mut state.indexed) {
            // Found by slot number, not by key: no user `Eq` runs here.
            if let Ok(entry) = index.find_entry(state.hash, |&slot| slot == flight) {
                entry.remove();
            }
        }
    }
}

/// The flight in slot `flight`, which a caller of it guarantees is occupied.
fn live<K, V, E>(flights: &mut Slab<Flight<K, V, E>>, flight: usize) -> &mut Flight<K, V, E> {
    flights
        .get_mut(flight)
        .expect("a caller's flight outlives the caller")
}

#[cfg(test)]
impl<K: Eq, V, E> Inner<K, V, E> {
    /// Checks every invariant the methods above rely on; panics on the first violation.
    pub(crate) fn validate(&self) {
        self.flights.validate();
        let mut indexed = 0;
        for (slot, flight) in self.flights.iter() {
            flight.waiters.validate();
            match flight.phase {
                Phase::Running => {}
                Phase::Handover { heir } => assert!(
                    flight.waiters.get(heir).is_some(),
                    "flight {slot}: the heir is not among the waiters"
                ),
                Phase::Done(_) => {
                    assert!(
                        !flight.indexed,
                        "flight {slot}: finished but still joinable"
                    );
                    assert!(
                        !flight.waiters.is_empty(),
                        "flight {slot}: finished with nobody to collect, yet kept"
                    );
                }
            }
            if flight.indexed {
                indexed += 1;
                assert_eq!(
                    self.index.find(flight.hash, |&s| s == slot),
                    Some(&slot),
                    "flight {slot}: marked indexed but missing from the index"
                );
                assert_eq!(
                    self.find(flight.hash, &flight.key),
                    Some(slot),
                    "flight {slot}: its key leads elsewhere"
                );
            }
        }
        assert_eq!(indexed, self.index.len(), "index holds stale slots");
    }
}
