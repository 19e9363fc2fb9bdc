//! A cancelled leader: the waiters neither hang nor fail, and exactly one of them re-runs the
//! work. These tests guard the bug most singleflight ports have: waiters parked on a channel
//! that the dropped leader never fills (a hang), or all woken with a "leader dropped" error (a
//! spurious failure), or all re-running the work at once (a second stampede).

use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use geecache_singleflight::Group;
use tokio::sync::Semaphore;

use crate::{poll_once, yield_until};

#[tokio::test]
async fn a_dropped_leader_hands_over_to_exactly_one_waiter() {
    const WAITERS: usize = 8;
    let group = Group::<&str, usize, ()>::new();
    let reruns = AtomicUsize::new(0);

    let mut leader = Box::pin(group.work("k", pending));
    assert!(poll_once(&mut leader).await.is_pending());
    let mut waiters: Vec<_> = (0..WAITERS)
        .map(|i| {
            let reruns = &reruns;
            Box::pin(group.work("k", move || async move {
                reruns.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                Ok(i)
            }))
        })
        .collect();
    for waiter in &mut waiters {
        assert!(poll_once(waiter).await.is_pending());
    }
    assert_eq!(group.callers("k"), WAITERS + 1);

    drop(leader);
    let results = join_all(waiters).await;
    assert_eq!(
        reruns.load(Ordering::SeqCst),
        1,
        "one waiter re-ran the work"
    );
    let value = results[0].clone().expect("a value, not an error");
    assert!(
        value < WAITERS,
        "the value comes from a waiter's own closure"
    );
    assert!(results.iter().all(|r| *r == Ok(value)), "{results:?}");
    assert_eq!(group.in_flight(), 0);
}

/// The case that happens in production: the leading request times out.
#[tokio::test(start_paused = true)]
async fn a_leader_that_times_out_does_not_strand_its_waiters() {
    let group = Arc::new(Group::<String, &'static str, ()>::new());
    let reruns = Arc::new(AtomicUsize::new(0));

    let leader = tokio::spawn({
        let group = group.clone();
        async move {
            let slow_source = || async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok("from the slow source")
            };
            tokio::time::timeout(
                Duration::from_secs(1),
                group.work("k".to_owned(), slow_source),
            )
            .await
        }
    });
    assert!(yield_until(100, || group.callers("k") == 1).await);
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let (group, reruns) = (group.clone(), reruns.clone());
            tokio::spawn(async move {
                group
                    .work("k".to_owned(), || async move {
                        reruns.fetch_add(1, Ordering::SeqCst);
                        Ok("from a waiter")
                    })
                    .await
            })
        })
        .collect();
    assert!(yield_until(100, || group.callers("k") == 5).await);

    // Every task is now idle, so the paused clock jumps to the leader's deadline.
    assert!(leader.await.unwrap().is_err(), "the leader timed out");
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), Ok("from a waiter"));
    }
    assert_eq!(reruns.load(Ordering::SeqCst), 1);
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test]
async fn the_lead_passes_on_when_the_heir_is_dropped_too() {
    let group = Group::<u8, &str, ()>::new();
    let runs = AtomicUsize::new(0);
    let mut leader = Box::pin(group.work(1, pending));
    assert!(poll_once(&mut leader).await.is_pending());
    let mut waiters: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let runs = &runs;
            Box::pin(group.work(1, move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(name)
            }))
        })
        .collect();
    for waiter in &mut waiters {
        assert!(poll_once(waiter).await.is_pending());
    }
    drop(leader);
    // One of "a" and "b" was woken to take over; dropping both, before either is polled,
    // must pass the lead to "c".
    let last = waiters.pop().unwrap();
    drop(waiters);
    assert_eq!(group.callers(&1), 1);
    assert_eq!(last.await, Ok("c"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test]
async fn every_cancelled_leader_costs_exactly_one_rerun() {
    const CALLERS: usize = 5;
    let group = Group::<u8, usize, ()>::new();
    let started = std::sync::Mutex::new(Vec::new());
    let gate = Semaphore::new(0);
    let mut calls: Vec<_> = (0..CALLERS)
        .map(|i| {
            let (started, gate) = (&started, &gate);
            Some(Box::pin(group.work(7, move || async move {
                started.lock().unwrap().push(i);
                let _open = gate.acquire().await;
                Ok(i)
            })))
        })
        .collect();
    for call in calls.iter_mut().flatten() {
        assert!(poll_once(call).await.is_pending());
    }
    assert_eq!(*started.lock().unwrap(), [0], "only the first caller runs");

    // Cancel whoever leads, again and again: each time exactly one other caller takes over.
    for round in 1..CALLERS {
        let leader = *started.lock().unwrap().last().unwrap();
        calls[leader] = None;
        for call in calls.iter_mut().flatten() {
            assert!(poll_once(call).await.is_pending());
        }
        let started = started.lock().unwrap();
        assert_eq!(started.len(), round + 1, "one rerun per cancelled leader");
        let heir = started[round];
        assert!(
            calls[heir].is_some(),
            "the heir {heir} is a remaining caller"
        );
        assert_eq!(group.callers(&7), CALLERS - round);
    }

    gate.add_permits(1);
    let last = calls
        .into_iter()
        .flatten()
        .next()
        .expect("one caller is left");
    let heir = *started.lock().unwrap().last().unwrap();
    assert_eq!(last.await, Ok(heir), "the last caller ran its own closure");
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test]
async fn a_cancelled_leader_without_waiters_leaves_nothing() {
    let group = Group::<u8, u8, ()>::new();
    let mut leader = Box::pin(group.work(1, pending));
    assert!(poll_once(&mut leader).await.is_pending());
    assert_eq!(group.in_flight(), 1);
    drop(leader);
    assert_eq!(group.in_flight(), 0);
    assert_eq!(group.work(1, || async { Ok(2) }).await, Ok(2));
}

#[tokio::test]
async fn a_dropped_waiter_does_not_disturb_the_flight() {
    let group = Group::<u8, u8, ()>::new();
    let runs = AtomicUsize::new(0);
    let gate = Semaphore::new(0);
    let work = |value| {
        let (runs, gate) = (&runs, &gate);
        move || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            let _open = gate.acquire().await;
            Ok(value)
        }
    };
    let mut leader = Box::pin(group.work(1, work(10)));
    let mut leaving = Box::pin(group.work(1, work(20)));
    let mut staying = Box::pin(group.work(1, work(30)));
    assert!(poll_once(&mut leader).await.is_pending());
    assert!(poll_once(&mut leaving).await.is_pending());
    assert!(poll_once(&mut staying).await.is_pending());
    drop(leaving);
    assert_eq!(group.callers(&1), 2);
    gate.add_permits(1);
    assert_eq!(tokio::join!(leader, staying), (Ok(10), Ok(10)));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(group.in_flight(), 0);
}
