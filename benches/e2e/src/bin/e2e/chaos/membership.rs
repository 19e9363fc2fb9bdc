//! The scenarios in which the membership changes through etcd: a node joins, a node leaves,
//! every node restarts in turn.

use super::*;

impl Lab<'_> {
    pub(super) fn join(&self) -> anyhow::Result<Vec<Row>> {
        const S: &str = "scale-out 3 → 4 (etcd)";
        let (etcd, client) = self.etcd()?;
        let (mut nodes, _, mut urls) = self.etcd_nodes(3, &client)?;
        self.fill(&urls)?;
        let keys = self.all_keys();
        let before = owners(&urls, &keys);
        check_held(&nodes, &before)?;

        let port = free_ports(1)?[0];
        let url = format!("http://127.0.0.1:{port}");
        nodes.push(self.node(3, port, &url, &Members::Etcd(client.clone()))?);
        urls.push(url);
        wait_for_members(&nodes.iter().collect::<Vec<_>>(), 4)?;
        let after = owners(&urls, &keys);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();

        self.reset_loads()?;
        let timeout = self.bench.args.fill_timeout;
        let pass = Self::run_load(self.load(&urls, "sequential", timeout, None), timeout)?;
        let (reloads, _) = self.loads()?;
        let handoffs = sum_field(&nodes, "handoffs")?;
        stop_all(nodes);
        drop(etcd);
        #[allow(clippy::cast_precision_loss)]
        let share = reloads as f64 / moved.max(1) as f64;
        Ok(vec![
            Row::info(
                S,
                "keys that changed owner",
                format!("{moved} of {}", keys.len()),
            ),
            Row::check(
                S,
                "every key asked once more: source reloads ÷ keys moved",
                format!(
                    "{:.1}% ({reloads} reloads, {handoffs} taken from the previous owner, {} errors)",
                    share * 100.0,
                    pass.errors()
                ),
                "≤ 5%",
                share <= 0.05 && pass.errors() == 0,
            ),
        ])
    }

    pub(super) fn leave(&self) -> anyhow::Result<Vec<Row>> {
        const S: &str = "graceful leave (etcd)";
        let (etcd, client) = self.etcd()?;
        let (mut nodes, _, urls) = self.etcd_nodes(3, &client)?;
        self.fill(&urls)?;
        let keys = self.all_keys();
        let owner = owners(&urls, &keys);
        check_held(&nodes, &owner)?;
        let leaving_keys = keys_of(&keys, &owner, 2);
        let file = self.key_file("leaving", &leaving_keys)?;

        self.reset_loads()?;
        let mut leaving = nodes.pop().context("three nodes")?;
        let zipf_for = Duration::from_secs(8);
        let timeout = self.bench.args.fill_timeout;
        let (zipf, pass) = std::thread::scope(|s| {
            let zipf =
                s.spawn(|| Self::run_load(self.load(&urls[..2], "zipf", zipf_for, None), zipf_for));
            signal(&leaving, "TERM")?;
            // Its keys are asked as soon as the others have dropped it.
            wait_for_members(&nodes.iter().collect::<Vec<_>>(), 2)?;
            let pass = Self::run_load(
                self.load(&urls[..2], "sequential", timeout, Some(&file)),
                timeout,
            );
            let zipf = zipf
                .join()
                .map_err(|_| anyhow::anyhow!("a load thread panicked"))?;
            anyhow::Ok((zipf?, pass?))
        })?;
        let (reloads, _) = self.loads()?;
        let handoffs = sum_field(&nodes, "handoffs")?;
        let until = Instant::now() + Duration::from_secs(15);
        while !leaving.exited() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50)); // waiting for an exit, bounded
        }
        let exited = leaving.exited();
        drop(leaving);
        stop_all(nodes);
        drop(etcd);
        let errors = zipf.errors() + pass.errors();
        #[allow(clippy::cast_precision_loss)]
        let share = reloads as f64 / leaving_keys.len().max(1) as f64;
        Ok(vec![
            Row::check(
                S,
                "client errors (Zipf load and a pass over its keys)",
                errors.to_string(),
                "0",
                errors == 0,
            ),
            Row::check(
                S,
                "source reloads ÷ its keys",
                format!(
                    "{:.1}% ({reloads} of {}; {handoffs} taken from it)",
                    share * 100.0,
                    leaving_keys.len()
                ),
                "≤ 5%",
                share <= 0.05,
            ),
            Row::info(
                S,
                "it exited by itself after handing off",
                if exited { "yes" } else { "no (killed)" },
            ),
        ])
    }

    pub(super) fn rolling(&self) -> anyhow::Result<Vec<Row>> {
        const S: &str = "rolling restart (etcd)";
        let (etcd, client) = self.etcd()?;
        let (mut nodes, ports, urls) = self.etcd_nodes(3, &client)?;
        self.fill(&urls)?;
        self.reset_loads()?;
        let members = Members::Etcd(client.clone());
        let (report, took) = self.roll(&mut nodes, &urls, |i| {
            self.node(i, ports[i], &urls[i], &members)
        })?;
        let (reloads, _) = self.loads()?;
        let handoffs = sum_field(&nodes, "handoffs")?;
        stop_all(nodes);
        drop(etcd);
        Ok(self.rolling_rows(S, &took, &report, reloads, handoffs))
    }

    /// Zipf load on every node of `urls`, reconnecting as clients of a restarting server do,
    /// while each node is stopped (SIGTERM) and started again by `start(i)` in turn, each once
    /// every member list has it back. Returns the load's report and how long each restart took.
    pub(super) fn roll(
        &self,
        nodes: &mut [Server],
        urls: &[String],
        start: impl Fn(usize) -> anyhow::Result<Server> + Sync,
    ) -> anyhow::Result<(LoadReport, Vec<Duration>)> {
        // For longer than the three restarts take.
        let budget = Duration::from_secs(40);
        let mut command = self.load(urls, "zipf", budget, None);
        command.arg("--reconnect");
        let n = nodes.len();
        std::thread::scope(|s| {
            let load = s.spawn(move || Self::run_load(command, budget));
            let restarts = (|| {
                // Steady load first, so that the restarts happen to a busy cluster.
                std::thread::sleep(Duration::from_secs(2)); // lets the load start; not a sync point
                let mut took = Vec::new();
                for i in 0..n {
                    let started = Instant::now();
                    signal(&nodes[i], "TERM")?;
                    wait_exit(&mut nodes[i], Duration::from_secs(20))?;
                    nodes[i] = start(i)?;
                    wait_for_members(&nodes.iter().collect::<Vec<_>>(), n)?;
                    took.push(started.elapsed());
                }
                anyhow::Ok(took)
            })();
            let report = load
                .join()
                .map_err(|_| anyhow::anyhow!("a load thread panicked"));
            anyhow::Ok((report??, restarts?))
        })
    }

    /// The rows of a rolling restart.
    pub(super) fn rolling_rows(
        &self,
        s: &'static str,
        took: &[Duration],
        report: &LoadReport,
        reloads: u64,
        handoffs: u64,
    ) -> Vec<Row> {
        let took: Vec<String> = took
            .iter()
            .map(|t| format!("{:.1} s", t.as_secs_f64()))
            .collect();
        #[allow(clippy::cast_precision_loss)]
        let share = reloads as f64 / self.keys as f64;
        vec![
            Row::info(
                s,
                "each restart (SIGTERM to back in every member list)",
                took.join(", "),
            ),
            Row::check(
                s,
                "5xx answers",
                report.bad_status.to_string(),
                "0",
                report.bad_status == 0,
            ),
            Row::info(
                s,
                "requests, failed on the connection, connections closed and reopened",
                format!("{}, {}, {}", report.ok, report.failed, report.reconnects),
            ),
            Row::check(
                s,
                "source reloads ÷ keys",
                format!(
                    "{:.1}% ({reloads} of {}; {handoffs} taken from a previous owner since the last restart)",
                    share * 100.0,
                    self.keys
                ),
                "≤ 10%",
                share <= 0.10,
            ),
        ]
    }
}
