//! A real DNS server for one test: dnsmasq on a loopback port, answering from a hosts file the
//! test rewrites, reloaded with SIGHUP; killed on drop.
//!
//! Plain `std`, so the server's black-box tests can include the same file.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Set to `1` to make a missing `dnsmasq` a test failure instead of a skip (CI does).
const REQUIRE_VAR: &str = "GEECACHE_REQUIRE_DNSMASQ";

/// How long dnsmasq may take to listen.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// One dnsmasq process and its directory, both gone when the guard is dropped, pass or fail.
pub(crate) struct Dnsmasq {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    extra: Vec<String>,
    child: Option<Child>,
}

impl Dnsmasq {
    /// A running dnsmasq answering from `hosts` (a hosts file's text) and `extra` options
    /// (e.g. `--srv-host=...`), or `None` after saying why the test is skipped.
    ///
    /// Names under `.test` that it does not know are answered with NXDOMAIN; it forwards
    /// nothing anywhere.
    ///
    /// # Panics
    ///
    /// If dnsmasq is missing and `GEECACHE_REQUIRE_DNSMASQ=1`, or if it does not come up.
    pub(crate) fn start(hosts: &str, extra: &[String]) -> Option<Dnsmasq> {
        let Some(binary) = find_binary() else {
            assert!(
                !std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1"),
                "`dnsmasq` is not installed and {REQUIRE_VAR}=1 requires it"
            );
            say_skipped();
            return None;
        };
        let mut server = Dnsmasq {
            binary,
            dir: unique_temp_dir(),
            port: 0,
            extra: extra.to_vec(),
            child: None,
        };
        server.write_hosts(hosts);
        // A port free for both UDP and TCP a moment ago may be taken by the time dnsmasq binds
        // it; then dnsmasq exits at once and another port is tried.
        for _ in 0..5 {
            server.port = free_port();
            if server.launch() {
                return Some(server);
            }
        }
        panic!(
            "dnsmasq did not start on any of five ports; its log:\n{}",
            server.log()
        );
    }

    /// Where to send queries.
    pub(crate) fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Replaces the hosts file and makes dnsmasq read it again (SIGHUP).
    pub(crate) fn set_hosts(&self, hosts: &str) {
        self.write_hosts(hosts);
        let child = self.child.as_ref().expect("dnsmasq is running");
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(child.id().to_string())
            .status()
            .expect("run kill -HUP");
        assert!(status.success(), "kill -HUP dnsmasq failed");
    }

    /// Replaces the extra options (e.g. `--srv-host=...`, which dnsmasq reads only at start);
    /// they take effect at the next [`restart`](Dnsmasq::restart).
    pub(crate) fn set_options(&mut self, extra: &[String]) {
        self.extra = extra.to_vec();
    }

    /// Kills the server: an outage. Queries now go unanswered.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the hosts file as it is now.
    ///
    /// While it was stopped, the port was free, and the kernel may have given it to another
    /// process's outgoing connection as its local port (the port came from the same ephemeral
    /// range); dnsmasq then cannot bind it and exits at once. Such a connection is short-lived
    /// in a test run, so the start is tried again until the deadline.
    pub(crate) fn restart(&mut self) {
        self.stop();
        let end = Instant::now() + START_DEADLINE;
        while !self.launch() {
            assert!(
                Instant::now() < end,
                "dnsmasq did not start again on port {} within {START_DEADLINE:?}; its log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100)); // a retry's pause, not a sync point
        }
    }

    /// Writes the file whole, then renames it over the old one, so a reload never reads half.
    fn write_hosts(&self, hosts: &str) {
        let staged = self.dir.join("hosts.new");
        std::fs::write(&staged, hosts).expect("write the hosts file");
        std::fs::rename(&staged, self.hosts_path()).expect("rename the hosts file");
    }

    fn hosts_path(&self) -> PathBuf {
        self.dir.join("hosts")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dnsmasq.log")).unwrap_or_default()
    }

    /// Starts the process and waits (bounded) until it accepts TCP on its port; false if it
    /// exited first (its port was taken).
    fn launch(&mut self) -> bool {
        assert!(self.child.is_none(), "dnsmasq is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dnsmasq.log"))
            .expect("open dnsmasq.log");
        let mut command = Command::new(&self.binary);
        command
            .arg("--no-daemon")
            .arg("--conf-file=/dev/null")
            .arg("--pid-file")
            .arg("--no-resolv")
            .arg("--no-hosts")
            .arg(format!("--addn-hosts={}", self.hosts_path().display()))
            .arg("--listen-address=127.0.0.1")
            .arg("--bind-interfaces")
            .arg(format!("--port={}", self.port))
            // Answer for .test alone, NXDOMAIN for what it does not know there.
            .arg("--local=/test/")
            // Never cache: each answer reflects the file as last read.
            .arg("--local-ttl=0")
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let mut child = command.spawn().expect("start dnsmasq");
        let end = Instant::now() + START_DEADLINE;
        loop {
            if TcpStream::connect(self.address()).is_ok() {
                self.child = Some(child);
                return true;
            }
            if child.try_wait().expect("poll dnsmasq").is_some() {
                return false;
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "dnsmasq did not listen within {START_DEADLINE:?}; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10)); // polling interval, not a sync point
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port free for UDP and TCP at the time of asking.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp 127.0.0.1:0");
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `dnsmasq` on `PATH` or in the sbin directories Debian installs it to (not on a normal
/// user's `PATH`).
fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("dnsmasq"))
        .find(|candidate| candidate.is_file())
}

fn say_skipped() {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        eprintln!(
            "note: skipping the DNS tests: `dnsmasq` is not installed (Debian: dnsmasq-base; \
             set {REQUIRE_VAR}=1 to make this an error)"
        );
    }
}

/// A fresh directory that dnsmasq can read after it drops root (0755 under the umask).
fn unique_temp_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "geecache-dnsmasq-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    make_readable(&dir);
    dir
}

#[cfg(unix)]
fn make_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
}

#[cfg(not(unix))]
fn make_readable(_: &Path) {}
