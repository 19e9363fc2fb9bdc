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
