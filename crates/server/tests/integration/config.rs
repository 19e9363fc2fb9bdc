//! A bad configuration stops `serve` before it binds, with one precise message and status 2.

use crate::support::{Server, geecache, request_with_body, run};

/// Runs `serve` with `args` (and `env`), expecting exit status 2 and exactly `message`.
fn refused(args: &[&str], env: &[(&str, &str)], message: &str) {
    let mut cmd = geecache();
    cmd.arg("serve").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: stderr was {:?}",
        out.stderr
    );
    assert_eq!(
        out.stderr.trim_end(),
        format!("geecache: config error: {message}"),
        "{args:?}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing may be served: {:?}",
        out.stdout
    );
}

#[test]
fn no_groups_is_refused_with_a_hint() {
    refused(
        &["--listen", "127.0.0.1:0"],
        &[],
        "no groups configured: add --group NAME=SOURCE (e.g. --group scores=demo) or a \
         [groups.NAME] table with a source to the config file",
    );
}

#[test]
fn bad_flags_are_named_with_what_is_allowed() {
    refused(
        &["--listen", "localhost:8001", "--group", "scores=demo"],
        &[],
        "invalid --listen \"localhost:8001\": not an IP:PORT socket address (host names are not \
         resolved); expected e.g. 127.0.0.1:8001, 0.0.0.0:8001 or [::1]:8001; port 0 picks a \
         free port",
    );
    refused(
        &["--group", "scores=demo", "--peer-timeout", "5"],
        &[],
        "invalid --peer-timeout \"5\": not a duration; expected a whole number with a unit: ms, \
         s, m or h, e.g. \"500ms\", \"2s\", \"5m\"",
    );
    refused(
        &["--group", "scores=demo", "--base-path", "/stats/"],
        &[],
        "invalid --base-path \"/stats/\": starts with the segment of another route (api, \
         healthz, readyz, stats or metrics); expected a path that starts and ends with '/' and whose segments use A-Z a-z \
         0-9 . _ ~ -, e.g. /_geecache/ or /_groupcache/ (Go groupcache)",
    );
    refused(
        &["--group", "files=dir:/no/such/dir/anywhere"],
        &[],
        "invalid --group \"files=dir:/no/such/dir/anywhere\": cannot use directory \
         /no/such/dir/anywhere: No such file or directory (os error 2); expected demo, dir:PATH \
         (a directory) or http:URL (an http:// origin), e.g. dir:/srv/files or \
         http:http://127.0.0.1:9000/objects/",
    );
    refused(
        &[
            "--group",
            "scores=demo",
            "--peers",
            "http://10.0.0.1:8001,ftp://10.0.0.2:8001",
        ],
        &[],
        "invalid --peers \"ftp://10.0.0.2:8001\": must start with http:// or https://; \
         expected http://HOST:PORT (https:// with TLS) with nothing after it, e.g. \
         http://10.0.0.1:8001",
    );
}

#[test]
fn environment_variables_are_named_when_they_are_wrong() {
    refused(
        &["--group", "scores=demo"],
        &[("GEECACHE_LOG_LEVEL", "chatty")],
        "invalid $GEECACHE_LOG_LEVEL \"chatty\": unknown log level; expected one of off, error, \
         warn, info, debug, trace, or a filter such as info,geecache_group=debug",
    );
    refused(
        &[],
        &[("GEECACHE_GROUPS", "scores=demo;bad/name=demo")],
        "invalid $GEECACHE_GROUPS \"bad/name=demo\": group name \"bad/name\" is empty, too long \
         or has a character that would need escaping in a URL; expected 1 to 64 characters from \
         A-Z a-z 0-9 . _ ~ -, e.g. scores",
    );
}

#[test]
fn config_file_mistakes_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("geecache.toml");
    std::fs::write(
        &path,
        "[groups.scores]\nsource = \"demo\"\ncache_bytes = \"lots\"\n",
    )
    .unwrap();
    let shown = path.display().to_string();
    refused(
        &["--config", &shown],
        &[],
        &format!(
            "invalid groups.scores.cache_bytes (in {shown}) \"lots\": cache size \"lots\" is not \
             a size; expected a byte count like 1048576, or a number with a unit: B, KB, MB, GB \
             (powers of 1000) or KiB, MiB, GiB (powers of 1024), e.g. \"64MiB\"; 0 means \
             unbounded"
        ),
    );
    let missing = dir.path().join("absent.toml").display().to_string();
    refused(
        &["--config", &missing],
        &[],
        &format!("config file {missing}: cannot read it: No such file or directory (os error 2)"),
    );
}

#[test]
fn unknown_config_keys_are_refused_by_the_toml_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("geecache.toml");
    std::fs::write(&path, "lisen = \"127.0.0.1:0\"\n").unwrap();
    let out = run(geecache().args(["serve", "--config"]).arg(&path));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr
            .contains("unknown field `lisen`, expected one of"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_syntax_error_on_the_command_line_is_status_2_too() {
    let out = run(geecache().args(["serve", "--no-such-flag"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("--no-such-flag"), "{}", out.stderr);
}

#[test]
fn a_flag_wins_over_its_environment_variable() {
    // The variable alone would be refused; the flag replaces it, so the node starts.
    let node = crate::support::Server::start_with(
        geecache()
            .args(["serve", "--listen", "127.0.0.1:0", "--group", "scores=demo"])
            .env("GEECACHE_LISTEN", "not-an-address")
            .env("GEECACHE_GROUPS", "other=demo"),
    );
    assert_eq!(node.get("/api/scores/player-000001").status, 200);
    // --group replaced the variable's list, so "other" is not served.
    assert_eq!(node.get("/api/other/player-000001").status, 404);
}

#[cfg(feature = "etcd")]
#[test]
fn etcd_without_a_cluster_or_with_peers_is_refused() {
    refused(
        &["--group", "scores=demo"],
        &[("GEECACHE_ETCD", "http://127.0.0.1:2379")],
        "$GEECACHE_ETCD needs --cluster NAME (or cluster = \"NAME\" in the config file): nodes \
         see only the nodes of their own cluster",
    );
    refused(
        &[
            "--group",
            "scores=demo",
            "--etcd",
            "http://127.0.0.1:2379",
            "--cluster",
            "c1",
            "--peers",
            "http://127.0.0.1:8001",
        ],
        &[],
        "--etcd and --peers (or etcd and peers in the config file) are both set: the member list \
         comes from one place; keep --etcd to follow the live nodes, or --peers for a fixed list",
    );
}

#[cfg(not(feature = "etcd"))]
#[test]
fn etcd_in_a_build_without_etcd_is_refused_with_how_to_rebuild() {
    refused(
        &[
            "--group",
            "scores=demo",
            "--etcd",
            "http://127.0.0.1:2379",
            "--cluster",
            "c1",
        ],
        &[],
        "--etcd is set, but this geecache was built without etcd support; rebuild it with \
         `cargo build --release -p geecache-server --features etcd` (needs protoc), or use \
         --peers for a fixed member list",
    );
}

/// The names of `pid`'s threads, from `/proc` (Linux).
fn thread_names(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the node's /proc entry");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

#[test]
fn threads_sets_the_number_of_runtime_workers() {
    for threads in ["1", "3"] {
        let node = crate::support::Server::start(&["--group", "scores=demo", "--threads", threads]);
        // Serve something first, so the count is of a node at work, not one still starting.
        assert_eq!(node.get("/api/scores/player-000001").status, 200);
        // A thread takes its name when it first runs, so on a busy machine a worker may still
        // carry its parent's for a moment: read again until the count stops being short, up
        // to a deadline. More workers than asked for fails at once.
        let expected: usize = threads.parse().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let workers = loop {
            let workers = thread_names(node.process.pid())
                .into_iter()
                .filter(|name| name == "geecache-worker")
                .count();
            if workers >= expected || std::time::Instant::now() > deadline {
                break workers;
            }
            std::thread::sleep(std::time::Duration::from_millis(20)); // polling, not a sync point
        };
        assert_eq!(workers, expected, "--threads {threads}");
    }
}

// The batch and write limits of the client routes come from the node's settings: over them a
// request is answered 413 and the node goes on serving.
#[test]
fn batch_and_set_limits_answer_413_and_the_node_keeps_serving() {
    let node = Server::start(&[
        "--group",
        "scores=demo",
        "--max-batch-keys",
        "256",
        "--max-batch-bytes",
        "64KiB",
        "--max-set-bytes",
        "16",
    ]);
    let keys = |n: usize| {
        let keys: Vec<String> = (0..n).map(|i| format!("\"player-{i:06}\"")).collect();
        format!("{{\"keys\": [{}]}}", keys.join(","))
    };
    let batch = |body: &str| request_with_body(node.addr, "POST", "/api/scores", body.as_bytes());
    assert_eq!(batch(&keys(256)).status, 200, "a batch at the key limit");
    assert_eq!(batch(&keys(257)).status, 413, "a batch over the key limit");
    // 64 KiB of JSON in fewer keys than the limit: refused for its size alone.
    let long_key = format!("{{\"keys\": [\"{}\"]}}", "k".repeat(64 << 10));
    assert_eq!(batch(&long_key).status, 413, "a batch over the byte limit");

    let set = |value: &[u8]| request_with_body(node.addr, "PUT", "/api/scores/mine", value);
    assert_eq!(set(&[b'v'; 17]).status, 413, "a value over the set limit");
    assert_eq!(set(&[b'v'; 16]).status, 204, "a value at the set limit");
    let value = node.get("/api/scores/mine");
    assert_eq!((value.status, value.body), (200, vec![b'v'; 16]));
    assert_eq!(node.get("/api/scores/player-000001").status, 200);
}

#[test]
fn batch_and_set_limits_out_of_range_are_refused_with_what_is_allowed() {
    for (flag, value, message) in [
        (
            "--max-batch-keys",
            "255",
            "out of range; expected a whole number between 256",
        ),
        ("--max-batch-keys", "many", "not a whole number"),
        ("--max-batch-bytes", "1KiB", "expected at least 64KiB"),
        ("--max-set-bytes", "0", "must be greater than zero"),
        ("--max-set-bytes", "8 potatoes", "not a size"),
    ] {
        let out = run(geecache().args(["serve", "--group", "s=demo", flag, value]));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {value}: {:?}",
            out.stderr
        );
        assert!(
            out.stderr.contains(message) && out.stderr.contains(flag),
            "{flag} {value}: {:?}",
            out.stderr
        );
    }
}
