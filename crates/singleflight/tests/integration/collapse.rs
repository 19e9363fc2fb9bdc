use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use geecache_singleflight::Group;
use tokio::sync::{Barrier, Semaphore};

use crate::yield_until;

const N: usize = 100;

#[tokio::test]
async fn concurrent_callers_of_one_key_share_one_execution() {
    let group = Group::<&str, usize, ()>::new();
    let executions = AtomicUsize::new(0);
    let gate = Semaphore::new(0);
    let (executions_ref, gate_ref) = (&executions, &gate);
    let calls = join_all((0..N).map(|i| {
        group.work("hot", move || async move {
            let (executions, gate) = (executions_ref, gate_ref);
            executions.fetch_add(1, Ordering::SeqCst);
            let _open = gate.acquire().await;
            Ok(i)
        })
    }));
    let release = async {
        // The gate opens only once every caller is in the flight.
        assert!(yield_until(1_000, || group.callers("hot") == N).await);
        gate.add_permits(1);
    };
    let (results, ()) = tokio::join!(calls, release);
    assert_eq!(executions.load(Ordering::SeqCst), 1);
    let leader = results[0].clone().expect("the leader's value");
    assert!(results.iter().all(|r| *r == Ok(leader)), "{results:?}");
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_on_many_threads_share_one_execution() {
    let group = Arc::new(Group::<String, Arc<str>, ()>::new());
    let executions = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let (group, executions, gate) = (group.clone(), executions.clone(), gate.clone());
            tokio::spawn(async move {
                group
                    .work("hot".to_owned(), || async move {
                        executions.fetch_add(1, Ordering::SeqCst);
                        let _open = gate.acquire().await;
                        Ok(Arc::from("value"))
                    })
                    .await
            })
        })
        .collect();
    let joined = tokio::time::timeout(
        Duration::from_secs(30),
        yield_until(1_000_000, || group.callers("hot") == N),
    );
    assert!(joined.await.expect("all callers join"));
    gate.add_permits(1);
    let mut values = Vec::new();
    for task in tasks {
        values.push(task.await.expect("no panic").expect("a value"));
    }
    assert_eq!(executions.load(Ordering::SeqCst), 1);
    assert!(
        values.iter().all(|v| Arc::ptr_eq(v, &values[0])),
        "one shared value"
    );
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test]
async fn a_call_after_the_flight_landed_runs_again() {
    let group = Group::<u8, usize, ()>::new();
    let executions = AtomicUsize::new(0);
    let work = || async { Ok(executions.fetch_add(1, Ordering::SeqCst)) };
    assert_eq!(group.work(1, work).await, Ok(0));
    assert_eq!(group.work(1, work).await, Ok(1));
    assert_eq!(group.in_flight(), 0);
}

/// Each flight waits at a barrier that opens only when every flight has reached it: if flights
/// for distinct keys were serialised, none would get past it and the (paused, auto-advancing)
/// clock would fire the timeout instead.
#[tokio::test(start_paused = true)]
async fn distinct_keys_run_in_parallel() {
    const KEYS: usize = 64;
    let group = Group::<usize, usize, ()>::new();
    let barrier = Barrier::new(KEYS);
    let executions = AtomicUsize::new(0);
    let (executions_ref, barrier_ref) = (&executions, &barrier);
    let calls = join_all((0..KEYS).map(|key| {
        group.work(key, move || async move {
            let (executions, barrier) = (executions_ref, barrier_ref);
            executions.fetch_add(1, Ordering::SeqCst);
            barrier.wait().await;
            Ok(key * 10)
        })
    }));
    let results = tokio::time::timeout(Duration::from_secs(60), calls)
        .await
        .expect("every flight reached the barrier");
    assert_eq!(results, (0..KEYS).map(|k| Ok(k * 10)).collect::<Vec<_>>());
    assert_eq!(executions.load(Ordering::SeqCst), KEYS);
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_keys_run_in_parallel_across_threads() {
    let group = Arc::new(Group::<u8, u8, ()>::new());
    let barrier = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = [1u8, 2]
        .into_iter()
        .map(|key| {
            let (group, barrier) = (group.clone(), barrier.clone());
            tokio::spawn(async move {
                group
                    .work(key, || async move {
                        barrier.wait().await;
                        Ok(key)
                    })
                    .await
            })
        })
        .collect();
    // A safety bound for a deadlock, not a synchronisation: the barrier is the proof.
    let results = tokio::time::timeout(Duration::from_secs(30), join_all(tasks))
        .await
        .expect("both flights reached the barrier");
    let results: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(results, vec![Ok(1), Ok(2)]);
    assert_eq!(group.in_flight(), 0);
}
