//! Replays the committed seed corpus (`fuzz/corpus/{target}/`) through the fuzz targets.
//!
//! libFuzzer needs a nightly toolchain; this test does not, so every CI run checks that no
//! committed input (seeds, and any crash found and fixed since) panics again.

use std::fs;
use std::path::{Path, PathBuf};

use geecache_group::LoadError;

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

/// The `[[bin]]` names of `fuzz/Cargo.toml`, which `cargo xtask fuzz` runs.
fn fuzz_manifest_bins() -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/Cargo.toml");
    let text = fs::read_to_string(&manifest).expect("fuzz/Cargo.toml");
    let mut bins = Vec::new();
    let mut in_bin = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(name) = line.strip_prefix("name = ").filter(|_| in_bin) {
            bins.push(name.trim_matches('"').to_owned());
        }
    }
    bins
}

#[test]
fn every_target_has_a_fuzz_binary_a_corpus_and_a_replay_here() {
    // `cargo xtask fuzz` runs the manifest's binaries: a target missing there is never fuzzed.
    assert_eq!(
        fuzz_manifest_bins(),
        geecache_fuzz_targets::TARGETS,
        "fuzz/Cargo.toml's [[bin]]s and TARGETS differ"
    );
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
fn config_corpus_replays_without_a_panic() {
    replay("config", geecache_fuzz_targets::config);
}

#[test]
fn dir_key_corpus_replays_without_a_read_outside_the_root() {
    let fixture = geecache_fuzz_targets::DirFixture::new().expect("a temporary directory");
    for file in corpus("dir_key") {
        eprintln!("dir_key: {}", file.display());
        fixture.check(&fs::read(&file).expect("a readable seed"));
    }
}

/// The seed's file name: what the name promises is what the next two tests hold it to.
fn name(file: &Path) -> &str {
    file.file_name()
        .and_then(|n| n.to_str())
        .expect("a UTF-8 file name")
}

#[test]
fn config_seeds_are_accepted_or_refused_as_named() {
    // ok-: a valid config file; spec-: a valid `--group` spec; bad-: refused as either; any-
    // and raw-: no promise (a build without etcd refuses an etcd config; bytes that are not
    // UTF-8 never reach the parser). A seed must start where it means to, or the fuzzer's
    // mutations never reach the code past the first check.
    let mut promised = 0;
    for file in corpus("config") {
        let name = name(&file);
        let text = fs::read_to_string(&file).unwrap_or_default();
        let as_file = geecache_server::fuzzing::config_file(&text);
        let as_spec = geecache_server::fuzzing::group_spec(&text);
        if name.starts_with("ok-") {
            assert!(as_file.is_ok(), "{name}: {as_file:?}");
        } else if name.starts_with("spec-") {
            assert!(as_spec.is_ok(), "{name}: {as_spec:?}");
        } else if name.starts_with("bad-") {
            assert!(as_file.is_err() && as_spec.is_err(), "{name} was accepted");
        } else {
            assert!(
                name.starts_with("any-") || name.starts_with("raw-"),
                "{name}: no prefix"
            );
            continue;
        }
        promised += 1;
    }
    assert!(promised >= 30, "only {promised} seeds promise anything");
}

#[test]
fn dir_key_seeds_read_or_are_refused_as_named() {
    // ok-: read, from inside the root; escape-: refused, by text or once symlinks are
    // followed; missing-: not found.
    let fixture = geecache_fuzz_targets::DirFixture::new().expect("a temporary directory");
    for file in corpus("dir_key") {
        let name = name(&file);
        let key = fs::read_to_string(&file).expect("a UTF-8 key");
        let read = fixture.read(&key);
        let expected = if name.starts_with("ok-") {
            read.is_ok()
        } else if name.starts_with("escape-") {
            matches!(read, Err(LoadError::Rejected(_)))
        } else {
            assert!(name.starts_with("missing-"), "{name}: no prefix");
            matches!(read, Err(LoadError::NotFound))
        };
        assert!(expected, "{name} ({:?}): {read:?}", shown(&key));
    }
}

/// A key as an assertion shows it: seeds may be thousands of bytes long.
fn shown(key: &str) -> String {
    key.chars().take(80).collect()
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
