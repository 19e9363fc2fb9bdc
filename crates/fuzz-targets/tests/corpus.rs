//! Replays the committed seed corpus (`fuzz/corpus/{target}/`) through the fuzz targets.
//!
//! libFuzzer needs a nightly toolchain; this test does not, so every CI run checks that no
//! committed input (seeds, and any crash found and fixed since) panics again.

use std::fs;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    // An empty corpus would make the replay pass without running anything.
    assert!(!files.is_empty(), "{} holds no seeds", dir.display());
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    for file in corpus(target) {
        let data = fs::read(&file).expect("a readable seed");
        // The file name in the panic says which input to run under `cargo fuzz run` again.
        eprintln!("{target}: {}", file.display());
        run(&data);
    }
}

#[test]
fn every_target_has_a_corpus_and_a_replay_here() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    for target in geecache_fuzz_targets::TARGETS {
        assert!(
            dir.join(format!("{target}.rs")).is_file(),
            "fuzz/fuzz_targets/{target}.rs is missing"
        );
        assert!(!corpus(target).is_empty());
    }
}

#[test]
fn peer_path_corpus_replays_without_a_panic() {
    replay("peer_path", geecache_fuzz_targets::peer_path);
}

#[test]
fn wire_corpus_replays_without_a_panic() {
    replay("wire", geecache_fuzz_targets::wire);
}

#[test]
fn router_corpus_replays_without_a_500() {
    replay("router", geecache_fuzz_targets::router);
}

#[test]
fn router_seeds_reach_the_routes_they_are_named_for() {
    // (seed, status without tokens, status with them). A seed answered 404 or 401 where a
    // handler was meant would keep the fuzzer's mutations away from that handler.
    let expected: &[(&str, u16, u16)] = &[
        ("absolute-uri", 200, 401),
        ("api-bad-escape", 400, 401),
        ("api-delete", 204, 204),
        ("api-get", 200, 401),
        ("api-get-missing", 404, 401),
        ("api-get-token", 200, 200),
        ("api-get-token-lowercase-scheme", 200, 200),
        ("api-key-too-long", 414, 401),
        ("api-put", 204, 204),
        ("api-unknown-group", 404, 401),
        ("healthz", 200, 401),
        ("metrics", 404, 404),
        ("odd-method", 405, 401),
        ("peer-delete-fanout", 204, 204),
        ("peer-get", 200, 200),
        ("peer-get-many", 200, 200),
        ("peer-get-many-garbage", 400, 400),
        ("peer-get-not-utf8", 400, 401),
        ("peer-hand-over", 204, 204),
        ("query-batch", 400, 401),
        ("readyz", 200, 401),
        ("stats", 200, 200),
    ];
    let files = corpus("router");
    assert_eq!(
        files.len(),
        expected.len(),
        "a router seed without an expectation here"
    );
    for (name, open, guarded) in expected {
        let file = files
            .iter()
            .find(|f| f.file_name().is_some_and(|n| n == *name))
            .unwrap_or_else(|| panic!("no router seed {name}"));
        let statuses = geecache_fuzz_targets::statuses(&fs::read(file).expect("a seed"))
            .unwrap_or_else(|| panic!("{name} does not parse as a request"));
        assert_eq!(
            statuses.map(|s| s.as_u16()),
            [*open, *guarded],
            "{name}: statuses without and with tokens"
        );
    }
}
