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
