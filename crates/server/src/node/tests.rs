use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use geecache_transport_http::ErrorKind;
use http::StatusCode;
use tokio::net::TcpListener;

use super::*;
use crate::client::{self, Fetched};
use crate::source::DirSource;

async fn node_serving(root: &Path) -> (Node, Arc<DirSource>) {
    let dir =
        Arc::new(DirSource::new(root, 1 << 20, crate::config::defaults::ORIGIN_TIMEOUT).unwrap());
    let options = NodeOptions {
        ring: Preset::Balanced,
        max_key_bytes: 1024,
        ..NodeOptions::new(
            None,
            Vec::new(),
            vec![NodeGroup::new(
                "files",
                1 << 20,
                DataSource::Dir(Arc::clone(&dir)),
            )],
        )
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    (Node::start(listener, options).await.unwrap(), dir)
}

async fn get(node: &Node, path: &str) -> Fetched {
    let http = client::new_client();
    let url = format!("{}{path}", node.url());
    client::get(&http, &url, None, Duration::from_secs(10), 1 << 20)
        .await
        .unwrap()
}

// The key guard this replaced canonicalised a `dir:` key on the blocking pool on every
// request, cache hits included. A hit must never touch the disk: only a miss looks a key up.
#[tokio::test]
async fn a_dir_cache_hit_never_touches_the_disk() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("hello.txt"), "hello").unwrap();
    let (node, dir) = node_serving(tmp.path()).await;

    let first = get(&node, "/api/files/hello.txt").await;
    assert_eq!(
        (first.status, &first.body[..]),
        (StatusCode::OK, &b"hello"[..])
    );
    assert_eq!(dir.disk_lookups(), 1, "the miss looked the key up once");
    for path in ["/api/files/hello.txt", "/_geecache/files/hello.txt"] {
        assert_eq!(get(&node, path).await.status, StatusCode::OK, "{path}");
    }
    assert_eq!(
        dir.disk_lookups(),
        1,
        "hits, on either route, touched nothing"
    );
    node.shutdown(Duration::from_secs(10)).await;
}

// A key whose text leaves the root is refused before the cache and the disk; one that leaves
// through a symlink is refused when it is looked up. Both are 400 `invalid-key`.
#[tokio::test]
async fn keys_that_leave_the_root_are_refused_with_invalid_key() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(tmp.path().join("secret.txt"), "secret").unwrap();
    let (node, dir) = node_serving(&root).await;

    let refused = get(&node, "/api/files/..%2Fsecret.txt").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.kind.as_deref().and_then(ErrorKind::parse),
        Some(ErrorKind::InvalidKey)
    );
    assert_eq!(dir.disk_lookups(), 0, "the text alone decided");

    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(tmp.path(), root.join("out")).unwrap();
        for _ in 0..2 {
            let refused = get(&node, "/api/files/out/secret.txt").await;
            assert_eq!(refused.status, StatusCode::BAD_REQUEST);
            assert_eq!(
                refused.kind.as_deref(),
                Some(ErrorKind::InvalidKey.as_str())
            );
            assert!(!String::from_utf8_lossy(&refused.body).contains("secret\n"));
        }
        assert_eq!(dir.disk_lookups(), 2, "never cached: each try looks again");
    }
    node.shutdown(Duration::from_secs(10)).await;
}
