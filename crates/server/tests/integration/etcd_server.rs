//! A real etcd server for one test: loopback ports, a temporary data dir, killed on drop.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::support::{DEADLINE, try_request};

/// Set to `1` to make a missing `etcd` binary a test failure instead of a skip (CI does).
const REQUIRE_VAR: &str = "GEECACHE_REQUIRE_ETCD";

/// One etcd process and its data dir, both gone when the guard is dropped, pass or fail.
pub(crate) struct Etcd {
    binary: PathBuf,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Etcd {
    /// A running etcd, or `None` after saying why the test is skipped.
    ///
    /// # Panics
    ///
    /// If `etcd` is missing and `GEECACHE_REQUIRE_ETCD=1`, or if it does not come up.
    pub(crate) fn start() -> Option<Etcd> {
        let mut etcd = Etcd::prepare()?;
        etcd.launch();
        Some(etcd)
    }

    /// An etcd with ports and a data dir chosen but no process yet (its client port is bound
    /// by nobody), or `None` as for `start`.
    pub(crate) fn prepare() -> Option<Etcd> {
        let Some(binary) = find_binary("etcd") else {
            assert!(
                !std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1"),
                "`etcd` is not on PATH and {REQUIRE_VAR}=1 requires it"
            );
            say_skipped();
            return None;
        };
        // Both listeners open at once, so the two ports differ; then let them go for etcd.
        let a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = |l: &std::net::TcpListener| l.local_addr().expect("local addr").port();
        Some(Etcd {
            binary,
            dir: unique_temp_dir(),
            client_port: port(&a),
            peer_port: port(&b),
            child: None,
        })
    }

    /// The URL clients connect to.
    pub(crate) fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Starts the process and waits (bounded) until `/health` says it serves requests.
    pub(crate) fn launch(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        let log = std::fs::File::create(self.dir.join("etcd.log")).expect("create etcd.log");
        let client = self.client_url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new(&self.binary);
        command
            .arg("--name=test")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .arg("--initial-cluster-state=new")
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        // etcd 3.4 refuses to start on anything but amd64 unless told the architecture is
        // meant; its names for architectures are Go's.
        match std::env::consts::ARCH {
            "x86_64" => {}
            "aarch64" => {
                command.env("ETCD_UNSUPPORTED_ARCH", "arm64");
            }
            other => {
                command.env("ETCD_UNSUPPORTED_ARCH", other);
            }
        }
        self.child = Some(command.spawn().expect("spawn etcd"));
        let addr = ([127, 0, 0, 1], self.client_port).into();
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("etcd exited with {status}; log:\n{}", self.log());
            }
            // `/health` is true only once a leader is elected and requests go through.
            if try_request(addr, "GET", "/health", &[])
                .is_ok_and(|r| r.status == 200 && r.text().contains("\"true\""))
            {
                return;
            }
            assert!(
                Instant::now() < end,
                "etcd did not become healthy within {DEADLINE:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20)); // polling interval, not a sync point
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Says once per process why the tests are skipped, on the real stderr: the harness captures
/// `eprintln!` of passing tests, and this must be seen.
fn say_skipped() {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        let message = format!(
            "\nskipping the etcd tests of geecache serve: they need an `etcd` binary (3.4 or \
             later) on PATH, and none was found (Debian: apt-get install etcd-server). Set \
             {REQUIRE_VAR}=1 to make this a failure.\n"
        );
        let _ = std::io::stderr().write_all(message.as_bytes());
    }
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn unique_temp_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "geecache-server-etcd-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
