use clap::Parser as _;

use crate::{Args, Run};

#[test]
fn the_batch_run_is_asked_for_by_name_and_takes_its_keys_per_request() {
    let args = Args::try_parse_from(["e2e", "--runs", "bare,warm,batch", "--batch-keys", "250"])
        .expect("parses");
    assert_eq!(args.runs, [Run::Bare, Run::Warm, Run::Batch]);
    assert_eq!(args.batch_after_warm(), Some(250));

    let defaults = Args::try_parse_from(["e2e"]).expect("parses");
    assert_eq!(defaults.batch_keys, 100);
    assert_eq!(
        defaults.batch_after_warm(),
        None,
        "the warm run measures no batches unless asked"
    );
    let alone = Args::try_parse_from(["e2e", "--runs", "batch"]).expect("parses");
    assert_eq!(alone.batch_after_warm(), Some(100));

    for bad in [
        &["e2e", "--batch-keys", "0"][..],
        // Over the nodes' default --max-batch-keys: every request would be refused.
        &["e2e", "--batch-keys", "1001"],
        &["e2e", "--runs", "batches"],
    ] {
        assert!(Args::try_parse_from(bad).is_err(), "{bad:?} parsed");
    }
}
