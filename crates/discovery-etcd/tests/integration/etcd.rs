//! A real etcd server for one test: loopback ports, a temporary data dir, killed on drop.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Set to `1` to make a missing `etcd` binary a test failure instead of a skip (CI does).
const REQUIRE_VAR: &str = "GEECACHE_REQUIRE_ETCD";

/// How long a freshly launched etcd may take to serve requests.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// One etcd process and its data dir. The process is killed (by PID) and the directory removed
/// when the guard is dropped, whether or not the test passed.
pub(crate) struct Etcd {
    binary: PathBuf,
    /// Holds `data/` and `etcd.log`.
    dir: PathBuf,
    client_url: String,
    peer_url: String,
    child: Option<Child>,
}

impl Etcd {
    /// A running etcd, or `None` after printing why the test is skipped.
    ///
    /// # Panics
    ///
    /// If `etcd` is missing and `GEECACHE_REQUIRE_ETCD=1`, or if it does not come up.
    pub(crate) async fn start() -> Option<Etcd> {
        let mut etcd = Etcd::prepare()?;
        etcd.launch().await;
        Some(etcd)
    }

    /// An etcd with ports and a data dir chosen but no process yet, or `None` as for `start`.
    pub(crate) fn prepare() -> Option<Etcd> {
        let Some(binary) = find_binary("etcd") else {
            if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
                panic!("`etcd` is not on PATH and {REQUIRE_VAR}=1 requires it");
            }
            say_skipped();
            return None;
        };
        let [client_port, peer_port] = free_ports();
        Some(Etcd {
            binary,
            dir: unique_temp_dir(),
            client_url: format!("http://127.0.0.1:{client_port}"),
            peer_url: format!("http://127.0.0.1:{peer_port}"),
            child: None,
        })
    }

    /// The URL clients connect to.
    pub(crate) fn client_url(&self) -> &str {
        &self.client_url
    }

    /// Starts the process (again, after `stop`, on the same ports and data) and waits until it
    /// serves requests.
    pub(crate) async fn launch(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("create etcd.log");
        let mut command = Command::new(&self.binary);
        command
            .arg("--name=test")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={}", self.client_url))
            .arg(format!("--advertise-client-urls={}", self.client_url))
            .arg(format!("--listen-peer-urls={}", self.peer_url))
            .arg(format!("--initial-advertise-peer-urls={}", self.peer_url))
            .arg(format!("--initial-cluster=test={}", self.peer_url))
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
        self.wait_ready().await;
    }

    /// Kills the process (SIGKILL, like a crash) and waits for it; the data dir stays.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A plain client, for looking at or changing etcd behind the crate's back.
    pub(crate) async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.client_url.as_str()], None)
            .await
            .expect("connect to etcd")
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("etcd exited with {status}; log:\n{}", self.log_tail());
            }
            let attempt = tokio::time::timeout(Duration::from_secs(1), async {
                let mut client =
                    etcd_client::Client::connect([self.client_url.as_str()], None).await?;
                // A read goes through consensus, so it also waits for a leader.
                client.get("/", None).await
            });
            if let Ok(Ok(_)) = attempt.await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not serve requests within {READY_WITHIN:?}; log:\n{}",
                self.log_tail()
            );
            // A poll interval, not synchronisation: readiness is what the loop checks.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Says once per process why the tests are skipped. Written to the stderr handle directly:
/// the test harness captures `eprintln!` of passing tests, and this must be seen.
fn say_skipped() {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        let message = format!(
            "\nskipping the etcd tests: they need an `etcd` binary (3.4 or later) on PATH, and \
             none was found (Debian: apt-get install etcd-server). Set {REQUIRE_VAR}=1 to make \
             this a failure.\n"
        );
        // One write, so that the harness's own output does not split the message.
        let _ = std::io::stderr().write_all(message.as_bytes());
    }
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// Two ports that were free a moment ago: bind port 0 on loopback twice (both listeners open at
/// once, so the ports differ), note the ports, let them go for etcd to take.
fn free_ports() -> [u16; 2] {
    let bind = || TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let (a, b) = (bind(), bind());
    let port = |l: &TcpListener| l.local_addr().expect("local addr").port();
    [port(&a), port(&b)]
}

fn unique_temp_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "geecache-etcd-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
