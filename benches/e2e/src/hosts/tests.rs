//! The lab, tried with real packets: a TCP connect to a closed port is answered ("Connection
//! refused") when the host is reachable, and fails otherwise (no answer or "No route to host"
//! after a cut, "Permission denied" across a separation). bash's `/dev/tcp` makes the connect, so the check
//! needs nothing inside the namespaces but bash and coreutils' `timeout`.

use std::sync::Once;

use super::{Lab, MAX_HOSTS, PREFIX, run, unavailable};

/// Set to `1` to make a machine without network namespaces a test failure instead of a skip
/// (CI does: it runs as root, and `cargo xtask ci` installs iproute2).
const REQUIRE_VAR: &str = "GEECACHE_REQUIRE_NETNS";

/// Whether the tests can run here. When they cannot, says why once and skips, unless
/// [`REQUIRE_VAR`] is `1`: then it fails.
fn lab_possible() -> bool {
    let Some(why) = unavailable() else {
        return true;
    };
    assert!(
        !std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1"),
        "{REQUIRE_VAR}=1 but {why}"
    );
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        eprintln!(
            "note: skipping the network-namespace tests: {why} (set {REQUIRE_VAR}=1 to make this \
             an error)"
        );
    });
    false
}

/// Whether a TCP connect from host `from` to host `to` (port 9, closed) got an answer: the
/// other host's kernel refusing it. Any other end counts as out of reach: this host's kernel
/// failing it (no route, a prohibit route) or no answer within the bound (a cut link drops the
/// packets). Anything else, such as bash or `ip netns exec` failing, fails the test.
fn reaches(lab: &Lab, from: usize, to: usize) -> bool {
    let target = format!("exec 3<>/dev/tcp/{}/9", lab.hosts()[to].addr);
    // A reachable host refuses at once; 3 s bounds the wait for one that cannot answer.
    let out = lab
        .command(from, "timeout")
        .args(["3", "bash", "-c", &target])
        .output()
        .expect("ip netns exec runs");
    let said = String::from_utf8_lossy(&out.stderr);
    let timed_out = out.status.code() == Some(124);
    let failed_here = [
        "No route to host",
        "Permission denied",
        "Network is unreachable",
    ]
    .iter()
    .any(|e| said.contains(e));
    assert!(
        said.contains("Connection refused") || failed_here || timed_out,
        "{from} -> {to}: unexpected outcome {:?}: {said:?}",
        out.status
    );
    said.contains("Connection refused")
}

fn namespaces() -> String {
    String::from_utf8_lossy(&run(&["netns", "list"]).expect("ip runs").stdout).into_owned()
}

#[test]
fn hosts_reach_each_other_until_cut_or_separated_and_again_after() {
    if !lab_possible() {
        return;
    }
    let lab = Lab::new(3).unwrap();
    let names: Vec<String> = lab.hosts().iter().map(|h| h.namespace.clone()).collect();
    for (from, to) in [(0, 1), (1, 2), (2, 0)] {
        assert!(reaches(&lab, from, to), "{from} -> {to} before any fault");
    }

    lab.cut(2).unwrap();
    assert!(!reaches(&lab, 0, 2), "a cut host is out of reach");
    assert!(reaches(&lab, 0, 1), "the others still reach each other");
    lab.reconnect(2).unwrap();
    assert!(reaches(&lab, 0, 2), "reconnected");

    lab.separate(0, 1).unwrap();
    assert!(!reaches(&lab, 0, 1));
    assert!(!reaches(&lab, 1, 0));
    // Both still reach the third host, as two nodes still reach etcd.
    assert!(reaches(&lab, 0, 2));
    assert!(reaches(&lab, 1, 2));
    lab.heal(0, 1).unwrap();
    assert!(reaches(&lab, 0, 1));
    assert!(reaches(&lab, 1, 0));

    drop(lab);
    let left = namespaces();
    for name in names {
        assert!(!left.contains(&name), "{name} left behind: {left}");
    }
}

/// Whether host `host`'s own link has its carrier (`LOWER_UP`).
fn link_up(lab: &Lab, host: usize) -> bool {
    let namespace = lab.hosts()[host].namespace.as_str();
    let out = run(&["-n", namespace, "-o", "link", "show", "eth0"]).expect("ip runs");
    String::from_utf8_lossy(&out.stdout).contains("LOWER_UP")
}

#[test]
fn a_silenced_host_is_out_of_reach_with_its_link_up_unlike_a_cut_one() {
    if !lab_possible() {
        return;
    }
    let lab = Lab::new(3).unwrap();
    lab.silence(2).unwrap();
    assert!(!reaches(&lab, 0, 2), "packets to a silenced host vanish");
    assert!(!reaches(&lab, 2, 1), "and its own vanish too");
    assert!(reaches(&lab, 0, 1), "the others still reach each other");
    assert!(link_up(&lab, 2), "a silenced host's link stays up");
    lab.unsilence().unwrap();
    assert!(reaches(&lab, 0, 2), "unsilenced");

    lab.cut(2).unwrap();
    assert!(!link_up(&lab, 2), "a cut host sees its link down");
    lab.reconnect(2).unwrap();
}

#[test]
fn a_blocked_host_cannot_reach_its_peer_which_still_reaches_it() {
    if !lab_possible() {
        return;
    }
    let lab = Lab::new(3).unwrap();
    lab.block(0, 1).unwrap();
    assert!(!reaches(&lab, 0, 1), "0's packets to 1 vanish");
    assert!(reaches(&lab, 1, 0), "1 still reaches 0, and 0 answers");
    assert!(reaches(&lab, 0, 2), "0 still reaches the third host");
    lab.unblock(0).unwrap();
    assert!(reaches(&lab, 0, 1), "unblocked");
}

#[test]
fn dropping_a_lab_kills_what_runs_in_it_and_removes_every_namespace() {
    if !lab_possible() {
        return;
    }
    let lab = Lab::new(1).unwrap();
    let name = lab.hosts()[0].namespace.clone();
    // A process that would outlive the test if the lab did not end it (bounded anyway).
    let mut sleeper = lab.command(0, "sleep").arg("60").spawn().unwrap();
    // `ip netns exec` enters the namespace, then execs the program in its own process: the
    // child is listed in the namespace once it has got there (polled, bounded).
    let listed = || {
        String::from_utf8_lossy(&run(&["netns", "pids", &name]).unwrap().stdout)
            .split_whitespace()
            .any(|pid| pid == sleeper.id().to_string())
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !listed() {
        assert!(
            std::time::Instant::now() < until,
            "the program never showed up inside the host's namespace"
        );
        std::thread::sleep(std::time::Duration::from_millis(10)); // polling, bounded
    }
    drop(lab);
    let status = sleeper.wait().unwrap();
    assert!(!status.success(), "killed, not finished");
    let left = namespaces();
    assert!(!left.contains(&name), "{name} left behind: {left}");
    let switch = name.replace("-h0", "-sw");
    assert!(switch.starts_with(PREFIX) && !left.contains(&switch));
}

#[test]
fn a_lab_has_at_least_one_host_and_at_most_the_subnet_holds() {
    assert!(Lab::new(0).is_err());
    assert!(Lab::new(MAX_HOSTS + 1).is_err());
}
