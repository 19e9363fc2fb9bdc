//! Membership across hosts: etcd cut off from every node, a rolling restart, and members
//! found through DNS. etcd or the DNS server runs on a host of its own (host 3), so cutting
//! that host is an outage of the membership service alone, while the nodes still reach each
//! other and the origin.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};

use super::*;

/// The etcd outage's name in the table.
pub(in crate::chaos) const ETCD_CUT: &str = "etcd cut off (hosts)";
/// The rolling restart's name in the table.
pub(in crate::chaos) const ROLLING: &str = "rolling restart (hosts, etcd)";
/// The DNS scenario's name in the table.
pub(in crate::chaos) const DNS: &str = "DNS membership (hosts)";

/// The etcd outages, in turn. Silenced for 9 s: most of the nodes' leases (10 s, kept alive
/// every 3.3 s) run out while their connections stay open, so a watch that waited for its
/// connection's pings (up to 15 s) would live through it and deliver the expiries. Cut off for
/// 20 s: twice the lease, so every registration expires.
const ETCD_OUTAGES: [Outage; 2] = [
    Outage::Silence(Duration::from_secs(9)),
    Outage::Cut(Duration::from_secs(20)),
];
/// The DNS server is cut off for ten lookups' worth.
const DNS_OUTAGE: Outage = Outage::Cut(Duration::from_secs(10));
/// The name the nodes are found under, and the domain the DNS server answers for alone.
const DNS_NAME: &str = "geecache.lab";

/// How the services host is taken away, and for how long.
#[derive(Clone, Copy, Debug)]
enum Outage {
    /// Its link goes down ([`HostLab::cut`]): the other hosts' kernels find out, and its
    /// connections break when it comes back.
    Cut(Duration),
    /// Its packets vanish in the switch ([`HostLab::silence`]): its connections stay open,
    /// carrying nothing, and only the programs' own timeouts can tell.
    Silence(Duration),
}

impl Outage {
    fn length(self) -> Duration {
        match self {
            Outage::Cut(length) | Outage::Silence(length) => length,
        }
    }

    /// Its short name for the table, e.g. "20 s cut".
    fn name(self) -> String {
        match self {
            Outage::Cut(length) => format!("{} s cut", length.as_secs()),
            Outage::Silence(length) => format!("{} s silence", length.as_secs()),
        }
    }

    /// The outage for the table, e.g. "cut off for 20 s".
    fn describe(self) -> String {
        match self {
            Outage::Cut(length) => format!("cut off for {} s", length.as_secs()),
            Outage::Silence(length) => format!(
                "silenced for {} s (its packets dropped, its link up)",
                length.as_secs()
            ),
        }
    }

    fn start(self, hosts: &HostLab) -> std::io::Result<()> {
        match self {
            Outage::Cut(_) => hosts.cut(SERVICES),
            Outage::Silence(_) => hosts.silence(SERVICES),
        }
    }

    fn end(self, hosts: &HostLab) -> std::io::Result<()> {
        match self {
            Outage::Cut(_) => hosts.reconnect(SERVICES),
            Outage::Silence(_) => hosts.unsilence(),
        }
    }
}

/// etcd on the services host, on its usual ports, with an empty data directory when `fresh`,
/// else with the one an earlier etcd of this lab left (a restart).
pub(in crate::chaos) fn etcd_on(
    lab: &Lab<'_>,
    hosts: &HostLab,
    fresh: bool,
) -> anyhow::Result<(Server, String)> {
    let at = hosts.hosts()[SERVICES].addr;
    let command = hosts.command(SERVICES, "etcd");
    lab.etcd_at(command, (at, 2379).into(), (at, 2380).into(), fresh)
}

/// etcd is silenced for 9 s and then cut off for 20 s from the whole cluster, under Zipf load
/// through every node: the nodes must keep serving with the members they know, keep their rings
/// as they are, and register again once it is back, their leases having run out meanwhile.
pub(super) fn etcd_cut(bench: &Bench, hosts: &HostLab) -> anyhow::Result<Vec<Row>> {
    let lab = lab_on(bench, hosts, "etcd-cut")?;
    let (etcd, client) = etcd_on(&lab, hosts, true)?;
    let members = Members::Etcd(client);
    let Cluster {
        lab,
        nodes,
        urls,
        keys,
        ..
    } = filled_cluster(lab, hosts, &members)?;
    lab.reset_loads()?;
    let mut rows = Vec::new();
    for outage in ETCD_OUTAGES {
        let moved_before = moved(&nodes)?;
        let (seen, during) = outage_rows(&lab, hosts, &urls, &nodes, (ETCD_CUT, "etcd"), outage)?;
        rows.extend(seen);
        let (loads, loaded) = lab.loads()?;
        rows.push(Row::info(
            ETCD_CUT,
            format!(
                "{}: source loads (distinct keys) meanwhile; requests, p99",
                outage.name()
            ),
            format!("{loads} ({loaded}); {}, {}", during.ok, ms(during.p99_us)),
        ));
        // The members never changed, so no ring should have: a node whose watch delivered the
        // expiries, or that applied the list it read right after the outage before the others
        // had registered again, moved keys away and back.
        let moved = moved(&nodes)?.saturating_sub(moved_before);
        rows.push(Row::check(
            ETCD_CUT,
            format!(
                "{}: values moved for a change of members, from the outage to 8 s after it \
                 (handed out to a new owner, or taken from an old one), all nodes",
                outage.name()
            ),
            moved.to_string(),
            "0 (the members did not change)",
            moved == 0,
        ));
        lab.reset_loads()?;
    }

    // A node started now reads the members from etcd itself: it sees the three only if they
    // registered again after their leases ran out during the cut.
    let started = Instant::now();
    let observer_url = format!("http://{}:{PORT}", hosts.hosts()[SERVICES].addr);
    let observer = lab.host_node(hosts, SERVICES, &observer_url, &members)?;
    let all: Vec<&Server> = nodes.iter().chain([&observer]).collect();
    let registered = wait_for_members(&all, NODES + 1);
    rows.push(Row::check(
        ETCD_CUT,
        "reconnected: a node started afterwards and the three all list four members",
        match &registered {
            Ok(()) => format!("yes, {:.1} s after", started.elapsed().as_secs_f64()),
            Err(e) => format!("no: {e}"),
        },
        format!("within {} s", CONVERGE.as_secs()),
        registered.is_ok(),
    ));
    rows.push(asked_again(&lab, ETCD_CUT, &urls, &keys)?);
    stop_all(nodes);
    observer.stop(Duration::from_secs(5));
    drop(etcd);
    Ok(rows)
}

/// Values the nodes moved because their members changed: handed to a key's new owner, or
/// taken from its old one.
fn moved(nodes: &[Server]) -> anyhow::Result<u64> {
    Ok(sum_field(nodes, "handed_out")? + sum_field(nodes, "handoffs")?)
}

/// Every node restarted in turn under Zipf load, each on its own host, found through etcd.
pub(super) fn rolling(bench: &Bench, hosts: &HostLab) -> anyhow::Result<Vec<Row>> {
    let lab = lab_on(bench, hosts, "host-rolling")?;
    let (etcd, client) = etcd_on(&lab, hosts, true)?;
    let members = Members::Etcd(client);
    let Cluster {
        lab,
        mut nodes,
        urls,
        ..
    } = filled_cluster(lab, hosts, &members)?;
    lab.reset_loads()?;
    let (report, took) = lab.roll(&mut nodes, &urls, |i| {
        lab.host_node(hosts, i, &urls[i], &members)
    })?;
    let (reloads, _) = lab.loads()?;
    let handoffs = sum_field(&nodes, "handoffs")?;
    stop_all(nodes);
    drop(etcd);
    Ok(lab.rolling_rows(ROLLING, &took, &report, reloads, handoffs))
}

/// Nodes found through DNS: a member taken out of the records and put back, each change seen by
/// every node within two lookups; then the DNS server cut off under Zipf load, through which
/// the nodes keep serving with the members they know.
pub(super) fn dns(bench: &Bench, hosts: &HostLab) -> anyhow::Result<Vec<Row>> {
    let lab = lab_on(bench, hosts, "dns")?;
    let server = Dnsmasq::start(&lab, hosts, &[0, 1, 2])?;
    let members = Members::Dns(format!("{DNS_NAME}:{PORT}"), server.addr);
    let Cluster {
        lab,
        nodes,
        urls,
        keys,
        ..
    } = filled_cluster(lab, hosts, &members)?;
    let mut rows = Vec::new();
    let bound = DNS_INTERVAL * 2;

    for (what, listed, expect) in [
        ("node 3 taken out of the records", &[0, 1][..], 2),
        ("node 3 put back", &[0, 1, 2][..], 3),
    ] {
        let started = Instant::now();
        server.set(hosts, listed)?;
        // Node 3 itself is not asked: it is no member while it is out of the records.
        let asked: Vec<&Server> = nodes.iter().take(expect).collect();
        let seen = wait_for_members(&asked, expect);
        let took = started.elapsed();
        rows.push(Row::check(
            DNS,
            format!("{what}: every node sees {expect} members after"),
            match &seen {
                Ok(()) => format!("{:.2} s", took.as_secs_f64()),
                Err(e) => format!("not within {} s: {e}", CONVERGE.as_secs()),
            },
            format!(
                "≤ 2 lookups ({} s) + the harness's polling",
                bound.as_secs_f64()
            ),
            seen.is_ok() && took <= bound + Duration::from_millis(500),
        ));
    }

    lab.reset_loads()?;
    rows.append(
        &mut outage_rows(
            &lab,
            hosts,
            &urls,
            &nodes,
            (DNS, "the DNS server"),
            DNS_OUTAGE,
        )?
        .0,
    );
    rows.push(asked_again(&lab, DNS, &urls, &keys)?);
    stop_all(nodes);
    Ok(rows)
}

/// Takes the services host (running `service`) away as `outage` says under Zipf load through
/// every node: the rows of client errors meanwhile and of the members each node still lists at
/// the end, and the load's report.
fn outage_rows(
    lab: &Lab<'_>,
    hosts: &HostLab,
    urls: &[String],
    nodes: &[Server],
    (scenario, service): (&'static str, &str),
    outage: Outage,
) -> anyhow::Result<(Vec<Row>, LoadReport)> {
    let (during, listed) = under_load(lab, urls, outage.length(), || {
        during_outage(hosts, outage, || member_counts(nodes))
    })?;
    let rows = vec![
        Row::check(
            scenario,
            format!(
                "client errors, Zipf load through all three nodes while {service} is {}",
                outage.describe()
            ),
            during.errors().to_string(),
            "0",
            during.errors() == 0,
        ),
        members_row(
            scenario,
            &format!(
                "members each node lists at the end of the {}",
                outage.name()
            ),
            &listed,
        ),
    ];
    Ok((rows, during))
}

/// Runs `fault` while Zipf load goes through every node of `urls` for the fault's length and
/// 10 s more, and returns the load's report with what `fault` returned.
fn under_load<T: Send>(
    lab: &Lab<'_>,
    urls: &[String],
    fault_for: Duration,
    fault: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<(LoadReport, T)> {
    let run_for = fault_for + Duration::from_secs(10);
    let command = lab.load(urls, "zipf", run_for, None);
    std::thread::scope(|s| {
        let load = s.spawn(move || Lab::run_load(command, run_for));
        // The load under way first, so that the fault lands on a busy cluster.
        std::thread::sleep(Duration::from_secs(2)); // the fault's start; not a sync point
        let faulted = fault();
        let report = load
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"));
        anyhow::Ok((report??, faulted?))
    })
}

/// Takes the services host away for the outage, runs `at_end` just before bringing it back,
/// and brings it back whatever `at_end` returned.
fn during_outage<T>(
    hosts: &HostLab,
    outage: Outage,
    at_end: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    outage.start(hosts)?;
    std::thread::sleep(outage.length()); // the outage's length: the fault itself
    let seen = at_end();
    outage.end(hosts)?;
    seen
}

/// How many members each node lists now.
fn member_counts(nodes: &[Server]) -> anyhow::Result<Vec<usize>> {
    nodes
        .iter()
        .map(|n| Ok(stats(n)?["peers"].as_array().map_or(0, Vec::len)))
        .collect()
}

/// The check that every node still lists every member.
fn members_row(scenario: &'static str, figure: &str, listed: &[usize]) -> Row {
    let shown: Vec<String> = listed.iter().map(usize::to_string).collect();
    Row::check(
        scenario,
        figure,
        shown.join(", "),
        format!("{NODES} on every node"),
        listed.iter().all(|&n| n == NODES),
    )
}

/// Every key asked once more, through every node in turn: the check after a fault healed.
fn asked_again(
    lab: &Lab<'_>,
    scenario: &'static str,
    urls: &[String],
    keys: &[String],
) -> anyhow::Result<Row> {
    let timeout = lab.bench.args.fill_timeout;
    let file = lab.key_file("again", keys)?;
    let pass = Lab::run_load(lab.load(urls, "sequential", timeout, Some(&file)), timeout)?;
    Ok(Row::check(
        scenario,
        "healed: client errors asking every key again",
        pass.errors().to_string(),
        "0",
        pass.errors() == 0,
    ))
}

/// dnsmasq on the services host, answering for `.lab` alone from a hosts file the scenario
/// rewrites and reloads with SIGHUP, and never caching, so each answer is the file as last read.
struct Dnsmasq {
    server: Server,
    file: PathBuf,
    addr: SocketAddr,
}

impl Dnsmasq {
    /// Starts it with `members` (node indexes) as the name's A records.
    fn start(lab: &Lab<'_>, hosts: &HostLab, members: &[usize]) -> anyhow::Result<Dnsmasq> {
        let at = hosts.hosts()[SERVICES].addr;
        let addr = SocketAddr::from((at, 53));
        let file = lab.bench.log_dir.join(format!("{}-dns-hosts", lab.tag));
        write_records(&file, hosts, members)?;
        let mut command = hosts.command(SERVICES, "dnsmasq");
        command
            .arg("--no-daemon")
            .arg("--conf-file=/dev/null")
            .arg("--pid-file")
            .arg("--no-resolv")
            .arg("--no-hosts")
            .arg(format!("--addn-hosts={}", file.display()))
            .arg(format!("--listen-address={at}"))
            .arg("--bind-interfaces")
            .arg("--port=53")
            .arg("--local=/lab/")
            .arg("--local-ttl=0");
        let name = format!("{}-dnsmasq", lab.tag);
        let mut server = Server::start_at(&name, command, lab.bench.log(&name), addr)
            .context("cannot start dnsmasq (is it installed? apt-get install dnsmasq-base)")?;
        let until = Instant::now() + lab.bench.args.startup_timeout;
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            if server.exited() {
                bail!("dnsmasq exited{}", server.log_tail());
            }
            if Instant::now() >= until {
                bail!("dnsmasq did not listen in time{}", server.log_tail());
            }
            // Polling its port, bounded by `until`.
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Dnsmasq { server, file, addr })
    }

    /// Makes `members` the name's records, now.
    fn set(&self, hosts: &HostLab, members: &[usize]) -> anyhow::Result<()> {
        write_records(&self.file, hosts, members)?;
        signal(&self.server, "HUP")
    }
}

/// Writes the hosts file whole, then renames it over the old one, so a reload never reads half.
fn write_records(file: &Path, hosts: &HostLab, members: &[usize]) -> anyhow::Result<()> {
    let staged = file.with_extension("new");
    let mut out = std::fs::File::create(&staged)
        .with_context(|| format!("cannot write {}", staged.display()))?;
    for &i in members {
        writeln!(out, "{} {DNS_NAME}", hosts.hosts()[i].addr)?;
    }
    drop(out);
    std::fs::rename(&staged, file).with_context(|| format!("cannot replace {}", file.display()))
}
