//! The time a main-cache hit counts its key's request at: a clock hand moved four times a
//! second by a task, so that a hit reads an atomic instead of the clock.
//!
//! Reading the clock costs about as much as the rest of a main-cache hit together (the
//! system's monotonic clock, then a conversion to ticks), and a hit is what a cache does most.
//! The rate it feeds has a one-minute time constant, so a time up to a quarter of a second
//! old changes a counted request's weight by under half a percent. What is sent to a peer is
//! still read at the precise time ([`Clock::precise`]): a peer's request crosses the network
//! anyway, and the answer it takes away is exact for the requests counted so far.
//!
//! The hand moves only while a tokio runtime runs its task. The task is started with the
//! clock, or by the first hit inside a runtime when the clock was made outside one; until then,
//! and after its runtime shut down, every hit reads the clock. The task's guard says the hand
//! stopped when the task is dropped, whether by abort or by its runtime going away, so a
//! stopped hand is never taken for the time, and the next hit in a runtime starts a new one.
//! The hand is as late as its runtime is busy: a runtime that does not get to its timers for a
//! second leaves hits counted up to a second early, which is still under 2% of their weight.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;

use super::Tick;
use crate::cache::now;

/// How often the hand moves.
pub(crate) const HAND_PERIOD: Duration = Duration::from_millis(250);

/// A rate's clock: the precise time, and the hand's.
pub(crate) struct Clock {
    shared: Arc<Shared>,
    /// The hand's task, to stop it with the clock.
    hand: Mutex<Option<AbortHandle>>,
}

struct Shared {
    /// Time zero of the ticks.
    epoch: Instant,
    /// The time as of the hand's last move, in ticks since `epoch`.
    hand: AtomicU32,
    /// Whether the hand's task is alive and moving it.
    moving: AtomicBool,
    /// Set when a hand's task ran but ended before it first moved: its runtime has no timers
    /// (a runtime built without `enable_time`), so another task would end the same way, and
    /// hits read the clock from then on rather than start a task each. (A task dropped before
    /// it ever ran, by a runtime shutting down, says nothing about the next runtime.)
    gave_up: AtomicBool,
}

impl Shared {
    fn precise(&self) -> Tick {
        Tick::since(self.epoch, now())
    }
}

impl Clock {
    /// A clock starting now, with its hand moved by a task of the current tokio runtime if
    /// there is one.
    pub(crate) fn start() -> Clock {
        let clock = Clock {
            shared: Arc::new(Shared {
                epoch: now(),
                hand: AtomicU32::new(0),
                moving: AtomicBool::new(false),
                gave_up: AtomicBool::new(false),
            }),
            hand: Mutex::new(None),
        };
        clock.start_hand();
        clock
    }

    /// Starts the hand's task on the current runtime, unless there is none or a hand moves.
    fn start_hand(&self) {
        if self.shared.gave_up.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // Only one caller gets to start it; `moving` goes back to false only once the last
        // task is gone, so there is never more than one.
        let won = (self.shared.moving).compare_exchange(
            false,
            true,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if won.is_err() {
            return;
        }
        (self.shared.hand).store(self.shared.precise().0, Ordering::Relaxed);
        let stopped = Stopped {
            shared: Arc::downgrade(&self.shared),
            ran: false,
            moved: false,
        };
        let task = spawn_hand(&runtime, stopped);
        let mut hand = self.hand.lock().unwrap_or_else(PoisonError::into_inner);
        *hand = Some(task);
    }

    /// The time now, read from the clock.
    pub(crate) fn precise(&self) -> Tick {
        self.shared.precise()
    }

    /// The time as of the hand's last move, or now if the hand is not moving.
    pub(crate) fn coarse(&self) -> Tick {
        // Relaxed: the hand is a time, not a signal that anything else was written.
        if self.shared.moving.load(Ordering::Relaxed) {
            return Tick(self.shared.hand.load(Ordering::Relaxed));
        }
        self.start_hand();
        self.precise()
    }

    /// Whether the hand is moving (for tests).
    #[cfg(test)]
    pub(crate) fn is_moving(&self) -> bool {
        self.shared.moving.load(Ordering::Relaxed)
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        // The task would find the clock gone at its next move and stop; aborting stops it
        // now rather than a quarter of a second later.
        let hand = self.hand.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(hand) = hand.take() {
            hand.abort();
        }
    }
}

fn spawn_hand(runtime: &tokio::runtime::Handle, mut stopped: Stopped) -> AbortHandle {
    let task = runtime.spawn(async move {
        stopped.ran = true;
        // Panics in a runtime without timers, which ends the task before its first move.
        let mut moves = tokio::time::interval(HAND_PERIOD);
        // Skip: after a stall, one move to the present, not a burst of moves to catch up.
        moves.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            moves.tick().await;
            let Some(shared) = stopped.shared.upgrade() else {
                break;
            };
            shared.hand.store(shared.precise().0, Ordering::Relaxed);
            stopped.moved = true;
        }
        drop(stopped);
    });
    task.abort_handle()
}

/// Owned by the hand's task: says the hand stopped when the task ends or is dropped.
struct Stopped {
    shared: Weak<Shared>,
    /// Whether the task has started running.
    ran: bool,
    /// Whether the hand has moved at least once.
    moved: bool,
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            if self.ran && !self.moved {
                shared.gave_up.store(true, Ordering::Relaxed);
            }
            shared.moving.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_hand_follows_the_clock_a_move_at_a_time() {
        let clock = Clock::start();
        assert!(clock.is_moving());
        assert_eq!(clock.coarse(), Tick(0));
        // Halfway between two moves: the hand shows the last move, the precise time is on.
        tokio::time::sleep(HAND_PERIOD * 3 + HAND_PERIOD / 2).await;
        let (coarse, precise) = (clock.coarse(), clock.precise());
        let ticks_per_move = super::super::TICKS_PER_SEC / 4;
        assert_eq!(coarse, Tick(3 * ticks_per_move));
        assert_eq!(precise, Tick(3 * ticks_per_move + ticks_per_move / 2));
    }

    #[test]
    fn a_hand_whose_runtime_shut_down_stops_being_read() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let clock = runtime.block_on(async {
            let clock = Clock::start();
            // Let the task run once, so it is a live task that the shutdown drops.
            tokio::time::sleep(HAND_PERIOD * 2).await;
            clock
        });
        assert!(clock.is_moving());
        drop(runtime);
        assert!(
            !clock.is_moving(),
            "a dropped task must say the hand stopped"
        );
        // The next hit in a runtime starts a new hand.
        let again = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        again.block_on(async {
            clock.coarse();
            assert!(clock.is_moving());
            tokio::time::sleep(HAND_PERIOD * 2 + HAND_PERIOD / 2).await;
            assert_eq!(
                clock.coarse(),
                Tick(clock.precise().0 - super::super::TICKS_PER_SEC / 8)
            );
        });
    }

    #[test]
    fn a_clock_made_outside_a_runtime_gets_its_hand_from_the_first_hit_in_one() {
        let clock = Clock::start();
        assert!(!clock.is_moving());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async { clock.coarse() });
        assert!(clock.is_moving());
        // Its runtime went away before the task ever ran: the next runtime gets a hand too.
        drop(runtime);
        assert!(!clock.is_moving());
        let again = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        again.block_on(async { clock.coarse() });
        assert!(clock.is_moving());
    }

    #[test]
    fn in_a_runtime_without_timers_hits_read_the_clock_and_start_no_more_tasks() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let clock = Clock::start();
            // The task runs, panics on the missing timer and ends, before it ever moved.
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            assert!(!clock.is_moving());
            assert!(clock.shared.gave_up.load(Ordering::Relaxed));
            // A hit does not start another one.
            clock.coarse();
            assert!(!clock.is_moving());
        });
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_clock_stops_its_task() {
        let clock = Clock::start();
        let shared = Arc::downgrade(&clock.shared);
        drop(clock);
        tokio::time::sleep(HAND_PERIOD * 2).await;
        assert!(
            shared.upgrade().is_none(),
            "the task must not keep the clock alive"
        );
    }
}
