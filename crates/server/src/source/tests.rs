use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use geecache_group::{LoadError, Rejected};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use super::dir::check_key_syntax;
use super::*;

// ---- demo table ----

#[tokio::test]
async fn the_demo_table_serves_canonical_keys_and_counts_every_load() {
    let table = DemoTable::builder().rows(100).delay(Duration::ZERO).build();
    let clone = table.clone();
    let v = table.get("player-000042").await.unwrap();
    assert_eq!(v.value(), DemoTable::value(42).as_str());
    clone.get("player-000042").await.unwrap();
    clone.get("player-000007").await.unwrap();
    for missing in [
        "player-000100",
        "player-42",
        "player-0000042",
        "player-00004x",
        "scores",
        "",
    ] {
        assert!(
            matches!(table.get(missing).await, Err(LoadError::NotFound)),
            "{missing:?} must not name a row"
        );
    }
    let summary = table.load_summary();
    assert_eq!(summary.distinct_keys, 2);
    assert_eq!(summary.total_loads, 3, "clones share one set of counters");
    assert_eq!(summary.max_loads_per_key, 2);
}

#[test]
fn demo_values_are_fixed_functions_of_the_row() {
    assert_eq!(DemoTable::value(5), DemoTable::value(5));
    assert_ne!(DemoTable::value(5), DemoTable::value(6));
    assert!(DemoTable::value(5).starts_with("{\"player\":\"player-000005\",\"score\":"));
}

// ---- dir: syntax ----

#[test]
fn key_syntax_refuses_every_escape_spelling() {
    for bad in [
        "",
        "..",
        "../x",
        "a/../../x",
        "a/..",
        "/etc/passwd",
        "//x",
        "a\0b",
        "\0",
        ".",
        "./a",
        "a/./b",
        "a//b",
        "a/",
    ] {
        assert!(check_key_syntax(bad).is_err(), "{bad:?} must be refused");
    }
    for good in [
        "a",
        "a.txt",
        "sub/b.txt",
        "..a",
        "a..",
        "...",
        "a b",
        "%2e%2e",
        "a\\..\\b",
    ] {
        assert!(
            check_key_syntax(good).is_ok(),
            "{good:?} is a plain relative path"
        );
    }
}

// ---- dir: on disk ----

/// A root with files, inner and outer symlinks, and a secret next to it.
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    secret: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(root.join("a.txt"), "A").unwrap();
    fs::write(root.join("sub/b.txt"), "B").unwrap();
    fs::write(root.join("sub/deeper/c.txt"), "C").unwrap();
    let secret = outside.join("secret.txt");
    fs::write(&secret, "SECRET").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(root.join("sub"), root.join("link_in")).unwrap();
        symlink("sub/b.txt", root.join("link_rel_in")).unwrap();
        symlink(&outside, root.join("link_out")).unwrap();
        symlink(&secret, root.join("link_file_out")).unwrap();
        symlink("..", root.join("link_up")).unwrap();
        symlink("../../outside/secret.txt", root.join("sub/link_rel_out")).unwrap();
        symlink("/", root.join("link_root")).unwrap();
    }
    let root = root.canonicalize().unwrap();
    let secret = secret.canonicalize().unwrap();
    Tree {
        _tmp: tmp,
        root,
        secret,
    }
}

fn source(t: &Tree) -> Arc<DirSource> {
    Arc::new(DirSource::new(&t.root, 1 << 20, crate::config::defaults::ORIGIN_TIMEOUT).unwrap())
}

#[tokio::test]
async fn files_under_the_root_load_and_missing_ones_are_not_found() {
    let t = tree();
    let dir = source(&t);
    assert_eq!(dir.load("a.txt").await.unwrap().value(), "A");
    assert_eq!(dir.load("sub/deeper/c.txt").await.unwrap().value(), "C");
    assert_eq!(dir.root(), t.root.as_path());
    #[cfg(unix)]
    {
        assert_eq!(dir.load("link_in/b.txt").await.unwrap().value(), "B");
        assert_eq!(dir.load("link_rel_in").await.unwrap().value(), "B");
    }
    for missing in ["nope", "sub/nope", "a.txt/x", "sub"] {
        assert!(
            matches!(dir.load(missing).await, Err(LoadError::NotFound)),
            "{missing:?} should be not found"
        );
    }
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_that_leave_the_root_are_refused_not_read() {
    let t = tree();
    let dir = source(&t);
    for key in [
        "link_out/secret.txt",
        "link_file_out",
        "link_up/outside/secret.txt",
        "sub/link_rel_out",
        "link_root/etc/passwd",
    ] {
        let refused = dir.resolve(key);
        assert_eq!(
            refused,
            Err(Rejected::new("the path leads outside the root")),
            "{key:?}"
        );
        match dir.load(key).await {
            Err(LoadError::Rejected(r)) => {
                assert_eq!(r.reason(), "the path leads outside the root")
            }
            other => panic!("{key:?} gave {other:?}"),
        }
    }
}

#[tokio::test]
async fn files_over_the_size_limit_are_a_load_error() {
    let t = tree();
    fs::write(t.root.join("big"), vec![b'x'; 2048]).unwrap();
    let dir =
        Arc::new(DirSource::new(&t.root, 1024, crate::config::defaults::ORIGIN_TIMEOUT).unwrap());
    match dir.load("big").await {
        Err(LoadError::Failed(e)) => {
            assert!(e.to_string().contains("over the limit of 1024"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

/// Makes a FIFO at `path` with the system's `mkfifo`.
#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("running mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

// Regression: opening a FIFO in a `dir:` root waits for a writer, so a get of it hung for ever
// (and then the shutdown). Only regular files are opened; a FIFO is no value.
#[cfg(unix)]
#[tokio::test]
async fn a_fifo_in_the_root_is_not_found_and_never_opened() {
    let t = tree();
    mkfifo(&t.root.join("pipe"));
    let dir = source(&t);
    match dir.load("pipe").await {
        Err(LoadError::NotFound) => {}
        other => panic!("a FIFO gave {other:?}"),
    }
}

// Regression: a `dir:` load had no deadline; a thread stuck in `open` (a hung mount) held its
// request for ever. The load fails at its deadline, and a stuck thread keeps its slot, so stuck
// loads never take more than `DISK_LOADS` threads: beyond that a load fails at its deadline
// without starting.
#[tokio::test]
async fn a_stuck_disk_load_fails_at_its_deadline_and_keeps_its_slot() {
    use super::dir::{Bounded, bounded_blocking};
    let slots = Arc::new(tokio::sync::Semaphore::new(1));
    let (release, stuck) = std::sync::mpsc::channel::<()>();
    let timeout = Duration::from_millis(50);
    let first = bounded_blocking(&slots, timeout, move || {
        let _ = stuck.recv();
        Ok(())
    })
    .await;
    assert!(matches!(first, Err(Bounded::TimedOut)), "{first:?}");
    assert_eq!(
        slots.available_permits(),
        0,
        "the stuck thread keeps its slot"
    );
    let ran = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&ran);
    let second = bounded_blocking(&slots, timeout, move || {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .await;
    assert!(matches!(second, Err(Bounded::TimedOut)), "{second:?}");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no thread beyond the slots");
    drop(release);
    // Once the stuck thread returns, its slot serves the next load.
    let third = bounded_blocking(&slots, Duration::from_secs(30), || Ok(7)).await;
    assert_eq!(third.ok(), Some(7));
}

/// Path segments the property test builds keys from: plain names, names of symlinks that
/// stay in or leave the root, dot segments, empties, and escape look-alikes.
const SEGMENTS: &[&str] = &[
    "a.txt",
    "sub",
    "deeper",
    "b.txt",
    "c.txt",
    "link_in",
    "link_rel_in",
    "link_out",
    "link_file_out",
    "link_up",
    "link_rel_out",
    "link_root",
    "outside",
    "secret.txt",
    "etc",
    "passwd",
    "..",
    ".",
    "",
    "%2e%2e",
    "\0",
    "nope",
];

fn key_strategy() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::collection::vec(prop::sample::select(SEGMENTS), 1..6),
    )
        .prop_map(|(absolute, segments)| {
            let joined = segments.join("/");
            if absolute {
                format!("/{joined}")
            } else {
                joined
            }
        })
}

/// Where the OS says `root/key` leads, following every symlink, if anywhere.
fn os_resolution(root: &Path, key: &str) -> Option<PathBuf> {
    if key.contains('\0') {
        return None;
    }
    root.join(key.trim_start_matches('/')).canonicalize().ok()
}

/// The dir: check never accepts a key whose resolved path leaves the root.
///
/// Run with an explicit runner so the tree is built once, not once per case.
#[test]
fn an_accepted_key_never_resolves_outside_the_root() {
    let t = tree();
    let dir = Arc::new(
        DirSource::new(&t.root, 1 << 20, crate::config::defaults::ORIGIN_TIMEOUT).unwrap(),
    );
    let secret = fs::read(&t.secret).unwrap();
    // With time: every load has a deadline.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(ProptestConfig::with_cases(2048));
    let (accepted, escapes_refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let result = runner.run(&key_strategy(), |key| {
        let outside = os_resolution(&t.root, &key).is_some_and(|p| !p.starts_with(&t.root));
        match dir.resolve(&key) {
            Ok(Some(path)) => {
                accepted.fetch_add(1, Ordering::Relaxed);
                prop_assert!(path.starts_with(&t.root), "{key:?} accepted as {path:?}");
                prop_assert_eq!(Some(path), os_resolution(&t.root, &key));
            }
            Ok(None) => {
                // Nothing there as far as the OS is concerned either, or at least nothing
                // outside the root.
                if let Some(real) = os_resolution(&t.root, &key) {
                    prop_assert!(real.starts_with(&t.root), "{key:?} reaches {real:?}");
                }
            }
            Err(_) => {
                if outside {
                    escapes_refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // And the secret's bytes never come back, whatever the key.
        if let Ok(value) = runtime.block_on(dir.load(&key)) {
            prop_assert_ne!(value.value().as_slice(), secret.as_slice());
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generator must exercise both sides, or the property holds vacuously.
    assert!(accepted.into_inner() > 0, "no key was ever accepted");
    assert!(
        escapes_refused.into_inner() > 0,
        "no escaping key was ever tried"
    );
}

// ---- http: origin ----

fn origin(base: &str) -> HttpOrigin {
    HttpOrigin::new(
        base.to_owned(),
        crate::client::new_client(),
        Duration::from_secs(5),
        64,
    )
}

#[test]
fn origin_urls_encode_the_key_as_one_segment() {
    let o = origin("http://o:1/objects/");
    assert_eq!(
        o.url_for("a b/../c+d"),
        "http://o:1/objects/a%20b%2F..%2Fc%2Bd"
    );
    assert_eq!(o.url_for("ü"), "http://o:1/objects/%C3%BC");
    assert!(origin::check_key("..").is_err());
    assert!(origin::check_key(".").is_err());
    assert!(origin::check_key("...").is_ok());
}

#[tokio::test]
async fn origin_statuses_map_to_values_not_found_and_failures() {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/v/ok", get(|| async { "value" }))
        .route("/v/big", get(|| async { "x".repeat(100) }))
        .route(
            "/v/broken",
            get(|| async {
                (
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "down for maintenance",
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let o = origin(&format!("http://{addr}/v/"));

    assert_eq!(o.load("ok").await.unwrap().value(), "value");
    assert!(matches!(o.load("missing").await, Err(LoadError::NotFound)));
    match o.load("broken").await {
        Err(LoadError::Failed(e)) => {
            let e = e.to_string();
            assert!(
                e.contains("answered 503 Service Unavailable: down for maintenance"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    match o.load("big").await {
        Err(LoadError::Failed(e)) => assert!(e.to_string().contains("larger than 64 bytes"), "{e}"),
        other => panic!("{other:?}"),
    }
    server.abort();

    // Nobody listens there any more: a connection failure is a load failure.
    let gone = origin(&format!("http://{addr}/v/"));
    assert!(matches!(gone.load("ok").await, Err(LoadError::Failed(_))));
}

#[test]
fn an_origin_value_does_not_keep_the_read_buffer_alive() {
    use crate::client::Fetched;
    // The body as hyper hands it over: a slice of a larger buffer that held the whole answer.
    let buffer =
        bytes::Bytes::from([b"HTTP/1.1 200 OK\r\n\r\nthe value".as_slice(), &[0; 4096]].concat());
    let start = buffer.len() - 4096 - "the value".len();
    let fetched = Fetched {
        status: http::StatusCode::OK,
        kind: None,
        body: buffer.slice(start..start + "the value".len()),
    };
    let loaded = origin::answer("http://o:1/v/k", &fetched).unwrap();
    assert_eq!(loaded.value(), "the value");
    let (outer, inner) = (
        buffer.as_ptr_range(),
        loaded.value().as_slice().as_ptr_range(),
    );
    assert!(
        inner.end <= outer.start || inner.start >= outer.end,
        "the cached value must own its bytes, not point into the answer's buffer"
    );
}

// Regression: load errors quoted the whole key or origin URL, so a 60 KB key made every
// failure a 60 KB log line and answer. They show its first 120 characters and its length.
#[test]
fn keys_in_load_errors_are_cut_short() {
    assert_eq!(super::shown("short"), "short");
    let long = "k".repeat(60_000);
    let cut = super::shown(&long);
    assert_eq!(cut, format!("{}... (60000 bytes)", "k".repeat(120)));
}
