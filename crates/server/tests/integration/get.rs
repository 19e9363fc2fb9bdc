//! `geecache get URL GROUP KEY`: 0 with the value, 1 when not found, 2 on errors.

use crate::support::{Server, free_port, geecache, run};

#[test]
fn get_prints_the_value_or_says_why_not() {
    let node = Server::start(&["--group", "scores=demo"]);
    let url = node.url();

    let out = run(geecache().args(["get", &url, "scores", "player-000042"]));
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("{\"player\":\"player-000042\",\"score\":"),
        "{}",
        out.stdout
    );

    let out = run(geecache().args(["get", &url, "scores", "no-such-player"]));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    // Regression: the message said `not found: not found: ...`.
    assert_eq!(
        out.stderr,
        "geecache: not found: key \"no-such-player\" in group \"scores\"\n"
    );
    assert!(out.stdout.is_empty());

    // An unknown group is a mistake, not a miss.
    let out = run(geecache().args(["get", &url, "nope", "player-000042"]));
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("no such group"), "{}", out.stderr);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("value.json");
    let out = run(geecache()
        .args(["get", &url, "scores", "player-000007", "-o"])
        .arg(&file));
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout.is_empty(),
        "with -o, the value goes to the file only"
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.starts_with("{\"player\":\"player-000007\""),
        "{written}"
    );
}

#[test]
fn get_of_several_keys_fetches_them_in_one_request() {
    let node = Server::start(&["--group", "scores=demo"]);
    let url = node.url();
    let keys = ["player-000001", "player-000002", "player-000003"];
    let out = run(geecache().args(["get", &url, "scores"]).args(keys));
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    for (line, key) in lines.iter().zip(keys) {
        let prefix = format!("{key}: {{\"player\":\"{key}\"");
        assert!(line.starts_with(&prefix), "{line}");
    }

    // A missing key among found ones: the others are printed, the miss is named, status 1.
    let out = run(geecache().args(["get", &url, "scores", "player-000004", "no-such-player"]));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stdout.starts_with("player-000004: "), "{}", out.stdout);
    assert_eq!(out.stderr, "geecache: no-such-player: not found\n");

    // -o DIR: one file per key, named for the key.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("values");
    let out = run(geecache()
        .args(["get", &url, "scores", "player-000005", "a/b", "-o"])
        .arg(&target));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(target.join("player-000005")).unwrap();
    assert!(
        written.starts_with("{\"player\":\"player-000005\""),
        "{written}"
    );
    assert!(
        !target.join("a%2Fb").exists(),
        "a missing key writes no file"
    );
}

#[test]
fn get_fails_with_status_2_when_nothing_answers() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = run(geecache().args(["get", &url, "scores", "k", "--timeout", "5s"]));
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    // Regression: this said `request failed: client error (Connect)`.
    assert_eq!(
        out.stderr,
        format!("geecache: connection refused to {url}\n")
    );

    let out = run(geecache().args(["get", "127.0.0.1:1", "scores", "k"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("invalid node URL"), "{}", out.stderr);
}

// Regression: a port already in use was reported twice, once as a log line and once as the
// exit message.
#[test]
fn a_taken_port_is_reported_once() {
    let node = Server::start(&["--group", "scores=demo"]);
    let out = run(geecache().args([
        "serve",
        "--listen",
        &node.addr.to_string(),
        "--group",
        "scores=demo",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("cannot listen on").count(),
        1,
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&node.addr.to_string()),
        "{}",
        out.stderr
    );
}
