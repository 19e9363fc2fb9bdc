use std::collections::BTreeMap;
use std::future::{Future, pending};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use proptest::prelude::*;

use crate::slab::Slab;
use crate::{Error, Group};

#[derive(Debug, Clone)]
enum SlabOp {
    Insert(u16),
    Remove(usize),
    Get(usize),
}

fn slab_op() -> impl Strategy<Value = SlabOp> {
    prop_oneof![
        3 => any::<u16>().prop_map(SlabOp::Insert),
        2 => (0usize..24).prop_map(SlabOp::Remove),
        1 => (0usize..24).prop_map(SlabOp::Get),
    ]
}

proptest! {
    /// The slab against a map from index to value: same contents, fresh indices never collide
    /// with live ones, freed indices are reused before the slab grows.
    #[test]
    fn slab_matches_a_map(ops in proptest::collection::vec(slab_op(), 0..200)) {
        let mut slab = Slab::new();
        let mut model = BTreeMap::new();
        let mut high_water = 0;
        for op in ops {
            match op {
                SlabOp::Insert(value) => {
                    let index = slab.insert(value);
                    prop_assert!(!model.contains_key(&index), "index {} handed out twice", index);
                    if model.len() < high_water {
                        prop_assert!(index < high_water, "grew while slot {} was free", index);
                    }
                    model.insert(index, value);
                    high_water = high_water.max(index + 1);
                }
                SlabOp::Remove(index) => prop_assert_eq!(slab.remove(index), model.remove(&index)),
                SlabOp::Get(index) => prop_assert_eq!(slab.get(index), model.get(&index)),
            }
            slab.validate();
            prop_assert_eq!(slab.len(), model.len());
            prop_assert_eq!(slab.is_empty(), model.is_empty());
            prop_assert_eq!(slab.first(), model.keys().next().copied());
            let listed: Vec<_> = slab.iter().map(|(i, v)| (i, *v)).collect();
            let expected: Vec<_> = model.iter().map(|(i, v)| (*i, *v)).collect();
            prop_assert_eq!(listed, expected);
        }
    }
}

fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn an_uncontended_call_leaves_nothing_behind() {
    let group = Group::<String, u32, ()>::new();
    let call = pin!(group.work("k".to_owned(), || async { Ok(7) }));
    assert_eq!(poll_once(call), Poll::Ready(Ok(7)));
    assert_eq!(group.in_flight(), 0);
    group.validate();
}

#[test]
fn the_last_waiter_takes_the_outcome_and_frees_the_flight() {
    let group = Group::<&str, Arc<u32>, ()>::new();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut leader = pin!(group.work("k", || async move {
        // Completes on the first poll after `tx` sends.
        std::future::poll_fn(|_| match rx.try_recv() {
            Ok(()) => Poll::Ready(Ok(Arc::new(1))),
            Err(_) => Poll::Pending,
        })
        .await
    }));
    let mut first = pin!(group.work("k", pending));
    let mut second = pin!(group.work("k", pending));
    assert!(poll_once(leader.as_mut()).is_pending());
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    assert_eq!(group.callers("k"), 3);
    tx.send(()).unwrap();
    let Poll::Ready(Ok(led)) = poll_once(leader.as_mut()) else {
        panic!("the leader did not finish")
    };
    group.validate();
    assert_eq!(group.in_flight(), 1, "kept until both waiters collect");
    assert_eq!(
        group.callers("k"),
        0,
        "a finished flight takes no new callers"
    );
    let Poll::Ready(Ok(a)) = poll_once(first.as_mut()) else {
        panic!("first waiter")
    };
    let Poll::Ready(Ok(b)) = poll_once(second.as_mut()) else {
        panic!("second waiter")
    };
    // The leader kept its own value, one clone went into the flight, the first waiter cloned
    // that and the last waiter took it over: all four share one allocation.
    assert!(Arc::ptr_eq(&led, &a) && Arc::ptr_eq(&a, &b));
    assert_eq!(Arc::strong_count(&led), 3);
    assert_eq!(group.in_flight(), 0);
    group.validate();
}

#[test]
fn a_waiter_dropped_after_completion_frees_the_flight() {
    let group = Group::<u8, u8, ()>::new();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut leader = pin!(group.work(1, || async move {
        std::future::poll_fn(|_| match rx.try_recv() {
            Ok(()) => Poll::Ready(Ok(1)),
            Err(_) => Poll::Pending,
        })
        .await
    }));
    let mut waiter = Box::pin(group.work(1, pending));
    assert!(poll_once(leader.as_mut()).is_pending());
    assert!(poll_once(waiter.as_mut()).is_pending());
    tx.send(()).unwrap();
    assert_eq!(poll_once(leader.as_mut()), Poll::Ready(Ok(1)));
    assert_eq!(group.in_flight(), 1);
    drop(waiter);
    assert_eq!(group.in_flight(), 0);
    group.validate();
}

#[test]
fn forget_detaches_only_the_named_key() {
    let group = Group::<String, u8, ()>::new();
    let mut a = pin!(group.work("a".to_owned(), pending));
    let mut b = pin!(group.work("b".to_owned(), pending));
    assert!(poll_once(a.as_mut()).is_pending());
    assert!(poll_once(b.as_mut()).is_pending());
    group.forget("a");
    group.forget("missing");
    group.validate();
    assert_eq!((group.callers("a"), group.callers("b")), (0, 1));
    assert_eq!(group.in_flight(), 2, "a forgotten flight still runs");
}

#[test]
fn error_clones_share_the_arc_and_display_the_failure() {
    let error = Error::Failed(Arc::new(std::io::Error::other("disk on fire")));
    let copy = error.clone();
    match (&error, &copy) {
        (Error::Failed(a), Error::Failed(b)) => assert!(Arc::ptr_eq(a, b)),
        _ => panic!("clone changed the variant"),
    }
    assert_eq!(error.to_string(), "disk on fire");
    assert_eq!(
        Error::<String>::Panicked.to_string(),
        "the shared work panicked"
    );
}

#[test]
fn debug_shows_the_flight_count_without_blocking() {
    let group = Group::<u8, u8, ()>::default();
    assert_eq!(format!("{group:?}"), "Group { in_flight: 0, .. }");
    let inner = group.inner.lock().unwrap();
    assert_eq!(format!("{group:?}"), "Group { in_flight: <locked>, .. }");
    drop(inner);
}

#[test]
fn a_poisoned_lock_is_recovered() {
    let group = Group::<u8, u8, ()>::new();
    let poisoner = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _held = group.inner.lock().unwrap();
        super::quiet_deliberate_panics();
        panic!("{}: while holding the lock", super::DELIBERATE);
    }));
    assert!(poisoner.is_err());
    assert!(group.inner.is_poisoned());
    let call = pin!(group.work(1, || async { Ok(5) }));
    assert_eq!(poll_once(call), Poll::Ready(Ok(5)));
    assert_eq!(group.in_flight(), 0);
}
