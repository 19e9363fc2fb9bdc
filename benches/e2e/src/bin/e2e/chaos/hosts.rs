//! The scenarios across hosts with their own addresses: each node on a host of a
//! network-namespace lab (`geecache_bench_e2e::hosts`), so a fault can be one of the network
//! between machines rather than of a process.
//!
//! `e2e` makes the lab (as root), then runs itself again on the lab's last host with
//! `--in-lab TAG`: from there the origin, the load generator and the probes reach every node at
//! its own address, and nothing in the run needs an address outside the lab. The parent reads
//! the rows from the child's table and removes the lab, and everything still running in it,
//! when the child is done, whether it succeeded or not.

use std::net::SocketAddr;

use geecache_bench_e2e::hosts::{Lab as HostLab, unavailable};

use super::*;

pub(super) mod members;

/// The cut scenario's name in the table.
pub(super) const S: &str = "cut host";
/// The separation scenario's name in the table.
pub(super) const SEPARATED: &str = "separated hosts";
/// The asymmetric partition's name in the table.
pub(super) const ONE_WAY: &str = "one-way partition";
/// Every scenario's name in the table.
pub(super) const TITLES: [&str; 6] = [
    S,
    SEPARATED,
    ONE_WAY,
    members::ETCD_CUT,
    members::ROLLING,
    members::DNS,
];
/// Nodes, on hosts 0 to 2; the lab's last host runs the harness, the origin and the load.
pub(super) const NODES: usize = 3;
/// The host etcd or the DNS server runs on, in the scenarios that have one.
pub(super) const SERVICES: usize = NODES;
/// The port every node listens on, at its host's address.
const PORT: u16 = 8001;

/// The name of `scenario` in the table and on the command line.
fn names(scenario: Scenario) -> (&'static str, &'static str) {
    match scenario {
        Scenario::Separate => (SEPARATED, "separate"),
        Scenario::OneWay => (ONE_WAY, "one-way"),
        Scenario::EtcdCut => (members::ETCD_CUT, "etcd-cut"),
        Scenario::HostRolling => (members::ROLLING, "host-rolling"),
        Scenario::Dns => (members::DNS, "dns"),
        _ => (S, "cut"),
    }
}

/// How many hosts `scenario`'s lab has: the nodes, a host for etcd or DNS if it needs one, and
/// the harness's.
fn lab_hosts(scenario: Scenario) -> usize {
    match scenario {
        Scenario::EtcdCut | Scenario::HostRolling | Scenario::Dns => NODES + 2,
        _ => NODES + 1,
    }
}

/// Runs `scenario` (`cut`, `separate` or `one-way`): in the lab when this process is the one inside it,
/// else makes the lab and runs itself there. Without root or namespaces, one row says why it
/// was skipped.
pub(super) fn run(bench: &Bench, scenario: Scenario) -> anyhow::Result<Vec<Row>> {
    let (title, flag) = names(scenario);
    if let Some(tag) = &bench.args.in_lab {
        let hosts = HostLab::attach(tag, lab_hosts(scenario));
        return match scenario {
            Scenario::Separate | Scenario::OneWay => partition(bench, &hosts, scenario),
            Scenario::EtcdCut => members::etcd_cut(bench, &hosts),
            Scenario::HostRolling => members::rolling(bench, &hosts),
            Scenario::Dns => members::dns(bench, &hosts),
            _ => cut(bench, &hosts),
        };
    }
    if let Some(why) = unavailable() {
        eprintln!("e2e: skipping the {flag} scenario: {why}");
        return Ok(vec![Row::info(title, "skipped", why)]);
    }
    let hosts =
        HostLab::new(lab_hosts(scenario)).context("cannot make the network-namespace lab")?;
    let mut child = itself_in(bench, &hosts)?;
    child.args(["--chaos", flag, "--in-lab", hosts.tag()]);
    let args = &bench.args;
    // The slowest scenario restarts three nodes, cuts etcd off for 20 s or runs 40 s of load.
    let deadline = args.fill_timeout * 3
        + args.startup_timeout * 8
        + args.fault_for
        + Duration::from_secs(180);
    let table =
        run_bounded(child, deadline).with_context(|| format!("the {flag} scenario in the lab"))?;
    let rows: Vec<Row> = table.lines().filter_map(|l| parse_row(title, l)).collect();
    if rows.is_empty() {
        bail!("the {flag} scenario in the lab printed no rows:\n{table}");
    }
    Ok(rows)
}

/// This program on the last host of `hosts` (the harness's), with this run's binaries and
/// settings: the caller adds what to run there and `--in-lab`.
pub(super) fn itself_in(bench: &Bench, hosts: &HostLab) -> anyhow::Result<Command> {
    let this = std::env::current_exe().context("cannot find this program's path")?;
    let args = &bench.args;
    let millis = |d: Duration| format!("{}ms", d.as_millis());
    let mut child = hosts.command(hosts.hosts().len() - 1, this);
    child
        .arg("--geecache")
        .arg(&bench.geecache)
        .arg("--loadgen")
        .arg(&bench.loadgen)
        .arg("--bare-axum")
        .arg(&bench.bare_axum)
        .args(["--keys", &args.keys.to_string()])
        .args(["--connections", &args.connections.to_string()])
        .args(["--threads", &args.threads.to_string()])
        .args(["--server-threads", &args.server_threads.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .args(["--fill-timeout", &millis(args.fill_timeout)])
        .args(["--startup-timeout", &millis(args.startup_timeout)])
        .args(["--fault-for", &millis(args.fault_for)])
        .args(["--zipf", &args.zipf.to_string()])
        .arg("--log-dir")
        .arg(&bench.log_dir);
    Ok(child)
}

/// A row of scenario `title` from the markdown table [`markdown`] prints.
fn parse_row(title: &'static str, line: &str) -> Option<Row> {
    let cells: Vec<&str> = line
        .strip_prefix(&format!("| {title} | "))?
        .strip_suffix(" |")?
        .split(" | ")
        .collect();
    let [figure, value, target, verdict] = cells[..] else {
        return None;
    };
    Some(Row {
        scenario: title,
        figure: figure.to_owned(),
        value: value.to_owned(),
        target: target.to_owned(),
        met: match verdict {
            "met" => Some(true),
            "**missed**" => Some(false),
            _ => None,
        },
    })
}

/// Three filled nodes on hosts 0 to 2 and the lab whose origin they load from: the start of
/// every scenario here.
struct Cluster<'a> {
    lab: Lab<'a>,
    nodes: Vec<Server>,
    urls: Vec<String>,
    keys: Vec<String>,
    owner: Vec<usize>,
}

/// The lab of a scenario across hosts: the origin on the harness's host (the last).
pub(super) fn lab_on<'a>(bench: &'a Bench, hosts: &HostLab, tag: &str) -> anyhow::Result<Lab<'a>> {
    let here = hosts.hosts().last().context("a lab without hosts")?.addr;
    Lab::with_origin_on(bench, tag, Some(SocketAddr::from((here, 0))))
}

/// The URL of every node, on hosts 0 to 2.
pub(super) fn node_urls(hosts: &HostLab) -> Vec<String> {
    hosts.hosts()[..NODES]
        .iter()
        .map(|h| format!("http://{}:{PORT}", h.addr))
        .collect()
}

/// Three nodes on hosts 0 to 2, finding each other through `members`, each holding its own
/// keys: the start of every scenario here.
fn filled_cluster<'a>(
    lab: Lab<'a>,
    hosts: &HostLab,
    members: &Members,
) -> anyhow::Result<Cluster<'a>> {
    let urls = node_urls(hosts);
    let mut nodes = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        nodes.push(lab.host_node(hosts, i, url, members)?);
    }
    wait_for_members(&nodes.iter().collect::<Vec<_>>(), NODES)?;
    // Each node is asked for its own keys only: it loads them into its main cache without a
    // peer in between, so a fill slowed by a busy machine (a peer ejected as slow, a stand-in
    // loading a key into its hot cache instead) cannot leave an owner without its keys.
    let keys = lab.all_keys();
    let owner = owners(&urls, &keys);
    let timeout = lab.bench.args.fill_timeout;
    for (i, url) in urls.iter().enumerate() {
        let own = keys_of(&keys, &owner, i);
        let file = lab.key_file(&format!("own{}", i + 1), &own)?;
        let pass = Lab::run_load(
            lab.load(
                std::slice::from_ref(url),
                "sequential",
                timeout,
                Some(&file),
            ),
            timeout,
        )?;
        if pass.ok != own.len() as u64 {
            bail!(
                "filling node {}: {} of {} keys answered",
                i + 1,
                pass.ok,
                own.len()
            );
        }
    }
    check_held(&nodes, &owner)?;
    Ok(Cluster {
        lab,
        nodes,
        urls,
        keys,
        owner,
    })
}

/// Node 1 cannot reach node 2 under Zipf load through node 1 on node 2's keys for
/// `--fault-for`, while both still reach node 3. `separate`: neither reaches the other (each
/// kernel refuses, new connections fail at once). `one-way`: node 1's packets to node 2 vanish,
/// while node 2 still reaches node 1, so node 1's requests hang until its peer timeout.
fn partition(bench: &Bench, hosts: &HostLab, scenario: Scenario) -> anyhow::Result<Vec<Row>> {
    let (t, flag) = names(scenario);
    let lab = lab_on(bench, hosts, flag)?;
    let Cluster {
        lab,
        nodes,
        urls,
        keys,
        owner,
    } = filled_cluster(lab, hosts, &Members::Static(node_urls(hosts)))?;
    let theirs = keys_of(&keys, &owner, 1);
    let file = lab.key_file("theirs", &theirs)?;
    let mut rows = Vec::new();

    lab.reset_loads()?;
    let one_way = scenario == Scenario::OneWay;
    if one_way {
        hosts.block(0, 1)?;
    } else {
        hosts.separate(0, 1)?;
    }
    let run_for = bench.args.fault_for;
    let during = Lab::run_load(lab.load(&urls[..1], "zipf", run_for, Some(&file)), run_for);
    if one_way {
        hosts.unblock(0)?;
    } else {
        hosts.heal(0, 1)?;
    }
    let during = during?;
    let (requests, loaded) = lab.loads()?;
    rows.push(Row::check(
        t,
        format!(
            "{} s of Zipf load through node 1 on node 2's keys: client errors",
            run_for.as_secs()
        ),
        during.errors().to_string(),
        "0",
        during.errors() == 0,
    ));
    // Connections opened before the separation are not refused: their packets are dropped
    // and the request waits the peer timeout once, after which the circuit is open.
    let bound = PEER_TIMEOUT + Duration::from_millis(250);
    rows.push(Row::check(
        t,
        "answers that waited ≥ 0.9 s (the peer timeout); the longest",
        format!("{}; {}", during.slow, ms(during.max_us)),
        format!(
            "none longer than the peer timeout ({} ms, + 250 ms)",
            PEER_TIMEOUT.as_millis()
        ),
        #[allow(clippy::cast_precision_loss)]
        {
            during.max_us <= bound.as_micros() as f64
        },
    ));
    rows.push(Row::info(
        t,
        "source loads (distinct keys) meanwhile",
        format!(
            "{requests} ({loaded}); {} requests, p99 {}",
            during.ok,
            ms(during.p99_us)
        ),
    ));

    let timeout = bench.args.fill_timeout;
    let again = Lab::run_load(
        lab.load(&urls[..1], "sequential", timeout, Some(&file)),
        timeout,
    )?;
    rows.push(Row::check(
        t,
        "healed: client errors asking for all node 2's keys through node 1",
        again.errors().to_string(),
        "0",
        again.errors() == 0,
    ));
    stop_all(nodes);
    Ok(rows)
}

/// Node 2's link is cut while nodes 0 and 1 both ask for every key of its range at once.
fn cut(bench: &Bench, hosts: &HostLab) -> anyhow::Result<Vec<Row>> {
    let lab = lab_on(bench, hosts, "cut")?;
    let Cluster {
        lab,
        nodes,
        urls,
        keys,
        owner,
    } = filled_cluster(lab, hosts, &Members::Static(node_urls(hosts)))?;
    let victim_keys = keys_of(&keys, &owner, 2);
    let file = lab.key_file("victim", &victim_keys)?;
    let n = victim_keys.len();
    let mut rows = Vec::new();

    // The link goes: connections to the host stay open but nothing comes back, as with a
    // pulled cable. Both survivors ask for every key of its range at once.
    lab.reset_loads()?;
    hosts.cut(2)?;
    let passes = both_ask(&lab, &urls[..2], &file);
    hosts.reconnect(2)?;
    let (a, b) = passes?;
    let (requests, loaded) = lab.loads()?;
    rows.push(Row::check(
        S,
        "client errors while both survivors ask for all its keys",
        (a.errors() + b.errors()).to_string(),
        "0",
        a.errors() + b.errors() == 0,
    ));
    #[allow(clippy::cast_precision_loss)]
    let per_key = requests as f64 / n as f64;
    rows.push(Row::check(
        S,
        "source loads per key of its range",
        format!("{per_key:.3} ({requests} loads, {loaded} of {n} keys)"),
        "1 (once in the cluster)",
        per_key <= 1.01,
    ));
    rows.push(Row::info(
        S,
        "answers that waited ≥ 0.9 s (the peer timeout), p99",
        format!("{}, {}", a.slow + b.slow, ms(a.p99_us.max(b.p99_us))),
    ));

    // Back on the network: every key of its range asked again through the survivors.
    let timeout = bench.args.fill_timeout;
    let again = Lab::run_load(
        lab.load(&urls[..2], "sequential", timeout, Some(&file)),
        timeout,
    )?;
    rows.push(Row::check(
        S,
        "reconnected: client errors asking for its keys again",
        again.errors().to_string(),
        "0",
        again.errors() == 0,
    ));
    stop_all(nodes);
    Ok(rows)
}

/// `loadgen` through `a` and `b` at the same time, each asking every key of `file` once.
fn both_ask(
    lab: &Lab<'_>,
    targets: &[String],
    file: &Path,
) -> anyhow::Result<(LoadReport, LoadReport)> {
    let timeout = lab.bench.args.fill_timeout;
    let passes = std::thread::scope(|s| {
        let one = |target: &[String]| {
            Lab::run_load(lab.load(target, "sequential", timeout, Some(file)), timeout)
        };
        let a = s.spawn(move || one(&targets[..1]));
        let b = s.spawn(move || one(&targets[1..2]));
        (a.join(), b.join())
    });
    match passes {
        (Ok(a), Ok(b)) => Ok((a?, b?)),
        _ => bail!("a load thread panicked"),
    }
}

impl Lab<'_> {
    /// A node on host `i` of `hosts`, at its own address, known as `url`, finding its peers
    /// through `members`.
    pub(super) fn host_node(
        &self,
        hosts: &HostLab,
        i: usize,
        url: &str,
        members: &Members,
    ) -> anyhow::Result<Server> {
        let command = hosts.command(i, &self.bench.geecache);
        let listen = format!("{}:{PORT}", hosts.hosts()[i].addr);
        self.start_node(command, i, &listen, url, members)
    }
}
