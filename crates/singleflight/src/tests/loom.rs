//! Model-checked interleavings of the group's lock-protected state machine.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p geecache-singleflight --lib --release`. loom
//! swaps the group's `Mutex` for its own and explores every order in which the threads below can
//! take it (bounded by `LOOM_MAX_PREEMPTIONS` if set). A thread blocked in `block_on` whose waker
//! is never called makes loom report a deadlock, so "no waiter hangs" is checked, not assumed.

use std::future::{Future, pending};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use loom::future::block_on;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::{Error, Group};

/// Polls a call once and drops it: a caller that gives up (times out) at the worst moment.
fn poll_once_then_drop<F: Future>(call: F) -> Poll<F::Output> {
    pin!(call).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn two_callers_share_a_flight_or_run_one_after_the_other() {
    loom::model(|| {
        let group = Arc::new(Group::<u8, usize, ()>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let call = || {
            let (group, runs) = (group.clone(), runs.clone());
            thread::spawn(move || {
                block_on(group.work(1, || async { Ok(runs.fetch_add(1, Ordering::SeqCst) + 1) }))
            })
        };
        let (a, b) = (call(), call());
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        match runs.load(Ordering::SeqCst) {
            1 => assert_eq!((a, b), (Ok(1), Ok(1)), "one flight, one value"),
            2 => assert_eq!(a.unwrap() + b.unwrap(), 3, "two flights in turn"),
            runs => panic!("{runs} runs for two callers"),
        }
        group.validate();
        assert_eq!(group.in_flight(), 0);
    });
}

#[test]
fn a_cancelled_leader_never_strands_a_waiter() {
    loom::model(|| {
        let group = Arc::new(Group::<u8, u8, ()>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let quitter = thread::spawn({
            let group = group.clone();
            move || {
                // Leads with work that never finishes (or joins the other flight), then leaves.
                let polled = poll_once_then_drop(group.work(1, pending));
                assert!(matches!(polled, Poll::Pending | Poll::Ready(Ok(2))));
            }
        });
        let stayer = thread::spawn({
            let (group, runs) = (group.clone(), runs.clone());
            move || {
                block_on(group.work(1, || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(2)
                }))
            }
        });
        quitter.join().unwrap();
        // The quitter's work never yields a value: the stayer can only finish by running its own.
        assert_eq!(stayer.join().unwrap(), Ok(2));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        group.validate();
        assert_eq!(group.in_flight(), 0);
    });
}

/// Three threads: explored with at most three preemptions unless `LOOM_MAX_PREEMPTIONS` says
/// otherwise (the exhaustive run takes minutes and has found nothing the bounded one misses).
#[test]
fn the_lead_survives_a_leader_and_an_heir_leaving_together() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound.get_or_insert(3);
    model.check(|| {
        let group = Arc::new(Group::<u8, u8, ()>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let quitters: Vec<_> = (0..2)
            .map(|_| {
                let group = group.clone();
                thread::spawn(move || {
                    let polled = poll_once_then_drop(group.work(1, pending));
                    assert!(matches!(polled, Poll::Pending | Poll::Ready(Ok(3))));
                })
            })
            .collect();
        let stayer = thread::spawn({
            let (group, runs) = (group.clone(), runs.clone());
            move || {
                block_on(group.work(1, || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(3)
                }))
            }
        });
        for quitter in quitters {
            quitter.join().unwrap();
        }
        assert_eq!(stayer.join().unwrap(), Ok(3));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        group.validate();
        assert_eq!(group.in_flight(), 0);
    });
}

#[test]
fn forget_racing_a_flight_loses_nobody() {
    loom::model(|| {
        let group = Arc::new(Group::<u8, u8, ()>::new());
        let callers: Vec<_> = [10u8, 20]
            .into_iter()
            .map(|value| {
                let group = group.clone();
                thread::spawn(move || block_on(group.work(1, || async move { Ok(value) })))
            })
            .collect();
        group.forget(&1);
        for caller in callers {
            let value = caller.join().unwrap().unwrap();
            assert!(value == 10 || value == 20);
        }
        group.validate();
        assert_eq!(group.in_flight(), 0);
    });
}

#[test]
fn an_error_reaches_a_concurrent_waiter_as_the_same_arc() {
    loom::model(|| {
        let group = Arc::new(Group::<u8, u8, &'static str>::new());
        let call = || {
            let group = group.clone();
            thread::spawn(move || block_on(group.work(1, || async { Err("down") })))
        };
        let (a, b) = (call(), call());
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        let (Err(Error::Failed(a)), Err(Error::Failed(b))) = (a, b) else {
            panic!("both callers fail");
        };
        assert_eq!((*a, *b), ("down", "down"));
        // Shared when they were in one flight; two flights give two Arcs, never a lost error.
        assert!(std::sync::Arc::ptr_eq(&a, &b) || std::sync::Arc::strong_count(&a) == 1);
        group.validate();
        assert_eq!(group.in_flight(), 0);
    });
}
