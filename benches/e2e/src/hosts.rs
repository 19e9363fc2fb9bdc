//! Hosts with their own addresses on one machine: a Linux network namespace per host, all
//! joined by a bridge, so that what happens between machines (a host cut off, two hosts that
//! cannot reach each other while both reach a third) can be made and undone in a test.
//!
//! A lab tagged `T` with `n` hosts is, all made with `ip` (iproute2), as root:
//!
//! ```text
//!   namespace T-sw:   bridge br0 ── p0 ── p1 ── … (one switch port per host; no address)
//!                                   │     │
//!   namespace T-h0:   eth0 10.231.0.1/24  │        (each host: a veth pair, one end here,
//!   namespace T-h1:         eth0 10.231.0.2/24      the other on the switch)
//! ```
//!
//! Every address and route lives inside the lab's own namespaces: the machine's interfaces,
//! routes and firewall are never touched. A program runs on a host through
//! [`Lab::command`] (`ip netns exec`). Dropping the lab kills whatever still runs in its
//! namespaces and deletes them; namespaces left by a harness that was itself killed are
//! deleted by the next [`Lab::new`].
//!
//! Faults:
//! - [`Lab::cut`] takes a host's switch port down: its packets vanish, connections to it hang
//!   until the peer's own timeout, new ones fail after ARP gives up (about 3 s) — a pulled cable.
//! - [`Lab::separate`] puts `prohibit` routes between two hosts in both: each is refused at
//!   once by its own kernel when it tries the other (like a firewall's reject), while both still
//!   reach every other host (say, etcd).
//!
//! - [`Lab::block`] drops, silently, every packet host `a` sends to host `b` on connections `a`
//!   opens (nftables in `a`'s namespace), while `b` still reaches `a` and `a` still answers it:
//!   an asymmetric partition, in which `a`'s requests to `b` hang until `a` gives up.
//!
//! [`unavailable`] says why a lab cannot be made here (not root, no `ip`, no namespaces), so a
//! test can say so and skip.

use std::ffi::OsStr;
use std::io;
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

#[cfg(test)]
mod tests;

/// The first three octets of every lab's addresses. Labs never share a namespace, so two labs
/// with the same addresses do not meet.
const SUBNET: [u8; 3] = [10, 231, 0];
/// The prefix of every namespace a lab makes, followed by the harness's process id.
const PREFIX: &str = "gclab-";
/// The most hosts a lab holds (addresses .1 to .200).
pub const MAX_HOSTS: usize = 200;

/// One host of a lab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Its network namespace, for `ip netns exec`.
    pub namespace: String,
    /// Its address, on `eth0`.
    pub addr: Ipv4Addr,
}

/// Hosts joined by a switch, each in its own network namespace. Dropped, it removes them all
/// (unless it was only [attached](Lab::attach) to).
#[derive(Debug)]
pub struct Lab {
    tag: String,
    switch: String,
    hosts: Vec<Host>,
    owned: bool,
}

/// Whether `ip` is an address of a lab host (10.231.0.0/24). Such addresses exist only inside
/// labs' namespaces, so a program may listen on one without reaching beyond the lab.
pub fn is_lab_address(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.octets()[..3] == SUBNET,
        std::net::IpAddr::V6(_) => false,
    }
}

/// Why a lab cannot be made on this machine, or `None` when it can.
pub fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output();
    if !uid.is_ok_and(|o| o.stdout.trim_ascii() == b"0") {
        return Some("network namespaces need root".to_owned());
    }
    let probe = format!("{}-probe", unique_tag());
    match ip(&["netns", "add", &probe]) {
        Ok(()) => {
            let _ = ip(&["netns", "delete", &probe]);
            None
        }
        Err(e) => Some(format!("cannot make a network namespace: {e}")),
    }
}

impl Lab {
    /// Makes `hosts` hosts, all reaching each other.
    ///
    /// # Errors
    /// When an `ip` command fails (not root, no iproute2, no namespace support); whatever was
    /// made by then is removed.
    pub fn new(hosts: usize) -> io::Result<Lab> {
        if hosts == 0 || hosts > MAX_HOSTS {
            return Err(io::Error::other(format!(
                "a lab has 1 to {MAX_HOSTS} hosts, not {hosts}"
            )));
        }
        remove_stale();
        let tag = unique_tag();
        let mut lab = Lab {
            switch: format!("{tag}-sw"),
            tag,
            hosts: Vec::new(),
            owned: true,
        };
        // From here on, an early return drops `lab`, which removes what was made.
        ip(&["netns", "add", &lab.switch])?;
        lab.ip_in(&lab.switch, &["link", "set", "lo", "up"])?;
        lab.ip_in(&lab.switch, &["link", "add", "br0", "type", "bridge"])?;
        lab.ip_in(&lab.switch, &["link", "set", "br0", "up"])?;
        for i in 0..hosts {
            let host = host(&lab.tag, i);
            ip(&["netns", "add", &host.namespace])?;
            lab.hosts.push(host.clone());
            let port = format!("p{i}");
            let ns = host.namespace.as_str();
            lab.ip_in(ns, &["link", "set", "lo", "up"])?;
            // Both ends are made inside the lab: `eth0` here, its peer straight on the switch.
            lab.ip_in(
                ns,
                &[
                    "link",
                    "add",
                    "eth0",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &port,
                    "netns",
                    &lab.switch,
                ],
            )?;
            lab.ip_in(&lab.switch, &["link", "set", &port, "master", "br0"])?;
            lab.ip_in(&lab.switch, &["link", "set", &port, "up"])?;
            lab.ip_in(
                ns,
                &["addr", "add", &format!("{}/24", host.addr), "dev", "eth0"],
            )?;
            lab.ip_in(ns, &["link", "set", "eth0", "up"])?;
        }
        Ok(lab)
    }

    /// The lab made by another process (or another part of this one) under `tag`, with
    /// `hosts` hosts, for a program that runs inside it: a handle that can run programs and
    /// make faults, and leaves the namespaces to the lab's owner when dropped.
    pub fn attach(tag: &str, hosts: usize) -> Lab {
        Lab {
            switch: format!("{tag}-sw"),
            tag: tag.to_owned(),
            hosts: (0..hosts.min(MAX_HOSTS)).map(|i| host(tag, i)).collect(),
            owned: false,
        }
    }

    /// The tag its namespaces are named after, for [`Lab::attach`].
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The hosts, in the order they were made.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// `program` to be run on host `host` (through `ip netns exec`).
    ///
    /// # Panics
    /// When `host` is not a host of this lab.
    pub fn command(&self, host: usize, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.hosts[host].namespace])
            .arg(program);
        command
    }

    /// Takes host `host`'s switch port down: nothing gets to it or from it.
    ///
    /// # Errors
    /// When `ip` fails.
    pub fn cut(&self, host: usize) -> io::Result<()> {
        self.ip_in(&self.switch, &["link", "set", &format!("p{host}"), "down"])
    }

    /// Brings host `host`'s switch port back up.
    ///
    /// # Errors
    /// When `ip` fails.
    pub fn reconnect(&self, host: usize) -> io::Result<()> {
        self.ip_in(&self.switch, &["link", "set", &format!("p{host}"), "up"])
    }

    /// Packets to and from host `host` vanish in the switch. Unlike [`Lab::cut`], whose link
    /// down the host's kernel and its peers' see, its link stays up: the connections it has
    /// stay open and carry nothing, as when a network drops packets on the way, and only a
    /// program's own timeouts find out. Needs `nft` (nftables).
    ///
    /// # Errors
    /// When `nft` fails or is missing (also when a host is already silenced).
    pub fn silence(&self, host: usize) -> io::Result<()> {
        let addr = self.hosts[host].addr;
        let rule = format!(
            "table bridge lab {{\n  chain forward {{\n    type filter hook forward priority 0;\n    \
             ip saddr {addr} drop\n    ip daddr {addr} drop\n  }}\n}}\n"
        );
        nft(&self.switch, &["-f", "-"], Some(&rule))
    }

    /// Undoes [`Lab::silence`].
    ///
    /// # Errors
    /// When `nft` fails (also when no host was silenced).
    pub fn unsilence(&self) -> io::Result<()> {
        nft(&self.switch, &["delete", "table", "bridge", "lab"], None)
    }

    /// Hosts `a` and `b` can no longer reach each other; both still reach every other host.
    ///
    /// # Errors
    /// When `ip` fails (also when they are already separated).
    pub fn separate(&self, a: usize, b: usize) -> io::Result<()> {
        self.routes(a, b, "add")
    }

    /// Undoes [`Lab::separate`].
    ///
    /// # Errors
    /// When `ip` fails (also when they were not separated).
    pub fn heal(&self, a: usize, b: usize) -> io::Result<()> {
        self.routes(a, b, "delete")
    }

    /// Host `a`'s packets to host `b` vanish on connections `a` opens (those already open
    /// included); `b` still reaches `a`. Needs `nft` (nftables).
    ///
    /// # Errors
    /// When `nft` fails or is missing.
    pub fn block(&self, a: usize, b: usize) -> io::Result<()> {
        // Connection tracking tells the connections `a` opened (packets in their original
        // direction) from answers to those `b` opened, which still get through.
        let rule = format!(
            "table inet lab {{\n  chain out {{\n    type filter hook output priority 0;\n    \
             ip daddr {} ct direction original drop\n  }}\n}}\n",
            self.hosts[b].addr
        );
        nft(&self.hosts[a].namespace, &["-f", "-"], Some(&rule))
    }

    /// Undoes every [`Lab::block`] of host `a`.
    ///
    /// # Errors
    /// When `nft` fails (also when nothing was blocked).
    pub fn unblock(&self, a: usize) -> io::Result<()> {
        nft(
            &self.hosts[a].namespace,
            &["delete", "table", "inet", "lab"],
            None,
        )
    }

    fn routes(&self, a: usize, b: usize, verb: &str) -> io::Result<()> {
        for (from, to) in [(a, b), (b, a)] {
            let to = format!("{}/32", self.hosts[to].addr);
            self.ip_in(
                &self.hosts[from].namespace,
                &["route", verb, "prohibit", &to],
            )?;
        }
        Ok(())
    }

    fn ip_in(&self, namespace: &str, args: &[&str]) -> io::Result<()> {
        let mut all = vec!["-n", namespace];
        all.extend_from_slice(args);
        ip(&all)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let mut namespaces: Vec<&str> = self.hosts.iter().map(|h| h.namespace.as_str()).collect();
        namespaces.push(&self.switch);
        for namespace in namespaces {
            remove(namespace);
        }
    }
}

/// Host `i` of the lab tagged `tag`.
fn host(tag: &str, i: usize) -> Host {
    Host {
        namespace: format!("{tag}-h{i}"),
        // At most MAX_HOSTS (200) hosts, so 1 + i fits an octet.
        addr: Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], 1 + i as u8),
    }
}

/// `gclab-PID-N`: unique among the labs of this process, and tells [`remove_stale`] whose it is.
fn unique_tag() -> String {
    static MADE: AtomicU32 = AtomicU32::new(0);
    format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        MADE.fetch_add(1, Ordering::Relaxed)
    )
}

/// Kills every process left in `namespace` (they are the lab's: nothing else runs there) and
/// deletes it, which deletes its interfaces too.
fn remove(namespace: &str) {
    if let Ok(out) = run(&["netns", "pids", namespace]) {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill")
                .args(["-KILL", pid])
                .stderr(Stdio::null())
                .status();
        }
    }
    let _ = ip(&["netns", "delete", namespace]);
}

/// Removes the namespaces of labs whose harness process is gone (killed before its labs were
/// dropped).
fn remove_stale() {
    let Ok(out) = run(&["netns", "list"]) else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        let alive = pid.parse::<u32>().is_ok_and(|pid| {
            pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
        if !alive {
            remove(name);
        }
    }
}

/// `nft ARGS` in `namespace`, with `input` on its standard input.
fn nft(namespace: &str, args: &[&str], input: Option<&str>) -> io::Result<()> {
    use std::io::Write as _;
    let mut child = Command::new("ip")
        .args(["netns", "exec", namespace, "nft"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run ip netns exec nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.unwrap_or("").as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "nft {} in {namespace}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn ip(args: &[&str]) -> io::Result<()> {
    let out = run(args)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn run(args: &[&str]) -> io::Result<Output> {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run ip (iproute2): {e}")))
}
