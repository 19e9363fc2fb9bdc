//! The scenarios in which a peer fails: it hangs, dies (and comes back), or answers slowly.

use super::*;

impl Lab<'_> {
    pub(super) fn hung(&self) -> anyhow::Result<Vec<Row>> {
        const S: &str = "hung peer";
        let (mut nodes, _, urls) = self.static_nodes(3)?;
        self.fill(&urls)?;
        let keys = self.all_keys();
        let owner = owners(&urls, &keys);
        let mut rows = shares(S, &nodes, &owner)?;
        let victim_keys = keys_of(&keys, &owner, 2);
        let file = self.key_file("victim", &victim_keys)?;
        let survivors = &urls[..2];
        let warm = Duration::from_secs(2);
        Self::run_load(self.load(survivors, "zipf", warm, Some(&file)), warm)?;

        let hung_for = self.bench.args.fault_for;
        let opening = Duration::from_secs(2).min(hung_for / 2);
        signal(&nodes[2], "STOP")?;
        let first = Self::run_load(self.load(survivors, "zipf", opening, Some(&file)), opening);
        let rest = hung_for - opening;
        let after = Self::run_load(self.load(survivors, "zipf", rest, Some(&file)), rest);
        signal(&nodes[2], "CONT")?;
        let (first, after) = (first?, after?);
        let victim = nodes.pop().context("three nodes")?;
        stop_all(nodes);
        drop(victim);

        rows.push(Row::info(
            S,
            format!(
                "first {} s: requests for its keys, p99, waits ≥ 0.9 s",
                opening.as_secs()
            ),
            format!("{}, {}, {}", first.ok, ms(first.p99_us), first.slow),
        ));
        rows.push(Row::check(
            S,
            format!("next {} s: errors", rest.as_secs()),
            (first.errors() + after.errors()).to_string(),
            "0",
            first.errors() + after.errors() == 0,
        ));
        rows.push(Row::check(
            S,
            format!(
                "next {} s: p50 / p99 / max of requests for its keys",
                rest.as_secs()
            ),
            format!(
                "{} / {} / {} ({} requests)",
                ms(after.p50_us),
                ms(after.p99_us),
                ms(after.max_us),
                after.ok
            ),
            "p99 ≤ 50 ms",
            after.p99_us <= 50_000.0,
        ));
        let allowed = 2 * probes_within(rest);
        rows.push(Row::check(
            S,
            format!(
                "next {} s: requests that waited the peer timeout",
                rest.as_secs()
            ),
            after.slow.to_string(),
            format!("≤ one per backoff per node ({allowed})"),
            after.slow <= allowed,
        ));
        Ok(rows)
    }

    pub(super) fn dead(&self) -> anyhow::Result<Vec<Row>> {
        const S: &str = "dead peer";
        let (mut nodes, ports, urls) = self.static_nodes(3)?;
        self.fill(&urls)?;
        let keys = self.all_keys();
        let owner = owners(&urls, &keys);
        let victim_keys = keys_of(&keys, &owner, 2);
        let file = self.key_file("victim", &victim_keys)?;
        let mut rows = Vec::new();

        self.reset_loads()?;
        let victim = nodes.pop().context("three nodes")?;
        signal(&victim, "KILL")?;
        drop(victim);
        // Both survivors asked for every key of the dead node at the same time.
        let timeout = self.bench.args.fill_timeout;
        let passes = std::thread::scope(|s| {
            let a = s.spawn(|| {
                Self::run_load(
                    self.load(&urls[..1], "sequential", timeout, Some(&file)),
                    timeout,
                )
            });
            let b = s.spawn(|| {
                Self::run_load(
                    self.load(&urls[1..2], "sequential", timeout, Some(&file)),
                    timeout,
                )
            });
            (a.join(), b.join())
        });
        let (a, b) = match passes {
            (Ok(a), Ok(b)) => (a?, b?),
            _ => bail!("a load thread panicked"),
        };
        let (requests, loaded) = self.loads()?;
        let n = victim_keys.len() as f64;
        rows.push(Row::check(
            S,
            "client errors while both survivors ask for all its keys",
            (a.errors() + b.errors()).to_string(),
            "0",
            a.errors() + b.errors() == 0,
        ));
        #[allow(clippy::cast_precision_loss)]
        let per_key = requests as f64 / n;
        rows.push(Row::check(
            S,
            "source loads per key of its range",
            format!(
                "{per_key:.3} ({requests} loads, {loaded} of {} keys)",
                victim_keys.len()
            ),
            "1 (once in the cluster)",
            per_key <= 1.01,
        ));

        // Back on the same address, empty.
        self.reset_loads()?;
        let started = Instant::now();
        let back = self.node(2, ports[2], &urls[2], &Members::Static(urls.clone()))?;
        let ready = started.elapsed();
        let served = self.until_serving(&urls[..2], &back, &file)?;
        let (requests_during, _) = self.loads()?;
        self.reset_loads()?;
        let timeout = self.bench.args.fill_timeout;
        let pass = Self::run_load(
            self.load(&urls[..2], "sequential", timeout, Some(&file)),
            timeout,
        )?;
        let (reloads, _) = self.loads()?;
        nodes.push(back);
        stop_all(nodes);
        rows.push(Row::info(
            S,
            "restarted: ready, then first peer request served",
            format!(
                "{:.1} s, {:.1} s",
                ready.as_secs_f64(),
                served.as_secs_f64()
            ),
        ));
        #[allow(clippy::cast_precision_loss)]
        let share = reloads as f64 / n;
        rows.push(Row::info(
            S,
            "restarted: then every key of its range asked again: source loads per key",
            format!(
                "{share:.3} ({reloads} loads; {requests_during} more while its peers found it back; {} errors)",
                pass.errors()
            ),
        ));
        Ok(rows)
    }

    /// Light load on `file`'s keys through `via` until `node` has served a peer request;
    /// the time it took from now.
    fn until_serving(
        &self,
        via: &[String],
        node: &Server,
        file: &Path,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let slice = Duration::from_millis(250);
        loop {
            let stats = stats(node)?;
            if stats["groups"]["scores"]["server_requests"]
                .as_u64()
                .unwrap_or(0)
                > 0
            {
                return Ok(started.elapsed());
            }
            if started.elapsed() > CONVERGE {
                bail!("{} served no peer request within {CONVERGE:?}", node.name);
            }
            Self::run_load(self.load_on(via, "zipf", slice, Some(file), 2), slice)?;
        }
    }

    pub(super) fn slow(&self) -> anyhow::Result<Vec<Row>> {
        const S: &str = "slow peer (+300 ms)";
        let ports = free_ports(4)?;
        let proxy_url = format!("http://127.0.0.1:{}", ports[3]);
        let urls = vec![
            format!("http://127.0.0.1:{}", ports[0]),
            format!("http://127.0.0.1:{}", ports[1]),
            proxy_url.clone(),
        ];
        let proxy = Proxy::start(
            ([127, 0, 0, 1], ports[3]).into(),
            ([127, 0, 0, 1], ports[2]).into(),
        )?;
        let mut nodes = Vec::new();
        for i in 0..3 {
            nodes.push(self.node(i, ports[i], &urls[i], &Members::Static(urls.clone()))?);
        }
        let clients = &urls[..2];
        self.fill(clients)?;
        let warm = self.bench.warmup + Duration::from_secs(3);
        Self::run_load(self.load(clients, "zipf", warm, None), warm)?;
        let window = self.bench.duration;
        let base = Self::run_load(self.load(clients, "zipf", window, None), window)?;
        proxy.set_delay(SLOW_BY);
        let first = Duration::from_secs(1);
        let early = Self::run_load(self.load(clients, "zipf", first, None), first)?;
        let slowed = Self::run_load(self.load(clients, "zipf", window, None), window)?;
        stop_all(nodes);
        drop(proxy);
        let ratio = base.requests_per_s / slowed.requests_per_s.max(1e-9);
        Ok(vec![
            Row::info(
                S,
                "first second after the slowdown: requests/s, p99",
                format!("{:.0}, {}", early.requests_per_s, ms(early.p99_us)),
            ),
            Row::check(
                S,
                "then: throughput, baseline ÷ slowed",
                format!(
                    "{ratio:.2}x ({:.0} vs {:.0} requests/s; p99 {} vs {})",
                    base.requests_per_s,
                    slowed.requests_per_s,
                    ms(base.p99_us),
                    ms(slowed.p99_us)
                ),
                "≤ 2x",
                ratio <= 2.0,
            ),
            Row::check(
                S,
                "errors",
                (base.errors() + early.errors() + slowed.errors()).to_string(),
                "0",
                base.errors() + early.errors() + slowed.errors() == 0,
            ),
        ])
    }
}

/// The shares row: each node's keys after every key was loaded once.
fn shares(scenario: &'static str, nodes: &[Server], owner: &[usize]) -> anyhow::Result<Vec<Row>> {
    let held = check_held(nodes, owner)?;
    #[allow(clippy::cast_precision_loss)]
    let mean = held.iter().sum::<u64>() as f64 / held.len() as f64;
    #[allow(clippy::cast_precision_loss)]
    let max = held.iter().copied().max().unwrap_or(0) as f64;
    let ratio = max / mean.max(1.0);
    let list: Vec<String> = held.iter().map(u64::to_string).collect();
    Ok(vec![Row::check(
        scenario,
        "keys per node, default ring (max ÷ mean)",
        format!("{ratio:.3} ({})", list.join(" / ")),
        "≤ 1.10",
        ratio <= 1.10,
    )])
}

/// How many probes a node's breaker may send in `window` at the most: as if its circuit had
/// just opened when the window starts (the shortest backoffs), with the default backoff
/// (250 ms doubling to 10 s) shortened by the most jitter (a quarter), each probe failing
/// after the peer timeout.
fn probes_within(window: Duration) -> u64 {
    let (mut at, mut backoff, mut n) = (Duration::ZERO, Duration::from_millis(250), 0);
    loop {
        at += backoff * 3 / 4;
        if at > window {
            return n;
        }
        n += 1;
        at += PEER_TIMEOUT;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
