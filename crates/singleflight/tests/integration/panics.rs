use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use geecache_singleflight::{Error, Group};
use tokio::sync::Semaphore;

use crate::{DELIBERATE, poll_catching, poll_once, quiet_deliberate_panics, yield_until};

#[tokio::test]
async fn a_panicking_work_fails_every_waiter_and_resumes_in_the_leader() {
    quiet_deliberate_panics();
    let group = Arc::new(Group::<u8, u8, ()>::new());
    let gate = Arc::new(Semaphore::new(0));
    let leader = tokio::spawn({
        let (group, gate) = (group.clone(), gate.clone());
        async move {
            group
                .work(1, || async move {
                    let _open = gate.acquire().await;
                    panic!("{DELIBERATE} in the work");
                })
                .await
        }
    });
    assert!(yield_until(100, || group.callers(&1) == 1).await);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let group = group.clone();
            tokio::spawn(async move { group.work(1, || async { Ok(2) }).await })
        })
        .collect();
    assert!(yield_until(100, || group.callers(&1) == 4).await);
    gate.add_permits(1);

    let panic = leader.await.expect_err("the leader panics");
    let payload = panic.into_panic();
    let message = payload
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(
        message.contains("in the work"),
        "original payload: {message}"
    );
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), Err(Error::Panicked));
    }
    assert_eq!(group.in_flight(), 0);
    assert_eq!(
        group.work(1, || async { Ok(3) }).await,
        Ok(3),
        "the next call runs fresh"
    );
}

#[tokio::test]
async fn a_panicking_closure_counts_as_a_panicking_work() {
    quiet_deliberate_panics();
    let group = Group::<u8, u8, ()>::new();
    let calls = AtomicUsize::new(0);
    let panicking = || -> std::future::Ready<Result<u8, ()>> {
        calls.fetch_add(1, Ordering::SeqCst);
        panic!("{DELIBERATE} before the future exists")
    };

    // A leader whose closure panics: the panic reaches it, nothing is left behind.
    let mut alone = Box::pin(group.work(1, panicking));
    assert!(poll_catching(&mut alone).await.is_err());
    drop(alone);
    assert_eq!(group.in_flight(), 0);

    // A waiter that takes over and whose closure panics: the other waiter gets `Panicked`.
    let mut leader = Box::pin(group.work(1, pending));
    let mut first = Box::pin(group.work(1, panicking));
    let mut second = Box::pin(group.work(1, panicking));
    assert!(poll_once(&mut leader).await.is_pending());
    assert!(poll_once(&mut first).await.is_pending());
    assert!(poll_once(&mut second).await.is_pending());
    drop(leader);
    let (first, second) = (
        poll_catching(&mut first).await,
        poll_catching(&mut second).await,
    );
    // Whichever was the heir panicked; the other one got the error.
    let panicked = usize::from(first.is_err()) + usize::from(second.is_err());
    assert_eq!(panicked, 1);
    let other = first.or(second).unwrap();
    assert_eq!(other, std::task::Poll::Ready(Err(Error::Panicked)));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "once alone, once as the heir"
    );
    assert_eq!(group.in_flight(), 0);
}
