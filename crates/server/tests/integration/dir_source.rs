//! `serve` with a `dir:` source: files come back byte for byte, and no key leaves the root.

use geecache_transport_http::ErrorKind;

use crate::support::{Server, metric, parse_metrics, write_file};

/// A root holding files, a secret beside it, and (on Unix) a symlink pointing out.
fn root() -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    write_file(&root, "hello.txt", b"hello, world\n");
    write_file(&root, "nested/deep/data.bin", &[0, 1, 2, 255]);
    write_file(&root, "with space+plus.txt", b"odd name");
    write_file(tmp.path(), "secret.txt", b"TOP SECRET");
    #[cfg(unix)]
    std::os::unix::fs::symlink(tmp.path(), root.join("escape")).unwrap();
    let spec = format!("files=dir:{}", root.display());
    (tmp, spec)
}

#[test]
fn files_are_served_by_relative_path() {
    let (_tmp, spec) = root();
    let node = Server::start(&["--group", &spec]);
    let r = node.get("/api/files/hello.txt");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello, world\n");
    // A raw '/' in the key and its encoded form name the same file.
    assert_eq!(
        node.get("/api/files/nested/deep/data.bin").body,
        [0, 1, 2, 255]
    );
    assert_eq!(
        node.get("/api/files/nested%2Fdeep%2Fdata.bin").body,
        [0, 1, 2, 255]
    );
    assert_eq!(
        node.get("/api/files/with%20space+plus.txt").body,
        b"odd name"
    );
    let missing = node.get("/api/files/nope.txt");
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(
        node.get("/api/files/nested").status,
        404,
        "a directory is not a value"
    );
}

#[test]
fn path_escapes_are_refused_with_400_and_never_read() {
    let (_tmp, spec) = root();
    let node = Server::start(&["--group", &spec]);
    let mut attempts = vec![
        "/api/files/..%2Fsecret.txt",
        "/api/files/%2E%2E/secret.txt",
        "/api/files/%2e%2e%2fsecret.txt",
        "/api/files/a/../../secret.txt",
        "/api/files/../secret.txt",
        "/api/files/%2Fetc%2Fpasswd",
        "/api/files//etc/passwd",
        "/api/files/hello.txt%00.png",
        "/api/files/%00",
        "/api/files/./hello.txt",
        // The peer route decodes the same way (plus form decoding) and is guarded too.
        "/_geecache/files/..%2Fsecret.txt",
        "/_geecache/files/%2E%2E%2Fsecret.txt",
    ];
    if cfg!(unix) {
        attempts.push("/api/files/escape/secret.txt");
        attempts.push("/api/files/escape%2Fsecret.txt");
    }
    let tried = attempts.len() as f64;
    for path in attempts {
        let r = node.get(path);
        assert_eq!(r.status, 400, "{path}: {} {}", r.status, r.text());
        assert!(
            r.text().starts_with("invalid key: "),
            "{path}: {}",
            r.text()
        );
        assert!(!r.text().contains("TOP SECRET"));
        assert_eq!(
            r.headers.get("x-geecache-error").map(String::as_str),
            Some(ErrorKind::InvalidKey.as_str())
        );
    }
    // Nothing was loaded for any of them: each was refused as a rejected key, by its text
    // before the cache, or (the symlinks) when it was looked up.
    let scrape = parse_metrics(&node.get("/metrics").text());
    let files = [("group", "files")];
    assert_eq!(
        metric(&scrape, "geecache_group_local_loads_total", &files),
        Some(0.0)
    );
    assert_eq!(
        metric(&scrape, "geecache_group_keys_rejected_total", &files),
        Some(tried)
    );
    let looked_up = if cfg!(unix) { 2.0 } else { 0.0 };
    assert_eq!(
        metric(&scrape, "geecache_group_gets_total", &files),
        Some(looked_up)
    );
}

// Regression: a FIFO in a `dir:` root hung its request for ever (the open waits for a writer),
// and then the shutdown: the node logged "drained; bye" and never exited. A FIFO is no value,
// and the node exits after a drain whatever its blocking threads are doing.
#[cfg(unix)]
#[test]
fn a_fifo_in_the_root_is_not_found_and_the_node_still_shuts_down() {
    let (tmp, _) = root();
    let root = tmp.path().join("root");
    let status = std::process::Command::new("mkfifo")
        .arg(root.join("pipe"))
        .status()
        .expect("running mkfifo");
    assert!(status.success());
    let spec = format!("files=dir:{},origin_timeout=2s", root.display());
    let mut node = Server::start(&["--group", &spec]);
    let r = node.get("/api/files/pipe");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(node.get("/api/files/hello.txt").body, b"hello, world\n");
    node.process.terminate();
    let exit = node.process.wait(crate::support::DEADLINE);
    assert!(exit.success(), "{exit:?}");
}
