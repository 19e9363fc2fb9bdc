use std::sync::mpsc;
use std::time::Duration;

// Regression: a blocking thread stuck on a FIFO in a `dir:` root kept the runtime's drop
// waiting, so `serve` logged "drained; bye" and never exited.
#[test]
fn stopping_the_runtime_does_not_wait_on_a_stuck_blocking_thread() {
    let runtime = crate::start_runtime(crate::Workers::Pool(Some(1))).expect("a runtime");
    let (release, stuck) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    runtime.spawn_blocking(move || {
        let _ = started_tx.send(());
        // Stuck until the test ends: the sender is dropped only after the check below.
        let _ = stuck.recv();
    });
    started.recv().expect("the blocking task started");
    let (stopped_tx, stopped) = mpsc::channel();
    std::thread::spawn(move || {
        crate::stop_runtime(runtime);
        let _ = stopped_tx.send(());
    });
    // A bound on a hang, not a measurement: stopping takes microseconds, or for ever.
    let outcome = stopped.recv_timeout(Duration::from_secs(30));
    drop(release);
    assert!(outcome.is_ok(), "stopping waited on the stuck thread");
}
