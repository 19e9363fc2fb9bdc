//! Starting the binary, reading what it prints, and a minimal HTTP/1.1 client.
//!
//! The client is hand-written on `std::net::TcpStream` on purpose: the path-escape tests must
//! send exact bytes (`%2E%2E`, `%00`, `//`), and a library client might normalise them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any wait in these tests may take before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// The binary under test, with no `GEECACHE_*` variables inherited from the environment.
pub(crate) fn geecache() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_geecache"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GEECACHE_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

/// A finished run.
pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs the binary to completion, failing the test if it takes longer than [`DEADLINE`].
pub(crate) fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut child = Running::adopt(child);
    let status = child.wait(DEADLINE);
    Output {
        status,
        stdout: child.stdout_text(),
        stderr: child.stderr_text(),
    }
}

/// A child process that is killed when dropped, with its output collected by threads.
pub(crate) struct Running {
    child: Child,
    lines: Receiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn adopt(mut child: Child) -> Running {
        let (tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout is piped");
        let copy = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                copy.lock().unwrap().push_str(&line);
                copy.lock().unwrap().push('\n');
                let _ = tx.send(line);
            }
        });
        let err = child.stderr.take().expect("stderr is piped");
        let copy = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(err);
            let mut buf = String::new();
            while reader.read_line(&mut buf).is_ok_and(|n| n > 0) {
                copy.lock().unwrap().push_str(&buf);
                buf.clear();
            }
        });
        Running {
            child,
            lines,
            stdout,
            stderr,
        }
    }

    /// Starts the binary with `args`.
    pub(crate) fn spawn(cmd: &mut Command) -> Running {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        Running::adopt(child)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line starting with `prefix`, and returns the rest of it.
    pub(crate) fn wait_for_line(&mut self, prefix: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                Err(_) => panic!(
                    "no line starting with {prefix:?} within {DEADLINE:?}; stderr:\n{}",
                    self.stderr_text()
                ),
            }
        }
    }

    /// Waits (bounded) for the process to exit.
    pub(crate) fn wait(&mut self, limit: Duration) -> ExitStatus {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads drain what is left.
                let drained = Instant::now() + Duration::from_secs(5);
                while Arc::strong_count(&self.stdout) > 1 || Arc::strong_count(&self.stderr) > 1 {
                    if Instant::now() > drained {
                        break;
                    }
                    std::thread::yield_now();
                }
                return status;
            }
            assert!(
                Instant::now() < end,
                "the process did not exit within {limit:?}; stderr:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(10)); // polling interval, not a sync point
        }
    }

    pub(crate) fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub(crate) fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The exit status, if the process has exited.
    pub(crate) fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Sends SIGTERM.
    pub(crate) fn terminate(&self) {
        self.signal("-TERM");
    }

    /// Sends SIGINT, as Ctrl-C does.
    pub(crate) fn interrupt(&self) {
        self.signal("-INT");
    }

    /// Sends SIGHUP (a TLS node reloads its files).
    pub(crate) fn hangup(&self) {
        self.signal("-HUP");
    }

    fn signal(&self, which: &str) {
        let status = Command::new("kill")
            .args([which, &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `geecache serve` process and the address it reported.
pub(crate) struct Server {
    pub(crate) process: Running,
    pub(crate) addr: SocketAddr,
}

impl Server {
    /// Starts `geecache serve --listen 127.0.0.1:0 <args>` and waits until it is ready.
    pub(crate) fn start(args: &[&str]) -> Server {
        Server::start_with(
            geecache()
                .args(["serve", "--listen", "127.0.0.1:0"])
                .args(args),
        )
    }

    /// Starts a prepared `serve` command and waits until `/readyz` says ready.
    pub(crate) fn start_with(cmd: &mut Command) -> Server {
        Server::start_authorized(cmd, &[])
    }

    /// Like [`Server::start_with`], sending `headers` (a token) with the readiness polls.
    pub(crate) fn start_authorized(cmd: &mut Command, headers: &[(&str, &str)]) -> Server {
        let mut process = Running::spawn(cmd);
        let addr = process.wait_for_line("listening on http://");
        let addr: SocketAddr = addr.parse().expect("the listening line holds an address");
        let server = Server { process, addr };
        server.wait_ready(headers);
        server
    }

    /// Polls `/readyz` until 200 (bounded).
    pub(crate) fn wait_ready(&self, headers: &[(&str, &str)]) {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Ok(r) = try_request(self.addr, "GET", "/readyz", headers)
                && r.status == 200
            {
                return;
            }
            assert!(Instant::now() < end, "node never became ready");
            std::thread::sleep(Duration::from_millis(10)); // polling interval
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[])
    }
}

/// An HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request with `Connection: close`; panics on network errors.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    try_request(addr, method, path, headers)
        .unwrap_or_else(|e| panic!("{method} {path} to {addr}: {e}"))
}

/// Sends one request; `path` goes on the wire byte for byte.
pub(crate) fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, DEADLINE)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// Sends one request with a body (and its `Content-Length`); panics on network errors.
pub(crate) fn request_with_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> Response {
    let send = || -> std::io::Result<Response> {
        let mut stream = TcpStream::connect_timeout(&addr, DEADLINE)?;
        stream.set_read_timeout(Some(DEADLINE))?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        parse_response(&raw)
    };
    send().unwrap_or_else(|e| panic!("{method} {path} to {addr}: {e}"))
}

pub(crate) fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("empty response"))?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// `n` distinct free loopback ports, for nodes that must know each other's URLs before any
/// starts (a static peer list). All `n` are held at once while they are chosen: one at a time,
/// the kernel may hand out a port just let go again, and two nodes get the same.
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    (held.iter())
        .map(|l| l.local_addr().expect("a bound address").port())
        .collect()
}

/// A free loopback port: bind port 0, note the port, let it go. Only for tests that must
/// know a node's URL before it starts; for several nodes, [`free_ports`].
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Writes `contents` to `dir/name`, creating parent directories.
pub(crate) fn write_file(dir: &Path, name: &str, contents: &[u8]) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// Parses a `/metrics` body with a Prometheus text parser, checking that every sample line
/// was understood (the parser skips lines it cannot read; a skipped line is a failure here).
pub(crate) fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    let sample_lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("the exposition parses");
    let parsed: usize = scrape
        .samples
        .iter()
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => buckets.len(),
            _ => 1,
        })
        .sum();
    assert_eq!(
        parsed, sample_lines,
        "every sample line must parse:\n{text}"
    );
    scrape
}

/// The value of sample `name` with exactly `labels` in a parsed scrape.
pub(crate) fn metric(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    let want: HashMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && *s.labels == want)
        .and_then(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(*v),
            _ => None,
        })
}

/// A node's `/stats` as JSON.
pub(crate) fn stats(addr: SocketAddr) -> serde_json::Value {
    let r = request(addr, "GET", "/stats", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).expect("/stats is JSON")
}

/// The member list a node's `/stats` reports.
pub(crate) fn members(addr: SocketAddr) -> Vec<String> {
    stats(addr)["peers"]
        .as_array()
        .expect("peers is an array")
        .iter()
        .map(|p| p.as_str().expect("a peer is a string").to_owned())
        .collect()
}

/// The `geecache_peers` gauge of a node.
fn peers_gauge(addr: SocketAddr) -> Option<f64> {
    let scrape = parse_metrics(&request(addr, "GET", "/metrics", &[]).text());
    metric(&scrape, "geecache_peers", &[])
}

/// Polls every node until both its `/stats` member list and its `geecache_peers` gauge match
/// `expected`, failing after `within`.
pub(crate) fn wait_for_members(nodes: &[&Server], expected: &[String], within: Duration) {
    let end = Instant::now() + within;
    for node in nodes {
        loop {
            let seen = members(node.addr);
            #[allow(clippy::cast_precision_loss)] // a handful of members
            let gauge_matches = peers_gauge(node.addr) == Some(expected.len() as f64);
            if seen == expected && gauge_matches {
                break;
            }
            assert!(
                Instant::now() < end,
                "node {} still lists {seen:?} (gauge {:?}) after {within:?}, expected {expected:?}",
                node.url(),
                peers_gauge(node.addr)
            );
            std::thread::sleep(Duration::from_millis(20)); // polling interval, not a sync point
        }
    }
}
