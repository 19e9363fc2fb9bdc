//! System tools the tests need, installed with `apt-get` when missing.
//!
//! Each tool is tied to the crate whose tests need it, so a checkout without that crate never
//! installs it.

use std::path::Path;
use std::process::{Command, Stdio};

/// How to tell whether a tool is present.
enum Probe {
    /// An executable on `PATH`.
    Binary(&'static str),
    /// A file or directory that a package installs.
    Path(&'static str),
}

struct Tool {
    /// What the tool is for, in the words of an error message.
    purpose: &'static str,
    /// The workspace directory whose tests need the tool.
    needed_by: &'static str,
    probe: Probe,
    /// The Debian package that provides it.
    package: &'static str,
}

const TOOLS: &[Tool] = &[
    Tool {
        purpose: "protoc, for etcd-client's build script",
        needed_by: "crates/discovery-etcd",
        probe: Probe::Binary("protoc"),
        package: "protobuf-compiler",
    },
    Tool {
        purpose: "protobuf's well-known types (descriptor.proto), for etcd-client's build script",
        needed_by: "crates/discovery-etcd",
        probe: Probe::Path("/usr/include/google/protobuf/descriptor.proto"),
        package: "libprotobuf-dev",
    },
    Tool {
        purpose: "an etcd server, for the membership tests",
        needed_by: "crates/discovery-etcd",
        probe: Probe::Binary("etcd"),
        package: "etcd-server",
    },
    Tool {
        purpose: "a DNS server (dnsmasq), for the DNS membership tests",
        needed_by: "crates/discovery-dns",
        // Debian installs it to /usr/sbin, which is on root's PATH (CI runs as root).
        probe: Probe::Binary("dnsmasq"),
        package: "dnsmasq-base",
    },
    Tool {
        purpose: "the Go toolchain, for the Go groupcache interoperability test",
        needed_by: "crates/transport-http",
        probe: Probe::Binary("go"),
        package: "golang-go",
    },
    Tool {
        purpose: "the Go groupcache library, for the interoperability test",
        needed_by: "crates/transport-http",
        probe: Probe::Path("/usr/share/gocode/src/github.com/golang/groupcache/http.go"),
        package: "golang-github-golang-groupcache-dev",
    },
    Tool {
        purpose: "Go protobuf 1.3, which Go groupcache imports",
        needed_by: "crates/transport-http",
        probe: Probe::Path("/usr/share/gocode/src/github.com/golang/protobuf/proto/lib.go"),
        package: "golang-github-golang-protobuf-1-3-dev",
    },
    Tool {
        purpose: "promtool, which checks a node's /metrics output as Prometheus would",
        needed_by: "crates/server",
        probe: Probe::Binary("promtool"),
        package: "prometheus",
    },
];

/// Installs every missing tool that an existing crate needs, or explains which package to install.
pub(crate) fn ensure_present(root: &Path) -> Result<(), String> {
    let missing: Vec<&Tool> = TOOLS
        .iter()
        .filter(|t| root.join(t.needed_by).exists() && !present(&t.probe))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    for tool in &missing {
        println!(
            "xtask: missing {} (Debian package `{}`)",
            tool.purpose, tool.package
        );
    }
    if !can_apt() {
        return Err(format!(
            "missing system packages; install them with:\n  sudo apt-get install -y {}",
            packages.join(" ")
        ));
    }
    run_apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&packages);
    run_apt(&install)?;
    match missing.iter().find(|t| !present(&t.probe)) {
        Some(tool) => Err(format!(
            "installed `{}` but {} is still missing",
            tool.package, tool.purpose
        )),
        None => Ok(()),
    }
}

fn present(probe: &Probe) -> bool {
    match probe {
        Probe::Binary(name) => std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file())),
        Probe::Path(path) => Path::new(path).exists(),
    }
}

/// `apt-get` works here when it exists and we are root.
fn can_apt() -> bool {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    is_root && present(&Probe::Binary("apt-get"))
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
