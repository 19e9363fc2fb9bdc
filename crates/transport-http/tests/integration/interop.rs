//! Interoperability with the real Go groupcache library: a mixed cluster of Rust and Go nodes.
//!
//! The Go nodes run `tests/go/gcnode`, a small program on top of `github.com/golang/groupcache`,
//! built here once per test run with the system Go toolchain in GOPATH mode against the
//! Debian-packaged sources (`golang-go`, `golang-github-golang-groupcache-dev`,
//! `golang-github-golang-protobuf-1-3-dev`). Without them the tests say why and pass as skipped,
//! unless `GEECACHE_REQUIRE_GO=1`, which turns a missing toolchain into a failure.
//!
//! Every node, Rust or Go, loads `value-of-{key}` for a key and counts its loads per key, so any
//! answer can be checked whoever loaded it, and the load counts show who owns each key.
//!
//! One direction is deliberately left out: a Go node asking another Go node for a key with a
//! space. Go groupcache's client form-encodes the key (a space becomes `+`) but its server
//! path-decodes it (a `+` stays a `+`), so upstream loses spaces between two Go nodes; that is
//! not ours to test. Between a Rust node and a Go node spaces survive both ways.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};
use std::time::{Duration, Instant};

use geecache_group::{Group, LoadError, Loaded, Registry, getter_fn};
use geecache_transport_http::{HttpPool, RouterConfig, router, serve};

/// Where the Debian packages put groupcache and protobuf (a GOPATH tree).
const GOPATH: &str = "/usr/share/gocode";
/// Set to `1` (CI does) to fail instead of skipping when Go or groupcache is missing.
const REQUIRE_GO: &str = "GEECACHE_REQUIRE_GO";
/// groupcache's base path; ours is configurable, theirs is fixed in the Go program.
const BASE_PATH: &str = "/_groupcache/";
const GROUP: &str = "interop";
/// Bound on building the Go program (a cold build compiles part of the standard library).
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound on a Go node printing its address and answering `/control/ready`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on any one request: to a Go node's control API, or from any node to a peer. Generous,
/// because a peer that times out is not an error a cluster reports: it makes the asking node load
/// the key itself, which these tests would then misreport as a disagreement about the owner.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The value every node's loader returns for `key`.
fn value_of(key: &str) -> String {
    format!("value-of-{key}")
}

// ---------------------------------------------------------------------------------------------
// Finding and building the Go program.

/// The path of the built Go node, or `None` (after saying why) when the test must be skipped.
///
/// # Panics
///
/// When Go is missing and `GEECACHE_REQUIRE_GO=1`, or when Go is there but the build fails.
fn go_node_binary() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let go = match find_go() {
        Ok(go) => go,
        Err(why) => {
            assert!(
                std::env::var(REQUIRE_GO).as_deref() != Ok("1"),
                "{REQUIRE_GO}=1 but the Go interop test cannot run: {why}"
            );
            eprintln!(
                "skipping the Go groupcache interop test: {why} (install golang-go, \
                 golang-github-golang-groupcache-dev and golang-github-golang-protobuf-1-3-dev; \
                 set {REQUIRE_GO}=1 to make this a failure)"
            );
            return None;
        }
    };
    match BUILT.get_or_init(|| build_go_node(&go)) {
        Ok(binary) => Some(binary.clone()),
        Err(why) => panic!("building the Go groupcache node failed: {why}"),
    }
}

/// The `go` executable on `PATH`, once the groupcache and protobuf sources are known to be there.
fn find_go() -> Result<PathBuf, String> {
    for package in [
        "github.com/golang/groupcache",
        "github.com/golang/protobuf/proto",
    ] {
        let dir = Path::new(GOPATH).join("src").join(package);
        if !dir.is_dir() {
            return Err(format!(
                "Go package {package} not found at {}",
                dir.display()
            ));
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("go"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| "no `go` executable on PATH".to_owned())
}

/// Builds `tests/go/gcnode` into cargo's per-target temporary directory, which also holds the Go
/// build cache: a fresh CI machine may have no writable (or no) `$HOME` for Go's default one.
fn build_go_node(go: &Path) -> Result<PathBuf, String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/gcnode");
    if !source.join("main.go").is_file() {
        return Err(format!("no Go program at {}", source.display()));
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-interop");
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    // Each test process builds to its own file and renames it into place: under nextest every
    // test is a process of its own, and renaming over a binary another process is running is
    // safe where writing into it is not.
    let binary = out.join("gcnode");
    let staged = out.join(format!("gcnode.{}.tmp", std::process::id()));
    let log_path = out.join(format!("build.{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).map_err(|e| format!("creating build log: {e}"))?;
    let log_too = log.try_clone().map_err(|e| e.to_string())?;
    let mut build = Command::new(go)
        .args(["build", "-o"])
        .arg(&staged)
        .arg(".")
        .current_dir(&source)
        // GOPATH mode: the Debian packages are a GOPATH tree with no go.mod, and the build must
        // not reach the network.
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOENV", "off")
        .env("GOCACHE", out.join("gocache"))
        // A pure-Go binary: no C compiler needed, and no cgo DNS resolver for 127.0.0.1 anyway.
        .env("CGO_ENABLED", "0")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_too)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", go.display()))?;
    let status = wait_bounded(&mut build, BUILD_TIMEOUT)
        .map_err(|e| format!("`go build` {e}; see {}", log_path.display()))?;
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    if !status.success() {
        return Err(format!("`go build` exited with {status}:\n{output}"));
    }
    std::fs::rename(&staged, &binary).map_err(|e| format!("moving the Go node into place: {e}"))?;
    Ok(binary)
}

/// Waits for `child` to exit, killing it after `timeout`.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("gave up after {timeout:?}"));
        }
        // Polling a process with a deadline: std has no wait-with-timeout.
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// A Go node: a child process, killed when the guard drops (a failed assertion included).

struct GoNode {
    child: Child,
    /// Held so the child's stdin stays open: the Go node exits when it closes, which covers a
    /// test process that dies without running destructors.
    _stdin: Option<ChildStdin>,
    addr: SocketAddr,
}

impl GoNode {
    fn start(binary: &Path) -> GoNode {
        let mut child = Command::new(binary)
            .args(["-group", GROUP, "-exit-on-stdin-eof"])
            .arg(format!("-peer-timeout={}s", REQUEST_TIMEOUT.as_secs()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the Go node");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        // The guard exists before anything can fail, so the child never outlives the test.
        let mut node = GoNode {
            child,
            _stdin: stdin,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };

        // The node listens before it prints its address, so once the line is here the port
        // accepts connections. A thread reads it because std pipes have no read timeout.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(START_TIMEOUT)
            .expect("the Go node did not print its address in time");
        node.addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the Go node: {line:?}"));

        // The port accepts connections already; this shows the handler answers too.
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = None;
        for _ in 0..100 {
            match node.request("GET", "/control/ready", "") {
                Ok((200, _)) => return node,
                other => last = Some(other),
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the Go node at {} is not ready: {last:?}", node.addr);
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set_peers(&self, peers: &[String]) {
        let (status, body) = self
            .request("POST", "/control/peers", &peers.join("\n"))
            .expect("setting the Go node's peers");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    /// `group.Get(key)` on the Go node: its value, or the status and error text.
    fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        let target = format!("/control/get?key={}", percent_encode(key));
        match self.request("GET", &target, "") {
            Ok((200, body)) => Ok(body),
            Ok((status, body)) => Err(format!("{status}: {}", String::from_utf8_lossy(&body))),
            Err(e) => Err(e),
        }
    }

    /// How many times the Go loader ran, per key.
    fn loads(&self) -> HashMap<String, usize> {
        let body = self.control_text("/control/loads");
        body.lines()
            .map(|line| {
                let (count, hex) = line.split_once(' ').expect("\"<count> <hex key>\"");
                let key = String::from_utf8(from_hex(hex)).expect("a UTF-8 key");
                (key, count.parse().expect("a count"))
            })
            .collect()
    }

    /// The Go group's counters by name (`peer_errors`, `peer_loads`, ...).
    fn stats(&self) -> HashMap<String, u64> {
        let body = self.control_text("/control/stats");
        body.lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(name, n)| (name.to_owned(), n.parse().expect("a counter")))
            .collect()
    }

    fn control_text(&self, target: &str) -> String {
        match self.request("GET", target, "") {
            Ok((200, body)) => String::from_utf8(body).expect("UTF-8 from the control API"),
            other => panic!("GET {target} on the Go node at {}: {other:?}", self.addr),
        }
    }

    fn request(&self, method: &str, target: &str, body: &str) -> Result<(u16, Vec<u8>), String> {
        request(self.addr, method, target, body)
    }
}

impl Drop for GoNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 exchange, so the response ends when the connection closes: no chunked
/// bodies and no keep-alive to manage. Bounded by `REQUEST_TIMEOUT` at every step.
fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &str,
) -> Result<(u16, Vec<u8>), String> {
    let io = |e: std::io::Error| format!("{method} {target} on {}: {e}", addr);
    let mut stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).map_err(io)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(io)?;
    stream
        .set_write_timeout(Some(REQUEST_TIMEOUT))
        .map_err(io)?;
    write!(
        stream,
        "{method} {target} HTTP/1.0\r\nHost: {}\r\nContent-Length: {}\r\n\r\n{body}",
        addr,
        body.len()
    )
    .map_err(io)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(io)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            format!(
                "no end of headers in {:?}",
                String::from_utf8_lossy(&response)
            )
        })?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    Ok((status, response[split + 4..].to_vec()))
}

/// Percent-encodes every byte outside `A-Za-z0-9-_.~`, which any query decoder reads back.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A Rust node: a group with its own registry, an HttpPool speaking groupcache's base path, and
// the crate's router served on a loopback port.

type LoadCounts = Arc<Mutex<HashMap<String, usize>>>;

struct RustNode {
    url: String,
    pool: Arc<HttpPool>,
    group: Arc<Group>,
    loads: LoadCounts,
}

impl RustNode {
    async fn start() -> RustNode {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let pool = HttpPool::builder(url.clone())
            .base_path(BASE_PATH)
            .build()
            .expect("building the pool");
        let loads = LoadCounts::default();
        let counted = Arc::clone(&loads);
        let registry = Registry::new();
        let group = Group::builder(GROUP)
            .register(&registry)
            .peers(pool.clone())
            .peer_timeout(REQUEST_TIMEOUT)
            .getter(getter_fn(move |key: String| {
                *counted
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(key.clone())
                    .or_default() += 1;
                async move { Ok::<_, LoadError>(Loaded::from(value_of(&key))) }
            }))
            .build()
            .expect("building the group");
        let app = router(RouterConfig::new(registry).pool(Arc::clone(&pool)));
        // The server stops when the test's runtime is dropped.
        tokio::spawn(serve(listener, app, std::future::pending()));
        RustNode {
            url,
            pool,
            group,
            loads,
        }
    }

    fn loads(&self) -> HashMap<String, usize> {
        self.loads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

// ---------------------------------------------------------------------------------------------
// The mixed cluster.

/// Two Rust nodes and two Go nodes that all know each other. The Rust nodes run on `runtime`'s
/// worker threads, so the test thread may block on the Go nodes' control API while a Go node is
/// calling back into a Rust node.
struct Cluster {
    rust: Vec<RustNode>,
    go: Vec<GoNode>,
    urls: Vec<String>,
    runtime: tokio::runtime::Runtime,
}

/// Who answers a get in the cluster: a Rust node through `group.get`, a Go node through its
/// control API (`group.Get` in Go).
#[derive(Clone, Copy, Debug)]
enum Node {
    Rust(usize),
    Go(usize),
}

impl Cluster {
    fn start(binary: &Path) -> Cluster {
        // Go nodes first: each is dropped (killed) by whatever panics after it.
        let go: Vec<GoNode> = (0..2).map(|_| GoNode::start(binary)).collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let rust: Vec<RustNode> =
            runtime.block_on(async { vec![RustNode::start().await, RustNode::start().await] });
        let mut urls: Vec<String> = rust.iter().map(|n| n.url.clone()).collect();
        urls.extend(go.iter().map(GoNode::url));
        for node in &rust {
            node.pool
                .set_peers(&urls)
                .expect("setting the Rust pool's peers");
        }
        for node in &go {
            node.set_peers(&urls);
        }
        Cluster {
            rust,
            go,
            urls,
            runtime,
        }
    }

    fn nodes(&self) -> Vec<Node> {
        (0..self.rust.len())
            .map(Node::Rust)
            .chain((0..self.go.len()).map(Node::Go))
            .collect()
    }

    fn url(&self, node: Node) -> String {
        match node {
            Node::Rust(i) => self.rust[i].url.clone(),
            Node::Go(i) => self.go[i].url(),
        }
    }

    /// The owner of `key` by the Rust ring, after checking both Rust nodes agree on it.
    fn owner(&self, key: &str) -> String {
        let owners: Vec<Option<String>> = self.rust.iter().map(|n| n.pool.owner_of(key)).collect();
        assert!(
            owners.windows(2).all(|w| w[0] == w[1]),
            "Rust nodes disagree on the owner of {key:?}: {owners:?}"
        );
        owners[0]
            .clone()
            .unwrap_or_else(|| panic!("no owner for {key:?} in a four-node ring"))
    }

    fn is_go(&self, url: &str) -> bool {
        self.go.iter().any(|n| n.url() == url)
    }

    /// Asks `node` for `key` and checks the value.
    fn get(&self, node: Node, key: &str) {
        let got = match node {
            Node::Rust(i) => self
                .runtime
                .block_on(self.rust[i].group.get(key))
                .map(|v| v.to_vec())
                .map_err(|e| e.to_string()),
            Node::Go(i) => self.go[i].get(key),
        };
        match got {
            Ok(value) => assert_eq!(
                String::from_utf8_lossy(&value),
                value_of(key),
                "{node:?} ({}) answered {key:?} with the wrong value",
                self.url(node)
            ),
            Err(e) => panic!("{node:?} ({}) failed to get {key:?}: {e}", self.url(node)),
        }
    }

    /// Every load in the cluster: key → the URLs of the nodes that loaded it, once per load.
    fn loads(&self) -> BTreeMap<String, Vec<String>> {
        let mut all: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let per_node = self
            .rust
            .iter()
            .map(|n| (n.url.clone(), n.loads()))
            .chain(self.go.iter().map(|n| (n.url(), n.loads())));
        for (url, loads) in per_node {
            for (key, count) in loads {
                all.entry(key)
                    .or_default()
                    .extend(std::iter::repeat_n(url.clone(), count));
            }
        }
        all
    }

    /// Each key in `keys` was loaded exactly once in the whole cluster, by its owner; nothing
    /// else was loaded (a key the wire mangled would show up here under its mangled name).
    fn assert_each_key_loaded_once_by_its_owner(&self, keys: &[String]) {
        let loads = self.loads();
        for key in keys {
            let owner = self.owner(key);
            assert_eq!(
                loads.get(key),
                Some(&vec![owner.clone()]),
                "{key:?} must be loaded once, by its owner {owner} (Go: {})",
                self.is_go(&owner)
            );
        }
        let unexpected: Vec<&String> = loads.keys().filter(|k| !keys.contains(k)).collect();
        assert!(
            unexpected.is_empty(),
            "keys nobody asked for were loaded: {unexpected:?}"
        );
    }

    /// No node fell back to loading locally because a peer failed.
    fn assert_no_peer_errors(&self) {
        for node in &self.rust {
            assert_eq!(
                node.group.stats().peer_errors,
                0,
                "peer errors at {}",
                node.url
            );
        }
        for node in &self.go {
            assert_eq!(
                node.stats()["peer_errors"],
                0,
                "peer errors at {}",
                node.url()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// Plain keys `k0`, `k1`, ... until every node owns at least `per_node` of them.
fn keys_spread_over(cluster: &Cluster, per_node: usize) -> Vec<String> {
    let mut owned: HashMap<String, usize> = HashMap::new();
    let mut keys = Vec::new();
    for i in 0..10_000 {
        let key = format!("k{i}");
        *owned.entry(cluster.owner(&key)).or_default() += 1;
        keys.push(key);
        if cluster
            .urls
            .iter()
            .all(|u| owned.get(u).copied().unwrap_or(0) >= per_node)
        {
            return keys;
        }
    }
    panic!("10,000 keys did not give every node {per_node} keys: {owned:?}");
}

// Both implementations place keys on the same ring: every node is asked for every key, in an
// order that lets each node be the first to ask for some keys, and still each key is loaded
// exactly once in the cluster, by the node the Rust ring names. A Go node that placed a key
// elsewhere would load it itself (or its owner would), and the count would show it.
#[test]
fn rust_and_go_nodes_agree_on_owners_and_load_each_key_once() {
    let Some(binary) = go_node_binary() else {
        return;
    };
    let cluster = Cluster::start(&binary);
    for node in &cluster.rust {
        let mut members = cluster.urls.clone();
        members.sort();
        assert_eq!(node.pool.peers(), members);
    }
    let keys = keys_spread_over(&cluster, 4);
    let nodes = cluster.nodes();
    for (i, key) in keys.iter().enumerate() {
        for step in 0..nodes.len() {
            cluster.get(nodes[(i + step) % nodes.len()], key);
        }
    }
    cluster.assert_each_key_loaded_once_by_its_owner(&keys);
    cluster.assert_no_peer_errors();
    for node in &cluster.go {
        let stats = node.stats();
        assert!(
            stats["peer_loads"] > 0,
            "{} fetched nothing from a peer",
            node.url()
        );
        assert!(
            stats["server_requests"] > 0,
            "{} served no peer",
            node.url()
        );
    }
    for node in &cluster.rust {
        assert!(
            node.group.stats().peer_loads > 0,
            "{} fetched nothing",
            node.url
        );
    }
}

/// Keys that exercise the encodings: form encoding's `+` for space, `%2F` for `/`, paths a
/// normalising router would rewrite, multi-byte UTF-8, and characters that mean something in
/// a URL or to a percent-decoder (`%41` must stay three characters, not become `A`).
const AWKWARD_KEYS: &[&str] = &[
    "a b",
    " lead and trail ",
    "a/b",
    "//x",
    "../y",
    "./z",
    "日本語",
    "ключ",
    "100%",
    "%41",
    "a+b",
    "+ %20 +",
    "?#&=",
    "q?x=1&y=2#frag",
    "tab\there",
    "semi;colon,comma",
    "emoji 🦀",
];

/// The first of `base`, `base1`, `base2`, ... that `wanted` says is owned by the right side.
fn variant_owned(cluster: &Cluster, base: &str, wanted: impl Fn(&str) -> bool) -> String {
    std::iter::once(base.to_owned())
        .chain((1..1_000).map(|i| format!("{base}{i}")))
        .find(|key| wanted(&cluster.owner(key)))
        .unwrap_or_else(|| panic!("no variant of {base:?} is owned by the wanted side"))
}

// Awkward keys cross the wire both ways intact: a Rust node asks a Go owner (our client's
// encoding against Go's server decoding) and a Go node asks a Rust owner (Go's `QueryEscape`
// against our server decoding). A mangled key would come back with the wrong value, or be loaded
// under its mangled name, or by a node that does not own it.
#[test]
fn awkward_keys_cross_between_rust_and_go_intact() {
    let Some(binary) = go_node_binary() else {
        return;
    };
    let cluster = Cluster::start(&binary);
    let mut keys = Vec::new();
    for base in AWKWARD_KEYS {
        let go_owned = variant_owned(&cluster, base, |owner| cluster.is_go(owner));
        let rust_owned = variant_owned(&cluster, base, |owner| !cluster.is_go(owner));
        for i in 0..cluster.rust.len() {
            cluster.get(Node::Rust(i), &go_owned);
        }
        for i in 0..cluster.go.len() {
            cluster.get(Node::Go(i), &rust_owned);
        }
        keys.push(go_owned);
        keys.push(rust_owned);
    }
    cluster.assert_each_key_loaded_once_by_its_owner(&keys);
    cluster.assert_no_peer_errors();
}

// Regression: Go groupcache serves a DELETE as a GET and answers 200, and a removal of a key a Go
// node owned used to take that 200 for "the owner removed it and told everyone": the client
// heard 204 while a hot copy on another geecache node went on answering. Only a geecache owner's
// explicit confirmation counts, so here the node asked to remove the key tells every member
// itself, and reports the Go owner as unconfirmed.
#[test]
fn removing_a_go_owned_key_leaves_no_hot_copy_on_a_geecache_node() {
    let Some(binary) = go_node_binary() else {
        return;
    };
    let cluster = Cluster::start(&binary);
    let key = variant_owned(&cluster, "removed", |owner| cluster.is_go(owner));
    let owner = cluster.owner(&key);
    let (asker, holder) = (&cluster.rust[0], &cluster.rust[1]);
    // Fetched from the Go owner until the holder keeps a hot copy (one fetch in ten, by
    // default); a hot hit makes no fetch, so the loop ends there.
    for _ in 0..1_000 {
        if holder.group.stats().hot.items == 1 {
            break;
        }
        cluster.get(Node::Rust(1), &key);
    }
    assert_eq!(holder.group.stats().hot.items, 1, "no hot copy of {key:?}");

    let addr: SocketAddr = asker
        .url
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .expect("a loopback URL");
    let target = format!("/api/{GROUP}/{}", percent_encode(&key));
    let (status, body) = request(addr, "DELETE", &target, "").expect("the DELETE is answered");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(
        status, 200,
        "not 204: the Go owner did not confirm ({body})"
    );
    assert!(
        body.contains(&owner),
        "{owner} is named unconfirmed: {body}"
    );
    assert_eq!(
        holder.group.stats().hot.items,
        0,
        "the hot copy on {} survived the removal",
        holder.url
    );
}

// A Rust node's batch get in a mixed cluster: Go nodes do not know the batch request (they
// answer its key-less path 400 without loading anything), so they are asked key by key, and
// remembered; the Rust peer gets one batch. Every key is still loaded once, by its owner.
#[test]
fn a_batch_in_a_mixed_cluster_asks_go_owners_key_by_key() {
    let Some(binary) = go_node_binary() else {
        return;
    };
    let cluster = Cluster::start(&binary);
    let keys = keys_spread_over(&cluster, 3);
    for round in 0..2 {
        let asked: Vec<String> = keys.iter().map(|k| format!("{k}-{round}")).collect();
        let results = cluster
            .runtime
            .block_on(cluster.rust[0].group.get_many(&asked));
        for (key, result) in asked.iter().zip(results) {
            let value = result.unwrap_or_else(|e| panic!("{key:?}: {e}"));
            assert_eq!(value, value_of(key).as_str(), "{key:?}");
        }
    }
    let all: Vec<String> = (0..2)
        .flat_map(|round| keys.iter().map(move |k| format!("{k}-{round}")))
        .collect();
    cluster.assert_each_key_loaded_once_by_its_owner(&all);
    cluster.assert_no_peer_errors();
}
