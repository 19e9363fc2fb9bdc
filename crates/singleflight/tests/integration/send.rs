//! The futures `work` returns must run inside `tokio::spawn` and axum handlers: `Send` whenever
//! the inputs are, including work that borrows from its caller.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use geecache_singleflight::{Error, Group};

/// Compiles only if `work`'s future is `Send` for every `Send` input (`E` also `Sync`: the
/// error is shared between threads behind an `Arc`).
#[allow(dead_code)]
fn work_future_is_send<'a, K, V, E, F, Fut>(
    group: &'a Group<K, V, E>,
    key: K,
    f: F,
) -> impl Future<Output = Result<V, Error<E>>> + Send + 'a
where
    K: Hash + Eq + Send + 'a,
    V: Clone + Send + 'a,
    E: Send + Sync + 'a,
    F: FnOnce() -> Fut + Send + 'a,
    Fut: Future<Output = Result<V, E>> + Send + 'a,
{
    group.work(key, f)
}

/// Compiles only if a group is shareable between threads under the same conditions.
#[allow(dead_code)]
fn group_is_send_and_sync<K: Send, V: Send, E: Send + Sync>() {
    fn check<T: Send + Sync>() {}
    check::<Group<K, V, E>>();
    check::<Error<E>>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_that_borrows_its_caller_runs_in_a_spawned_task() {
    let group = Arc::new(Group::<String, usize, std::io::Error>::new());
    let task = tokio::spawn({
        let group = group.clone();
        async move {
            // Owned by this task, borrowed (not moved) by the work: no `'static` needed.
            let source = vec![1usize, 2, 3];
            let borrowed = &source;
            group
                .work("sum".to_owned(), || async move {
                    tokio::task::yield_now().await;
                    Ok(borrowed.iter().sum())
                })
                .await
        }
    });
    assert_eq!(task.await.unwrap().unwrap(), 6);
    assert_eq!(group.in_flight(), 0);
}
