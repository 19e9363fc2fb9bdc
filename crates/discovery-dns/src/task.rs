use std::future::Future;

use tokio::task::JoinHandle;

/// A spawned background task that is aborted when its owner is dropped.
///
/// A bare `JoinHandle` detaches on drop: a `Watcher` dropped without `shutdown` would keep
/// polling DNS for the life of the runtime. Tying the task to its owner means dropping the
/// owner is always enough.
#[derive(Debug)]
pub(crate) struct BackgroundTask(JoinHandle<()>);

impl BackgroundTask {
    /// Spawns `work` on the current Tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, like `tokio::spawn`.
    pub(crate) fn spawn(work: impl Future<Output = ()> + Send + 'static) -> Self {
        BackgroundTask(tokio::spawn(work))
    }

    /// Aborts the task and waits until it is gone. A panic inside the task is passed on.
    pub(crate) async fn stop(mut self) {
        self.0.abort();
        if let Err(error) = (&mut self.0).await
            && error.is_panic()
        {
            std::panic::resume_unwind(error.into_panic());
        }
    }
}

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
