//! Child processes: servers that print `listening on http://ADDR` (or `https://`), killed when
//! dropped.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use geecache_bench_e2e::probe;
use rustls::ClientConfig;

/// A running server process. Dropping it stops the process and reaps it.
pub(crate) struct Server {
    /// What it is, for messages.
    pub(crate) name: String,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Its standard error, for when something goes wrong.
    pub(crate) log: PathBuf,
    /// The client that speaks to it over TLS, when it serves `https://`.
    tls: Option<Arc<ClientConfig>>,
    /// Whether it said it serves `https://`.
    https: bool,
    child: Child,
}

impl Server {
    /// Starts `command` (stdout piped, stderr into `log`) and waits, at most `deadline`, for
    /// the `listening on http://ADDR` line.
    pub(crate) fn start(
        name: &str,
        mut command: Command,
        log: PathBuf,
        deadline: Duration,
    ) -> anyhow::Result<Self> {
        // Appended to, so that a node restarted under the same name keeps its earlier life's
        // lines (chaos runs read them).
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot create log file {}", log.display()))?;
        // The children read their settings from flags only: a GEECACHE_* variable left in
        // the shell would silently change what is measured.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GEECACHE_") {
                command.env_remove(&key);
            }
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .with_context(|| format!("cannot start {name}: {command:?}"))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Reads every line, so the child never blocks on a full pipe; only the first
            // address line is sent on.
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some(url) = line.trim().strip_prefix("listening on ") else {
                    continue;
                };
                if !sent && (url.starts_with("http://") || url.starts_with("https://")) {
                    sent = tx.send(url.to_owned()).is_ok();
                }
            }
        });
        let mut server = Server {
            name: name.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            tls: None,
            https: false,
            child,
        };
        let line = match rx.recv_timeout(deadline) {
            Ok(line) => line,
            Err(_) => bail!(
                "{name} did not print its address within {deadline:?}{}",
                server.log_tail()
            ),
        };
        server.https = line.starts_with("https://");
        let line = line
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        server.addr = line
            .parse()
            .with_context(|| format!("{name} printed an address that does not parse: {line}"))?;
        Ok(server)
    }

    /// Starts `command` (stdout and stderr into `log`) for a server that does not print its
    /// address, such as etcd: the caller knows `addr` and waits for readiness itself.
    pub(crate) fn start_at(
        name: &str,
        mut command: Command,
        log: PathBuf,
        addr: SocketAddr,
    ) -> anyhow::Result<Self> {
        let out = File::create(&log)
            .with_context(|| format!("cannot create log file {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()
            .with_context(|| format!("cannot start {name}: {command:?}"))?;
        Ok(Server {
            name: name.to_owned(),
            addr,
            log,
            tls: None,
            https: false,
            child,
        })
    }

    /// Whether the process has exited (and is reaped).
    pub(crate) fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ADDR`, or `https://ADDR` for a server that serves TLS.
    pub(crate) fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Has [`get`](Self::get) speak TLS with `client` to a server that serves `https://`.
    pub(crate) fn trust(&mut self, client: Arc<ClientConfig>) {
        self.tls = Some(client);
    }

    /// `GET path` on the server, over TLS if it serves `https://`.
    pub(crate) fn get(&self, path: &str, timeout: Duration) -> std::io::Result<probe::Response> {
        match (&self.tls, self.https) {
            (Some(client), true) => probe::get_tls(self.addr, path, timeout, client),
            (None, true) => Err(std::io::Error::other(format!(
                "{} serves https:// and no TLS client was given for it",
                self.name
            ))),
            (_, false) => probe::get(self.addr, path, timeout),
        }
    }

    /// Polls `path` until it answers 200, at most until `deadline` has passed.
    pub(crate) fn wait_ready(&mut self, path: &str, deadline: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + deadline;
        let mut last = String::from("no answer yet");
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("{} exited with {status}{}", self.name, self.log_tail());
            }
            match self.get(path, Duration::from_secs(1)) {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) => last = format!("{} {}", r.status, String::from_utf8_lossy(&r.body).trim()),
                Err(e) => last = e.to_string(),
            }
            // Polling a readiness route: a short pause between probes, bounded by `until`.
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "{} was not ready on {path} within {deadline:?} (last answer: {last}){}",
            self.name,
            self.log_tail()
        )
    }

    /// The last lines of the log, as a suffix for an error message.
    pub(crate) fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Asks the process to stop (SIGTERM), waits up to `grace`, then kills it.
    pub(crate) fn stop(mut self, grace: Duration) {
        self.terminate(grace);
    }

    fn terminate(&mut self, grace: Duration) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // std can only SIGKILL; `kill -TERM` lets the server drain and exit on its own. The
        // pid is our own child's and it has not been reaped yet, so it cannot be reused.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(2));
    }
}

/// The last few lines of a log file, formatted as `\n  last lines of LOG:\n  ...`.
pub(crate) fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return format!(" (log {} is empty)", log.display());
    }
    let tail = &lines[lines.len().saturating_sub(8)..];
    format!(
        "\n  last lines of {}:\n    {}",
        log.display(),
        tail.join("\n    ")
    )
}

/// `n` distinct free loopback ports, found by binding port 0 `n` times at once.
///
/// The listeners are closed before the ports are handed out, so another process could take
/// one in between; the caller retries with fresh ports when a node cannot bind. The nodes
/// need their ports up front because each one's peer list names the others.
pub(crate) fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot bind a loopback port")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// Runs a short-lived program to completion, at most `deadline`, and returns its stdout.
pub(crate) fn run_bounded(mut command: Command, deadline: Duration) -> anyhow::Result<String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let status = wait_bounded(&mut child, &command, deadline)?;
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        bail!("{command:?} failed with {status}: {}", err.trim());
    }
    Ok(out)
}

/// Runs a program to completion, at most `deadline`, its output going where this program's
/// goes: for a long run whose progress should be seen as it happens.
pub(crate) fn run_bounded_here(mut command: Command, deadline: Duration) -> anyhow::Result<()> {
    let mut child = command
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let status = wait_bounded(&mut child, &command, deadline)?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Waits for `child` (started by `command`) to exit, killing it after `deadline`.
fn wait_bounded(
    child: &mut std::process::Child,
    command: &Command,
    deadline: Duration,
) -> anyhow::Result<std::process::ExitStatus> {
    let until = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{command:?} did not finish within {deadline:?}");
        }
        // Polling the child's exit, bounded by `until`.
        std::thread::sleep(Duration::from_millis(20));
    }
}
