use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, header};

use super::*;
use crate::source::{DemoTable, DirSource};

fn guard(peer_token: Option<&str>) -> (tempfile::TempDir, KeyGuard) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("a b+c.txt"), "x").unwrap();
    std::fs::write(tmp.path().join("secret.txt"), "s").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(tmp.path(), root.join("out")).unwrap();
    let mut sources = HashMap::new();
    sources.insert(
        "files".to_owned(),
        DataSource::Dir(Arc::new(DirSource::new(&root, 1 << 20).unwrap())),
    );
    sources.insert(
        "scores".to_owned(),
        DataSource::Demo(DemoTable::builder().rows(10).build()),
    );
    let guard = KeyGuard::new(
        sources,
        "/_geecache/".into(),
        peer_token.map(str::to_owned),
        None,
    );
    (tmp, guard)
}

#[test]
fn paths_decode_like_the_transport_reads_them() {
    let (_tmp, g) = guard(None);
    let t = |p: &str| {
        g.target(p)
            .map(|(group, _, key, _)| (group.to_owned(), key.into_owned()))
    };
    let found = |group: &str, key: &str| Some((group.to_owned(), key.to_owned()));
    // Client route: `+` is a plus.
    assert_eq!(t("/api/files/a%20b+c.txt"), found("files", "a b+c.txt"));
    // Peer route: `+` is a space (form decoding, as Go groupcache sends).
    assert_eq!(
        t("/_geecache/files/a+b%2Bc.txt"),
        found("files", "a b+c.txt")
    );
    // The group name is decoded too.
    assert_eq!(t("/api/fil%65s/x"), found("files", "x"));
    // Raw slashes after the first stay in the key; nothing is normalised.
    assert_eq!(t("/api/files/x/../../y"), found("files", "x/../../y"));
    assert_eq!(t("/metrics"), None);
    assert_eq!(t("/api/files"), None, "no key: the transport answers");
    assert_eq!(
        t("/api/files/%FF"),
        None,
        "not UTF-8: the transport answers"
    );
    assert_eq!(t("/api/scores/x"), None, "the demo table takes any key");
    assert_eq!(
        t("/api/unknown/x"),
        None,
        "unknown group: the transport's 404"
    );
}

#[test]
fn a_guard_over_sources_that_take_any_key_is_not_needed() {
    let (_tmp, g) = guard(None);
    assert!(g.is_needed());
    let mut sources = HashMap::new();
    sources.insert(
        "scores".to_owned(),
        DataSource::Demo(DemoTable::builder().rows(10).build()),
    );
    let demo_only = KeyGuard::new(sources, "/_geecache/".into(), None, None);
    assert!(!demo_only.is_needed());
}

#[tokio::test]
async fn escaping_keys_are_refused_on_both_routes() {
    let (_tmp, g) = guard(None);
    let none = HeaderMap::new();
    for path in [
        "/api/files/..%2Fx",
        "/api/files/%2E%2E/x",
        "/api/files/a/../../x",
        "/api/files/%2Fetc%2Fpasswd",
        "/api/files//etc/passwd",
        "/api/files/a%00b",
        "/_geecache/files/..%2F..%2Fetc%2Fpasswd",
        #[cfg(unix)]
        "/api/files/out/secret.txt",
    ] {
        let reason = g.refusal(path, &none).await;
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.starts_with("invalid key: ")),
            "{path}: {reason:?}"
        );
    }
    for path in [
        "/api/files/a%20b+c.txt",
        "/api/files/missing.txt",
        #[cfg(unix)]
        "/api/files/out/root/a%20b+c.txt", // leaves through a symlink and comes back in
        "/api/scores/..%2Fanything", // the demo table has no files to escape to
        "/api/unknown/..%2Fx",       // unknown group: the transport's 404
    ] {
        assert_eq!(g.refusal(path, &none).await, None, "{path}");
    }
}

#[tokio::test]
async fn unauthenticated_peer_requests_are_left_to_the_transport() {
    let (_tmp, g) = guard(Some("t0ken"));
    let path = "/_geecache/files/..%2Fx";
    assert_eq!(g.refusal(path, &HeaderMap::new()).await, None);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer t0ken"),
    );
    assert!(g.refusal(path, &headers).await.is_some());
    // The client route has no token configured here.
    assert!(
        g.refusal("/api/files/..%2Fx", &HeaderMap::new())
            .await
            .is_some()
    );
}
