use std::sync::atomic::{AtomicUsize, Ordering};

use geecache_singleflight::Group;
use tokio::sync::Semaphore;

use crate::poll_once;

#[tokio::test]
async fn forget_starts_a_new_flight_while_the_old_one_lands_for_its_callers() {
    let group = Group::<&str, &str, ()>::new();
    let runs = AtomicUsize::new(0);
    let (old_gate, new_gate) = (Semaphore::new(0), Semaphore::new(0));
    let work = |gate: &'static str| {
        let (runs, old_gate, new_gate) = (&runs, &old_gate, &new_gate);
        move || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            let gate_for_this = if gate == "old" { old_gate } else { new_gate };
            let _open = gate_for_this.acquire().await;
            Ok(gate)
        }
    };

    let mut old_leader = Box::pin(group.work("k", work("old")));
    let mut old_waiter = Box::pin(group.work("k", work("unused")));
    assert!(poll_once(&mut old_leader).await.is_pending());
    assert!(poll_once(&mut old_waiter).await.is_pending());
    assert_eq!(group.callers("k"), 2);

    group.forget("k");
    assert_eq!(
        group.callers("k"),
        0,
        "nobody can join the forgotten flight"
    );

    let mut new_leader = Box::pin(group.work("k", work("new")));
    let mut new_waiter = Box::pin(group.work("k", work("unused")));
    assert!(poll_once(&mut new_leader).await.is_pending());
    assert!(poll_once(&mut new_waiter).await.is_pending());
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the next call started its own flight"
    );
    assert_eq!(group.callers("k"), 2);
    assert_eq!(group.in_flight(), 2);

    old_gate.add_permits(1);
    assert_eq!(tokio::join!(old_leader, old_waiter), (Ok("old"), Ok("old")));
    assert_eq!(group.in_flight(), 1);
    new_gate.add_permits(1);
    assert_eq!(tokio::join!(new_leader, new_waiter), (Ok("new"), Ok("new")));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test]
async fn forget_of_an_idle_key_changes_nothing() {
    let group = Group::<String, u8, ()>::new();
    group.forget("nothing here");
    assert_eq!(group.in_flight(), 0);
    assert_eq!(group.work("k".to_owned(), || async { Ok(1) }).await, Ok(1));
}
