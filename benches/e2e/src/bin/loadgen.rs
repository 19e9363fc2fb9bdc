//! `loadgen`: keeps N keep-alive HTTP/1.1 connections busy, one request in flight on each, for
//! a fixed time, and prints what it measured as one line of JSON (a `LoadReport`).
//!
//! It is closed-loop, like `wrk`: each connection sends its next request as soon as the last
//! answer is read, so the offered load adapts to what the servers can take and latency is
//! measured from the first byte written to the last body byte read.
//!
//! Targets may be `https://`: the connections then speak TLS, trusting the CA of `--tls-ca`.
//! With `--connection-per-request` each request opens a connection of its own and closes it
//! after the answer (the handshake rate, and latency from the connect to the last body byte).
//! With `--batch N` each request asks for N keys at once, `POST /api/{group}` with a JSON body
//! of keys (the nodes' batch route), and its answer is checked key by key.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use geecache_bench_e2e::{LoadReport, duration, procstat, report::percentile, tls};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{RngExt as _, SeedableRng as _};
use rand_distr::{Distribution as _, Zipf};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::HandshakeKind;
use tokio_rustls::rustls::pki_types::ServerName;

/// Drives `GET /api/{group}/{key}` (or, with `--batch`, `POST /api/{group}`) on one or more
/// servers and prints a JSON report.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about)]
struct Args {
    /// A server's base URL, e.g. http://127.0.0.1:8001 or https://127.0.0.1:8001 (loopback, or
    /// a lab host's address). Repeat the flag for more servers: connection i goes to target i
    /// mod (number of targets).
    #[arg(long = "target", required = true, value_name = "URL")]
    targets: Vec<String>,

    /// The group in the request path.
    #[arg(long, default_value = "scores")]
    group: String,

    /// Keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
    connections: u16,

    /// Tokio worker threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,

    /// How long to send requests (in `sequential` mode: the most it may take).
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    duration: Duration,

    /// How keys are chosen.
    #[arg(long, value_enum, default_value_t = Mode::Zipf)]
    mode: Mode,

    /// Size of the key space (`zipf`, `uniform`, `sequential`).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,

    /// Exponent of the Zipf distribution.
    #[arg(long, default_value_t = 0.99)]
    zipf: f64,

    /// Seed of the key sampling; connection i uses seed + i.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Key text before the number.
    #[arg(long, default_value = "player-")]
    key_prefix: String,

    /// The number is zero-padded to this many digits.
    #[arg(long, default_value_t = 6)]
    key_width: usize,

    /// A request slower than this counts as failed and its connection is replaced.
    #[arg(long, default_value = "5s", value_parser = duration::parse)]
    timeout: Duration,

    /// Keys to ask for, one per line, instead of --key-prefix and numbers: key i of the
    /// chosen mode is line i (--keys becomes the number of lines).
    #[arg(long, value_name = "FILE")]
    keys_file: Option<std::path::PathBuf>,

    /// Also count the answers that took at least this long (the report's `slow`).
    #[arg(long, value_parser = duration::parse)]
    slow_over: Option<Duration>,

    /// When a connection cannot be opened, try again every 50 ms until the run ends, as a
    /// client of a restarting server would, instead of giving that connection up.
    #[arg(long)]
    reconnect: bool,

    /// CA certificates (PEM) that sign the certificates of the `https://` targets.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,

    /// Over TLS, resume the session of an earlier connection to the same server when one is
    /// kept (TLS 1.3 tickets) instead of making a full handshake every time. Only matters with
    /// --connection-per-request.
    #[arg(long)]
    tls_resume: bool,

    /// Open a new connection for every request and close it after the answer (the request
    /// says `Connection: close`), instead of keeping each connection alive: --connections is
    /// then how many are being opened at once.
    #[arg(long)]
    connection_per_request: bool,

    /// Ask for N keys per request instead of one: N keys drawn one after the other from the
    /// key stream of --mode, sent as one `POST /api/{group}` with the body `{"keys": [...]}`.
    /// Every answer must hold one result per key, in the order asked; a key answered with an
    /// error counts in the report's `key_errors`, apart from the request errors.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=100_000),
        conflicts_with = "connection_per_request"
    )]
    batch: Option<u32>,

    /// Send at most this many requests in all, even if --duration has not run out.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_requests: Option<u64>,

    /// Appends a line `FROM_MS TO_MS OK ERRORS` to FILE every second of the run (Unix
    /// milliseconds; ERRORS counts non-2xx answers, failed requests and connections that
    /// could not be opened), so that a long run's errors can be placed in time.
    #[arg(long, value_name = "FILE")]
    timeline: Option<std::path::PathBuf>,
}

/// How the next key is picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Zipf-distributed ranks over the key space (rank 1 = key 0 is the most popular).
    Zipf,
    /// Uniform over the key space.
    Uniform,
    /// Every key once, in order, shared across connections; ends when all are done.
    Sequential,
    /// A new key every time, never repeated: every request misses every cache.
    Unique,
}

/// One target server.
#[derive(Clone, Debug)]
struct Target {
    addr: SocketAddr,
    host: String,
    /// Whether it is an `https://` target.
    tls: bool,
}

/// What one connection counted.
#[derive(Debug, Default)]
struct Tally {
    latencies_ns: Vec<u64>,
    ok: u64,
    /// Keys answered with a value in the `ok` requests.
    keys: u64,
    /// Keys answered with an error in the `ok` requests (batches only).
    key_errors: u64,
    slow: u64,
    reconnects: u64,
    bad_status: u64,
    /// Batches answered 2xx whose body did not answer every key asked.
    bad_answers: u64,
    failed: u64,
    connect_failures: u64,
}

/// Everything the connection tasks share.
struct Plan {
    group: String,
    mode: Mode,
    keys: u64,
    zipf: Option<Zipf<f64>>,
    key_prefix: String,
    key_width: usize,
    /// The keys of --keys-file, if given.
    key_list: Option<Vec<String>>,
    timeout: Duration,
    slow_over: Option<Duration>,
    reconnect: bool,
    /// The client side of the `https://` targets' connections.
    tls: Option<TlsConnector>,
    /// A new connection per request (--connection-per-request).
    per_request: bool,
    /// Keys per request (--batch); `None`: one `GET` per key.
    batch: Option<usize>,
    /// What is left of --max-requests (`u64::MAX` without it).
    budget: AtomicU64,
    /// TLS handshakes finished, and how many of them resumed a session.
    handshakes: AtomicU64,
    resumed: AtomicU64,
    /// The next key in `sequential` and `unique` modes.
    counter: AtomicU64,
    /// Requests answered 2xx so far, for `--timeline`.
    ok_so_far: AtomicU64,
    /// Errors so far (as in `--timeline`).
    errors_so_far: AtomicU64,
}

impl Plan {
    /// Takes one request from the budget of --max-requests; `false` once it is spent.
    fn take_request(&self) -> bool {
        self.budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }

    /// The next key index for one connection, `None` when `sequential` has run out.
    fn next_index(&self, rng: &mut SmallRng) -> Option<u64> {
        match self.mode {
            Mode::Zipf => {
                let zipf = self.zipf.as_ref()?;
                // Samples are whole numbers in [1, keys] stored as f64; the cast is exact
                // for any key space below 2^53.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let rank = zipf.sample(rng) as u64;
                Some(rank.clamp(1, self.keys) - 1)
            }
            Mode::Uniform => Some(rng.random_range(0..self.keys)),
            Mode::Sequential => {
                let i = self.counter.fetch_add(1, Ordering::Relaxed);
                (i < self.keys).then_some(i)
            }
            Mode::Unique => Some(self.counter.fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// The key of index `index`.
    fn key(&self, index: u64) -> Cow<'_, str> {
        if let Some(list) = &self.key_list {
            let i = usize::try_from(index).unwrap_or(usize::MAX) % list.len().max(1);
            return Cow::Borrowed(&list[i]);
        }
        Cow::Owned(format!(
            "{}{:0width$}",
            self.key_prefix,
            index,
            width = self.key_width
        ))
    }

    fn path(&self, index: u64) -> String {
        format!("/api/{}/{}", self.group, self.key(index))
    }

    /// The next request of one connection to `target`, and with `--batch` the keys it asks
    /// for; `None` when `sequential` has run out (a batch then takes the keys that are left).
    fn next_request(&self, rng: &mut SmallRng, target: &Target) -> Option<anyhow::Result<Next>> {
        let Some(n) = self.batch else {
            let index = self.next_index(rng)?;
            let request = http::Request::get(self.path(index))
                .header(http::header::HOST, &target.host)
                .body(Full::new(Bytes::new()))
                .map_err(anyhow::Error::from);
            return Some(request.map(|request| Next {
                request,
                asked: None,
            }));
        };
        let keys: Vec<String> = std::iter::from_fn(|| self.next_index(rng))
            .take(n)
            .map(|index| self.key(index).into_owned())
            .collect();
        if keys.is_empty() {
            return None;
        }
        let made = serde_json::to_vec(&Asking { keys: &keys })
            .map_err(anyhow::Error::from)
            .and_then(|body| {
                http::Request::post(format!("/api/{}", self.group))
                    .header(http::header::HOST, &target.host)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .map_err(anyhow::Error::from)
            });
        Some(made.map(|request| Next {
            request,
            asked: Some(keys),
        }))
    }
}

/// A request to send, and with `--batch` the keys it asks for, in order.
struct Next {
    request: http::Request<Full<Bytes>>,
    asked: Option<Vec<String>>,
}

/// The body of a batch request: `POST /api/{group}` takes `{"keys": [...]}`.
#[derive(Serialize)]
struct Asking<'a> {
    keys: &'a [String],
}

/// The body of a batch answer: one result per key asked, in the order asked. The value is
/// not decoded (base64 of the value's bytes): that it is there is what counts.
#[derive(Deserialize)]
struct Answers<'a> {
    #[serde(borrow)]
    results: Vec<KeyAnswer<'a>>,
}

#[derive(Deserialize)]
struct KeyAnswer<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(default)]
    value: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

/// What a batch answer said of its keys.
#[derive(Debug, PartialEq, Eq)]
struct KeyCounts {
    /// Keys answered with a value.
    found: u64,
    /// Keys answered with an error.
    failed: u64,
}

/// Checks a batch answer against the keys asked: `None` unless it holds exactly one result per
/// key, in the order asked, each with either a value or an error.
fn check_batch(asked: &[String], body: &[u8]) -> Option<KeyCounts> {
    let answers: Answers<'_> = serde_json::from_slice(body).ok()?;
    if answers.results.len() != asked.len() {
        return None;
    }
    let mut counts = KeyCounts {
        found: 0,
        failed: 0,
    };
    for (answer, key) in answers.results.iter().zip(asked) {
        if answer.key != key.as_str() {
            return None;
        }
        match (&answer.value, &answer.error) {
            (Some(_), None) => counts.found += 1,
            (None, Some(_)) => counts.failed += 1,
            _ => return None,
        }
    }
    Some(counts)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => match serde_json::to_string(&report) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("loadgen: cannot encode the report: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<LoadReport> {
    let targets = args
        .targets
        .iter()
        .map(|t| parse_target(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (what, text) in [("group", &args.group), ("key prefix", &args.key_prefix)] {
        // Both go into the path as they are; anything that would need escaping is refused
        // rather than encoded, so the path the servers see is the one written here.
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        {
            bail!("the {what} {text:?} may only hold A-Z a-z 0-9 - _ . ~");
        }
    }
    let key_list = match &args.keys_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let keys: Vec<String> = text.lines().map(str::to_owned).collect();
            if keys.is_empty() {
                bail!("{} holds no keys", path.display());
            }
            for key in &keys {
                if key.is_empty()
                    || !key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
                {
                    bail!(
                        "key {key:?} in {} may only hold A-Z a-z 0-9 - _ . ~",
                        path.display()
                    );
                }
            }
            Some(keys)
        }
    };
    let tls = if targets.iter().any(|t| t.tls) {
        let ca = args
            .tls_ca
            .as_deref()
            .context("an https:// target needs --tls-ca")?;
        let resumption = if args.tls_resume {
            tls::Resumption::On
        } else {
            tls::Resumption::Off
        };
        Some(TlsConnector::from(tls::client_config(ca, resumption)?))
    } else {
        None
    };
    let keys = key_list.as_ref().map_or(args.keys, |l| l.len() as u64);
    let zipf = match args.mode {
        Mode::Zipf => {
            #[allow(clippy::cast_precision_loss)]
            let n = keys as f64;
            Some(Zipf::new(n, args.zipf).with_context(|| {
                format!(
                    "bad Zipf parameters: {} keys, exponent {}",
                    args.keys, args.zipf
                )
            })?)
        }
        _ => None,
    };
    let plan = Arc::new(Plan {
        group: args.group.clone(),
        mode: args.mode,
        keys,
        zipf,
        key_prefix: args.key_prefix.clone(),
        key_width: args.key_width,
        key_list,
        timeout: args.timeout,
        slow_over: args.slow_over,
        reconnect: args.reconnect,
        tls,
        per_request: args.connection_per_request,
        batch: args.batch.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        budget: AtomicU64::new(args.max_requests.unwrap_or(u64::MAX)),
        handshakes: AtomicU64::new(0),
        resumed: AtomicU64::new(0),
        counter: AtomicU64::new(0),
        ok_so_far: AtomicU64::new(0),
        errors_so_far: AtomicU64::new(0),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.threads))
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(drive(args, plan, targets))
}

/// Accepts only `http://<loopback ip>:<port>[/]` (or `https://`), or a lab host's address in
/// place of the loopback one (`geecache_bench_e2e::hosts`, which exists only inside the lab's
/// network namespaces): this tool never leaves the machine.
fn parse_target(text: &str) -> anyhow::Result<Target> {
    let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else {
        bail!("target {text:?} is not http://IP:PORT or https://IP:PORT");
    };
    let authority = rest.trim_end_matches('/');
    let addr: SocketAddr = authority
        .parse()
        .with_context(|| format!("target {text:?} is not http(s)://IP:PORT"))?;
    if !addr.ip().is_loopback() && !geecache_bench_e2e::hosts::is_lab_address(addr.ip()) {
        bail!("target {text:?} is neither a loopback address nor a lab host's");
    }
    Ok(Target {
        addr,
        host: authority.to_owned(),
        tls,
    })
}

async fn drive(args: &Args, plan: Arc<Plan>, targets: Vec<Target>) -> anyhow::Result<LoadReport> {
    let connections = usize::from(args.connections);
    // Every connection is open before the clock starts, so connection setup is not measured
    // as request latency and the window starts with the full load.
    let barrier = Arc::new(Barrier::new(connections + 1));
    let start_at = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut tasks = Vec::with_capacity(connections);
    for i in 0..connections {
        let target = targets[i % targets.len()].clone();
        let plan = Arc::clone(&plan);
        let barrier = Arc::clone(&barrier);
        let start_at = Arc::clone(&start_at);
        let seed = args.seed.wrapping_add(i as u64);
        let run_for = args.duration;
        tasks.push(tokio::spawn(async move {
            if plan.per_request {
                // Connecting is what this mode measures: nothing is opened before the clock.
                barrier.wait().await;
                let deadline = start_at.get().copied().unwrap_or_else(Instant::now) + run_for;
                return connection_per_request(&plan, &target, seed, deadline).await;
            }
            let sender = connect(&plan, &target).await;
            barrier.wait().await;
            let deadline = start_at.get().copied().unwrap_or_else(Instant::now) + run_for;
            connection(&plan, &target, sender.ok(), seed, deadline).await
        }));
    }
    // The main task sets the start time before it reaches the barrier, so every connection
    // reads the same instant once the barrier opens.
    let ticks_per_s = procstat::clock_ticks_per_second();
    let self_pid = std::process::id();
    let cpu_before = procstat::process_ticks(self_pid).unwrap_or(0);
    let start = Instant::now();
    let _ = start_at.set(start);
    barrier.wait().await;
    // Shared with the ticker so that the last line, written here, starts where its last ended.
    let ticks = Arc::new(std::sync::Mutex::new(TickState {
        at_ms: unix_ms(),
        ok: 0,
        errors: 0,
    }));
    let ticker = args.timeline.as_ref().map(|path| {
        tokio::spawn(timeline(
            path.clone(),
            Arc::clone(&plan),
            Arc::clone(&ticks),
            start + args.duration,
        ))
    });

    let mut all = Tally::default();
    for task in tasks {
        let tally = task.await.context("a connection task panicked")?;
        all.ok += tally.ok;
        all.keys += tally.keys;
        all.key_errors += tally.key_errors;
        all.bad_answers += tally.bad_answers;
        all.slow += tally.slow;
        all.reconnects += tally.reconnects;
        all.bad_status += tally.bad_status;
        all.failed += tally.failed;
        all.connect_failures += tally.connect_failures;
        all.latencies_ns.extend(tally.latencies_ns);
    }
    let elapsed = start.elapsed();
    if let (Some(ticker), Some(path)) = (ticker, &args.timeline) {
        // Stopped only between two lines (it writes without awaiting), then the last line,
        // up to now: every request counted above is in the file.
        ticker.abort();
        let _ = ticker.await;
        let mut state = ticks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        write_tick(path, &plan, &mut state)?;
    }
    let cpu_after = procstat::process_ticks(self_pid).unwrap_or(cpu_before);
    all.latencies_ns.sort_unstable();
    let us = |q: f64| percentile(&all.latencies_ns, q).map_or(0.0, ns_to_us);
    #[allow(clippy::cast_precision_loss)]
    Ok(LoadReport {
        ok: all.ok,
        slow: all.slow,
        reconnects: all.reconnects,
        bad_status: all.bad_status,
        bad_answers: all.bad_answers,
        failed: all.failed,
        connect_failures: all.connect_failures,
        elapsed_s: elapsed.as_secs_f64(),
        requests_per_s: all.ok as f64 / elapsed.as_secs_f64().max(1e-9),
        keys: all.keys,
        key_errors: all.key_errors,
        keys_per_s: all.keys as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_us: us(0.50),
        p90_us: us(0.90),
        p99_us: us(0.99),
        max_us: us(1.0),
        loadgen_cpu_s: cpu_after.saturating_sub(cpu_before) as f64 / ticks_per_s as f64,
        connections,
        threads: usize::from(args.threads),
        tls_handshakes: plan.handshakes.load(Ordering::Relaxed),
        tls_resumed: plan.resumed.load(Ordering::Relaxed),
    })
}

#[allow(clippy::cast_precision_loss)]
fn ns_to_us(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

async fn connect(plan: &Plan, target: &Target) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(target.addr)
        .await
        .with_context(|| format!("cannot connect to {}", target.addr))?;
    // Requests are small and one is in flight per connection: Nagle would only add delay.
    stream.set_nodelay(true)?;
    match (&plan.tls, target.tls) {
        (Some(tls), true) => {
            let name = ServerName::IpAddress(target.addr.ip().into());
            let stream = tls
                .connect(name, stream)
                .await
                .with_context(|| format!("TLS handshake with {}", target.addr))?;
            plan.handshakes.fetch_add(1, Ordering::Relaxed);
            if stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed) {
                plan.resumed.fetch_add(1, Ordering::Relaxed);
            }
            http1(stream).await
        }
        _ => http1(stream).await,
    }
}

/// An HTTP/1.1 client connection over `io`, its connection task spawned.
async fn http1<T>(io: T) -> anyhow::Result<SendRequest<Full<Bytes>>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the server closes it; either
        // way the request loop sees the error on its side.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Requests, each on a connection of its own (--connection-per-request), until `deadline` or
/// the budget. A request's latency runs from the connect to the last body byte, handshakes
/// included. A connection that cannot be opened is a connect failure, and the loop goes on
/// with the next request.
async fn connection_per_request(
    plan: &Plan,
    target: &Target,
    seed: u64,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally {
        latencies_ns: Vec::with_capacity(4096),
        ..Tally::default()
    };
    let mut rng = SmallRng::seed_from_u64(seed);
    while Instant::now() < deadline && plan.take_request() {
        let Some(index) = plan.next_index(&mut rng) else {
            break;
        };
        let Ok(request) = http::Request::get(plan.path(index))
            .header(http::header::HOST, &target.host)
            // The server closes first, so the closed connections wait out TIME_WAIT on its
            // side and do not use up this side's ephemeral ports.
            .header(http::header::CONNECTION, "close")
            .body(Full::new(Bytes::new()))
        else {
            tally.failed += 1;
            break;
        };
        let started = Instant::now();
        let exchange = async {
            let Ok(mut sender) = connect(plan, target).await else {
                return None;
            };
            let answer = async {
                let response = sender.send_request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                Ok::<_, hyper::Error>(status)
            };
            Some(answer.await)
        };
        match tokio::time::timeout(plan.timeout, exchange).await {
            Ok(Some(Ok(status))) if status.is_success() => {
                let took = started.elapsed();
                tally
                    .latencies_ns
                    .push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
                tally.ok += 1;
                tally.keys += 1;
                if plan.slow_over.is_some_and(|limit| took >= limit) {
                    tally.slow += 1;
                }
            }
            Ok(Some(Ok(_))) => tally.bad_status += 1,
            Ok(None) => tally.connect_failures += 1,
            Ok(Some(Err(_))) | Err(_) => tally.failed += 1,
        }
    }
    tally
}

async fn connection(
    plan: &Plan,
    target: &Target,
    sender: Option<SendRequest<Full<Bytes>>>,
    seed: u64,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally {
        latencies_ns: Vec::with_capacity(4096),
        ..Tally::default()
    };
    let mut sender = match sender {
        Some(sender) => sender,
        None if plan.reconnect => match reconnect(plan, target, deadline, &mut tally).await {
            Some(sender) => sender,
            None => return tally,
        },
        None => {
            tally.connect_failures += 1;
            plan.errors_so_far.fetch_add(1, Ordering::Relaxed);
            return tally;
        }
    };
    let mut rng = SmallRng::seed_from_u64(seed);
    while Instant::now() < deadline && plan.take_request() {
        let Next { request, asked } = match plan.next_request(&mut rng, target) {
            None => break,
            Some(Ok(next)) => next,
            Some(Err(_)) => {
                tally.failed += 1;
                break;
            }
        };
        // A connection the server closed (`Connection: close`, a restart) is not a failed
        // request: open another and send the request there.
        if sender.ready().await.is_err() {
            tally.reconnects += 1;
            match reconnect(plan, target, deadline, &mut tally).await {
                Some(fresh) => sender = fresh,
                None => break,
            }
        }
        let started = Instant::now();
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            // The whole body is read: the latency covers the value, not just the headers.
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        match tokio::time::timeout(plan.timeout, exchange).await {
            Ok(Ok((status, body))) if status.is_success() => {
                let took = started.elapsed();
                // Checked after the clock stopped: the latency is the servers', not the
                // time this side takes to read the answer.
                let counts = match &asked {
                    None => Some(KeyCounts {
                        found: 1,
                        failed: 0,
                    }),
                    Some(keys) => check_batch(keys, &body),
                };
                let Some(counts) = counts else {
                    tally.bad_answers += 1;
                    plan.errors_so_far.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                tally.keys += counts.found;
                tally.key_errors += counts.failed;
                let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
                tally.latencies_ns.push(ns);
                tally.ok += 1;
                plan.ok_so_far.fetch_add(1, Ordering::Relaxed);
                if plan.slow_over.is_some_and(|limit| took >= limit) {
                    tally.slow += 1;
                }
            }
            Ok(Ok(_)) => {
                tally.bad_status += 1;
                plan.errors_so_far.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(_)) | Err(_) => {
                tally.failed += 1;
                plan.errors_so_far.fetch_add(1, Ordering::Relaxed);
                // A failed or abandoned exchange leaves the connection in an unknown state;
                // a fresh one keeps the connection count what was asked for.
                match connect(plan, target).await {
                    Ok(fresh) => sender = fresh,
                    Err(_) => {
                        tally.connect_failures += 1;
                        plan.errors_so_far.fetch_add(1, Ordering::Relaxed);
                        match reconnect(plan, target, deadline, &mut tally).await {
                            Some(fresh) => sender = fresh,
                            None => break,
                        }
                    }
                }
            }
        }
    }
    tally
}

/// A new connection to `target`: one attempt, or with --reconnect one every 50 ms until
/// `deadline`. Each failed attempt is a connect failure.
async fn reconnect(
    plan: &Plan,
    target: &Target,
    deadline: Instant,
    tally: &mut Tally,
) -> Option<SendRequest<Full<Bytes>>> {
    loop {
        match connect(plan, target).await {
            Ok(sender) => return Some(sender),
            Err(_) => {
                tally.connect_failures += 1;
                plan.errors_so_far.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !plan.reconnect || Instant::now() >= deadline {
            return None;
        }
        // Pacing the retries of a refused connection, not synchronising with anything.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where the last `--timeline` line ended, and the counts then.
struct TickState {
    at_ms: u64,
    ok: u64,
    errors: u64,
}

/// Milliseconds since the Unix epoch: the clock the harness reading the file shares.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Writes a `--timeline` line every second until `deadline`.
async fn timeline(
    path: std::path::PathBuf,
    plan: Arc<Plan>,
    state: Arc<std::sync::Mutex<TickState>>,
    deadline: Instant,
) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.tick().await;
    while Instant::now() < deadline {
        every.tick().await;
        let mut state = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if write_tick(&path, &plan, &mut state).is_err() {
            return;
        }
    }
}

/// Appends the counts since `state` to `path` as one line, and moves `state` to now.
fn write_tick(path: &std::path::Path, plan: &Plan, state: &mut TickState) -> anyhow::Result<()> {
    use std::io::Write as _;
    let now_ms = unix_ms();
    let ok = plan.ok_so_far.load(Ordering::Relaxed);
    let errors = plan.errors_so_far.load(Ordering::Relaxed);
    let mut file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // One write per line, so a reader never sees half a line from this writer.
    file.write_all(
        format!(
            "{} {now_ms} {} {}\n",
            state.at_ms,
            ok - state.ok,
            errors - state.errors
        )
        .as_bytes(),
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    *state = TickState {
        at_ms: now_ms,
        ok,
        errors,
    };
    Ok(())
}

// The crate root is a single file, so its test module's path is given.
#[cfg(test)]
#[path = "loadgen/tests.rs"]
mod tests;
