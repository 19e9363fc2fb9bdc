use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::join_all;
use geecache_singleflight::{Error, Group};
use tokio::sync::Semaphore;

use crate::yield_until;

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("source unavailable: {0}")]
struct SourceError(&'static str);

#[tokio::test]
async fn an_error_is_shared_by_every_caller_as_one_arc() {
    const N: usize = 20;
    let group = Group::<&str, u8, SourceError>::new();
    let executions = AtomicUsize::new(0);
    let gate = Semaphore::new(0);
    let calls = join_all((0..N).map(|_| {
        group.work("k", || async {
            executions.fetch_add(1, Ordering::SeqCst);
            let _open = gate.acquire().await;
            Err(SourceError("db down"))
        })
    }));
    let release = async {
        assert!(yield_until(1_000, || group.callers("k") == N).await);
        gate.add_permits(1);
    };
    let (results, ()) = tokio::join!(calls, release);
    assert_eq!(executions.load(Ordering::SeqCst), 1);
    let arcs: Vec<Arc<SourceError>> = results
        .into_iter()
        .map(|r| match r {
            Err(Error::Failed(e)) => e,
            other => panic!("expected a shared failure, got {other:?}"),
        })
        .collect();
    assert!(
        arcs.iter().all(|e| Arc::ptr_eq(e, &arcs[0])),
        "one Arc for all"
    );
    assert_eq!(
        Arc::strong_count(&arcs[0]),
        N,
        "and no copy kept by the group"
    );
    assert_eq!(*arcs[0], SourceError("db down"));
    assert_eq!(
        Error::Failed(arcs[0].clone()).to_string(),
        "source unavailable: db down"
    );
    assert_eq!(group.in_flight(), 0);
}
