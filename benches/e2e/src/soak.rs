//! The soak's bookkeeping: fault windows, growth trends, the loads each key may take, the CSV
//! and the chart.
//!
//! `e2e --soak` runs a cluster under load for a long time while it breaks and repairs it; what
//! it measured is turned into verdicts here, as plain functions of numbers, so that each rule
//! is tested without a cluster or a clock.
//!
//! Times are seconds since the soak started (`f64`), as the CSV and the chart show them.

use std::io::{self, Write};
use std::path::Path;
use std::sync::OnceLock;

/// A fault window: from the moment a fault is made until the cluster is ready again (or the
/// bound the harness gives each fault has passed). Client errors inside are expected; outside
/// there must be none.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// What the fault was, e.g. `kill node2`.
    pub fault: String,
    /// When it was made.
    pub start_s: f64,
    /// When the cluster was ready again.
    pub end_s: f64,
}

/// What the load generator counted over one stretch of time (a line of `loadgen --timeline`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tick {
    /// Start of the stretch.
    pub from_s: f64,
    /// End of the stretch.
    pub to_s: f64,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests not answered 2xx, failed on the connection, or connections not opened.
    pub errors: u64,
}

/// Reads `loadgen --timeline` lines (`FROM_MS TO_MS OK ERRORS`, Unix milliseconds) into ticks
/// timed from `origin_ms`. A line that does not parse (a write cut short when a run was
/// stopped) is skipped.
#[must_use]
pub fn parse_timeline(text: &str, origin_ms: u64) -> Vec<Tick> {
    #[allow(clippy::cast_precision_loss)]
    let secs = |ms: u64| ms.saturating_sub(origin_ms) as f64 / 1e3;
    text.lines()
        .filter_map(|line| {
            let v: Vec<u64> = line
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let [from, to, ok, errors] = v[..] else {
                return None;
            };
            Some(Tick {
                from_s: secs(from),
                to_s: secs(to),
                ok,
                errors,
            })
        })
        .collect()
}

/// Whether `tick` overlaps any of `windows`. A tick's errors cannot be placed more finely than
/// the tick, so a tick that touches a window counts as inside it.
#[must_use]
pub fn in_window(tick: &Tick, windows: &[Window]) -> bool {
    windows
        .iter()
        .any(|w| tick.from_s <= w.end_s && tick.to_s >= w.start_s)
}

/// Client errors inside and outside the fault windows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorSplit {
    /// Errors in ticks that overlap a window.
    pub inside: u64,
    /// Errors in ticks that overlap none.
    pub outside: u64,
    /// The end of each tick with errors outside every window, for the report.
    pub outside_at: Vec<f64>,
}

/// Splits the errors of `ticks` by whether their tick overlaps a fault window.
#[must_use]
pub fn split_errors(ticks: &[Tick], windows: &[Window]) -> ErrorSplit {
    let mut split = ErrorSplit::default();
    for tick in ticks.iter().filter(|t| t.errors > 0) {
        if in_window(tick, windows) {
            split.inside += tick.errors;
        } else {
            split.outside += tick.errors;
            split.outside_at.push(tick.to_s);
        }
    }
    split
}

/// Requests and errors per sampling interval: the ticks that end in `(times[i-1], times[i]]`
/// (from 0 for the first) summed for interval `i`. A tick belongs to the interval its end falls
/// in, so none is counted twice or lost between two.
#[must_use]
pub fn per_interval(ticks: &[Tick], times: &[f64]) -> Vec<(u64, u64)> {
    let mut out = vec![(0, 0); times.len()];
    for tick in ticks {
        let Some(i) = times.iter().position(|&t| tick.to_s <= t) else {
            continue;
        };
        out[i].0 += tick.ok;
        out[i].1 += tick.errors;
    }
    out
}

/// How much a series grew over its last half: the least-squares slope of the points in the
/// second half of its time span, times that half's length. `None` with fewer than three
/// points there, too few to call anything a trend.
///
/// A fitted slope rather than last minus first: one sample taken during a burst of allocation
/// (a refill after a restart, a slow scrape) moves an endpoint difference by its whole size,
/// and a least-squares line by a fraction of it.
#[must_use]
pub fn growth_over_last_half(points: &[(f64, f64)]) -> Option<f64> {
    let (first, last) = (points.first()?.0, points.last()?.0);
    let mid = f64::midpoint(first, last);
    let half: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0 >= mid).collect();
    if half.len() < 3 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let n = half.len() as f64;
    let mean_t = half.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_v = half.iter().map(|p| p.1).sum::<f64>() / n;
    let var = half.iter().map(|p| (p.0 - mean_t).powi(2)).sum::<f64>();
    if var <= 0.0 {
        return None;
    }
    let cov = half
        .iter()
        .map(|p| (p.0 - mean_t) * (p.1 - mean_v))
        .sum::<f64>();
    let span = half.last()?.0 - half.first()?.0;
    Some(cov / var * span)
}

/// How much a series grew over its last half *while no fault was being made*: the
/// least-squares slope fitted within each stretch between fault windows (each stretch its own
/// level), times the last half's length. Points inside a window, or less than `settle_s` after
/// one ends, belong to no stretch. `None` when the stretches hold fewer than three points or no
/// two at different times.
///
/// Why not [`growth_over_last_half`] on a process's memory: a fault takes memory for a moment
/// (the requests a stopped peer holds up, buffers, tasks waiting out the peer timeout), which
/// the allocator keeps for reuse when it is freed. The resident set steps up once to that mark
/// and stays, and a line fitted through the step calls it a trend. A leak, by contrast, grows
/// while the node serves, between faults too, which is what this slope measures; memory taken
/// anew at each fault adds up to more than the resident bound within a few faults, which the
/// bound on the resident set checks.
#[must_use]
pub fn growth_between_faults(
    points: &[(f64, f64)],
    windows: &[Window],
    settle_s: f64,
) -> Option<f64> {
    let (first, last) = (points.first()?.0, points.last()?.0);
    let mid = f64::midpoint(first, last);
    let half: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0 >= mid).collect();
    let quiet = |t: f64| {
        !windows
            .iter()
            .any(|w| t >= w.start_s && t < w.end_s + settle_s)
    };
    // Consecutive quiet points with no window between them make a stretch.
    let mut stretches: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut open = false;
    for p in half.iter().copied() {
        if !quiet(p.0) {
            open = false;
            continue;
        }
        let between = stretches
            .last()
            .and_then(|s| s.last())
            .is_some_and(|q| windows.iter().any(|w| w.start_s > q.0 && w.start_s <= p.0));
        match stretches.last_mut() {
            Some(s) if open && !between => s.push(p),
            _ => stretches.push(vec![p]),
        }
        open = true;
    }
    let fitted: Vec<&Vec<(f64, f64)>> = stretches.iter().filter(|s| s.len() >= 2).collect();
    if fitted.iter().map(|s| s.len()).sum::<usize>() < 3 {
        return None;
    }
    let (mut cov, mut var) = (0.0, 0.0);
    for s in fitted {
        #[allow(clippy::cast_precision_loss)]
        let n = s.len() as f64;
        let mean_t = s.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_v = s.iter().map(|p| p.1).sum::<f64>() / n;
        cov += s
            .iter()
            .map(|p| (p.0 - mean_t) * (p.1 - mean_v))
            .sum::<f64>();
        var += s.iter().map(|p| (p.0 - mean_t).powi(2)).sum::<f64>();
    }
    if var <= 0.0 {
        return None;
    }
    let span = half.last()?.0 - half.first()?.0;
    Some(cov / var * span)
}

/// A key the source loaded more often than the faults it was exposed to allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overload {
    /// The key.
    pub key: String,
    /// Times the source loaded it.
    pub loads: u64,
    /// Times it may have been: once, plus once per fault it was exposed to.
    pub allowed: u64,
}

/// The keys of `loads` (key, times loaded) loaded more than `1 + exposures(key)` times, sorted
/// by key.
pub fn overloaded<'a>(
    loads: impl IntoIterator<Item = (&'a str, u64)>,
    exposures: impl Fn(&str) -> u64,
) -> Vec<Overload> {
    let mut over: Vec<Overload> = loads
        .into_iter()
        .filter_map(|(key, loads)| {
            let allowed = 1 + exposures(key);
            (loads > allowed).then(|| Overload {
                key: key.to_owned(),
                loads,
                allowed,
            })
        })
        .collect();
    over.sort_by(|a, b| a.key.cmp(&b.key));
    over
}

/// One node at one sample. `None` where the node did not answer (stopped, restarting).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeSample {
    /// Its process id: a restart shows as a new one.
    pub pid: u32,
    /// Resident set size (`VmRSS`), in bytes.
    pub rss_bytes: Option<u64>,
    /// Open file descriptors.
    pub fds: Option<u64>,
    /// Members in its ring, itself included (`/stats` `peers`).
    pub members: Option<u64>,
    /// Peers whose circuit is not closed (`/stats` `health`).
    pub open_circuits: Option<u64>,
    /// Bytes its two caches hold.
    pub cached_bytes: Option<u64>,
    /// Times its circuits to its peers opened since it started, summed over the peers.
    pub circuit_openings: Option<u64>,
}

/// One sample of the whole soak.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// When it was taken.
    pub t_s: f64,
    /// Client requests answered 2xx since the sample before.
    pub requests: u64,
    /// Client errors since the sample before.
    pub errors: u64,
    /// Loads the source served since the soak started.
    pub source_loads: u64,
    /// The fault in force at the sample, empty when none.
    pub fault: String,
    /// Every node, in order.
    pub nodes: Vec<NodeSample>,
}

/// Circuit openings between samples whose interval overlaps no fault window: peers the nodes
/// skipped for being slow or unreachable when nothing was done to them, each a fault the
/// machine made (an overloaded host) rather than the soak. A restarted node (a new pid) starts
/// its count again, so its first sample adds nothing.
#[must_use]
pub fn openings_outside(samples: &[Sample], windows: &[Window]) -> u64 {
    let mut total = 0;
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let span = Tick {
            from_s: a.t_s,
            to_s: b.t_s,
            ok: 0,
            errors: 0,
        };
        if in_window(&span, windows) {
            continue;
        }
        for (x, y) in a.nodes.iter().zip(&b.nodes) {
            if let (true, Some(before), Some(after)) =
                (x.pid == y.pid, x.circuit_openings, y.circuit_openings)
            {
                total += after.saturating_sub(before);
            }
        }
    }
    total
}

/// For each of `peers`, the sampling intervals in which some node opened its circuit to that
/// peer when it was not the victim of a fault window the interval overlaps: the faults the
/// machine made (a peer found slow on a busy host, during another fault or outside any), each
/// of which exposes the peer's keys as a planned fault does (a stand-in loads them again).
/// `victims[w]` are the indices in `peers` of window `w`'s victims (none when the fault hit no
/// one peer, as an etcd restart). `openings[k][n]` is node `n`'s openings per peer URL at
/// sample `k`; a node restarted between two samples (a new pid) is not compared across its
/// restart.
#[must_use]
pub fn ejections(
    samples: &[Sample],
    openings: &[Vec<std::collections::HashMap<String, u64>>],
    windows: &[Window],
    victims: &[Vec<usize>],
    peers: &[String],
) -> Vec<u64> {
    let mut count = vec![0; peers.len()];
    for k in 1..samples.len().min(openings.len()) {
        let span = Tick {
            from_s: samples[k - 1].t_s,
            to_s: samples[k].t_s,
            ok: 0,
            errors: 0,
        };
        // The planned fault's own victim is counted once, by the fault.
        let hit: Vec<usize> = windows
            .iter()
            .zip(victims)
            .filter(|(w, _)| in_window(&span, std::slice::from_ref(w)))
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        for (v, peer) in peers.iter().enumerate() {
            if hit.contains(&v) {
                continue;
            }
            let opened = (0..samples[k].nodes.len()).any(|n| {
                let same = samples[k - 1].nodes.get(n).map(|x| x.pid)
                    == samples[k].nodes.get(n).map(|x| x.pid);
                let at = |i: usize| {
                    openings
                        .get(i)
                        .and_then(|o| o.get(n))
                        .and_then(|o| o.get(peer))
                        .copied()
                };
                same && matches!((at(k - 1), at(k)), (Some(a), Some(b)) if b > a)
            });
            count[v] += u64::from(opened);
        }
    }
    count
}

/// Writes `samples` as CSV: one row per sample, the nodes' columns side by side
/// (`node1_rss_bytes`, ...), an empty cell where a node did not answer.
///
/// # Errors
///
/// When `out` fails.
pub fn write_csv(samples: &[Sample], out: &mut impl Write) -> io::Result<()> {
    let nodes = samples.iter().map(|s| s.nodes.len()).max().unwrap_or(0);
    write!(out, "t_s,requests,requests_per_s,errors,source_loads,fault")?;
    for i in 1..=nodes {
        write!(
            out,
            ",node{i}_pid,node{i}_rss_bytes,node{i}_fds,node{i}_members,node{i}_open_circuits,node{i}_cached_bytes,node{i}_circuit_openings"
        )?;
    }
    writeln!(out)?;
    let mut before = 0.0;
    for s in samples {
        let interval = s.t_s - before;
        before = s.t_s;
        #[allow(clippy::cast_precision_loss)]
        let rate = if interval > 0.0 {
            s.requests as f64 / interval
        } else {
            0.0
        };
        // A fault's name is the harness's own words; quoted, with any quote doubled, as
        // RFC 4180 says, so a comma in it cannot shift the columns.
        let fault = s.fault.replace('"', "\"\"");
        write!(
            out,
            "{:.1},{},{rate:.1},{},{},\"{fault}\"",
            s.t_s, s.requests, s.errors, s.source_loads
        )?;
        for i in 0..nodes {
            let n = s.nodes.get(i).cloned().unwrap_or_default();
            let cell = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
            write!(
                out,
                ",{},{},{},{},{},{},{}",
                n.pid,
                cell(n.rss_bytes),
                cell(n.fds),
                cell(n.members),
                cell(n.open_circuits),
                cell(n.cached_bytes),
                cell(n.circuit_openings)
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Where a sans-serif TrueType font is looked for, for the chart's text (Debian's
/// `fonts-dejavu-core` first).
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers the first font of [`FONTS`] with plotters, once.
fn font() -> io::Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes = FONTS
                .iter()
                .find_map(|path| std::fs::read(path).ok())
                .ok_or_else(|| {
                    format!(
                        "no font for the chart's text in {} (apt-get install fonts-dejavu-core)",
                        FONTS.join(", ")
                    )
                })?;
            // plotters keeps registered fonts for the life of the program and wants them
            // `'static`; the program draws one chart and exits, so the font is leaked once
            // rather than embedded in the binary (DejaVu is 700 KB).
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
                .map_err(|_| "the font does not parse".to_owned())
        })
        .clone()
        .map_err(io::Error::other)
}

/// Draws the soak as a PNG at `path`: each node's resident memory over time with the bound
/// (`rss_bound_bytes`) and the fault windows shaded, and the client request rate below.
///
/// # Errors
///
/// When no font is found, drawing fails or the file cannot be written.
pub fn plot_png(
    samples: &[Sample],
    windows: &[Window],
    rss_bound_bytes: u64,
    path: &Path,
) -> io::Result<()> {
    use plotters::prelude::*;

    const W: u32 = 1000;
    const H: u32 = 640;
    const MIB: f64 = 1024.0 * 1024.0;
    font()?;
    let err = |e: &dyn std::fmt::Display| io::Error::other(format!("drawing the chart: {e}"));
    let mut pixels = vec![255u8; (W * H * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (top, bottom) = root.split_vertically(H * 3 / 5);
        let end = samples.last().map_or(1.0, |s| s.t_s).max(1.0);
        #[allow(clippy::cast_precision_loss)]
        let bound = rss_bound_bytes as f64 / MIB;
        #[allow(clippy::cast_precision_loss)]
        let top_mib = samples
            .iter()
            .flat_map(|s| s.nodes.iter().filter_map(|n| n.rss_bytes))
            .map(|b| b as f64 / MIB)
            .fold(bound, f64::max)
            * 1.1;
        let mut memory = ChartBuilder::on(&top)
            .caption("resident memory per node (MiB)", ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..end, 0.0..top_mib)
            .map_err(|e| err(&e))?;
        memory
            .configure_mesh()
            .x_desc("seconds")
            .draw()
            .map_err(|e| err(&e))?;
        for w in windows {
            memory
                .draw_series(std::iter::once(Rectangle::new(
                    [(w.start_s, 0.0), (w.end_s.min(end), top_mib)],
                    RGBColor(255, 220, 200).filled(),
                )))
                .map_err(|e| err(&e))?;
        }
        memory
            .draw_series(LineSeries::new([(0.0, bound), (end, bound)], BLACK))
            .map_err(|e| err(&e))?
            .label("bound")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK));
        let nodes = samples.iter().map(|s| s.nodes.len()).max().unwrap_or(0);
        for i in 0..nodes {
            let color = Palette99::pick(i).to_rgba();
            #[allow(clippy::cast_precision_loss)]
            let points = samples.iter().filter_map(|s| {
                let b = s.nodes.get(i)?.rss_bytes?;
                Some((s.t_s, b as f64 / MIB))
            });
            memory
                .draw_series(LineSeries::new(points, color))
                .map_err(|e| err(&e))?
                .label(format!("node{}", i + 1))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
        }
        memory
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(|e| err(&e))?;

        let mut before = 0.0;
        #[allow(clippy::cast_precision_loss)]
        let rates: Vec<(f64, f64)> = samples
            .iter()
            .map(|s| {
                let dt = s.t_s - before;
                before = s.t_s;
                (
                    s.t_s,
                    if dt > 0.0 {
                        s.requests as f64 / dt
                    } else {
                        0.0
                    },
                )
            })
            .collect();
        let top_rate = rates.iter().map(|r| r.1).fold(1.0, f64::max) * 1.1;
        let mut rate = ChartBuilder::on(&bottom)
            .caption("client requests per second", ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..end, 0.0..top_rate)
            .map_err(|e| err(&e))?;
        rate.configure_mesh()
            .x_desc("seconds")
            .draw()
            .map_err(|e| err(&e))?;
        for w in windows {
            rate.draw_series(std::iter::once(Rectangle::new(
                [(w.start_s, 0.0), (w.end_s.min(end), top_rate)],
                RGBColor(255, 220, 200).filled(),
            )))
            .map_err(|e| err(&e))?;
        }
        rate.draw_series(LineSeries::new(rates, BLUE))
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    let file = std::fs::File::create(path)?;
    let mut encoder = png::Encoder::new(io::BufWriter::new(file), W, H);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(io::Error::other)?;
    writer.write_image_data(&pixels).map_err(io::Error::other)?;
    writer.finish().map_err(io::Error::other)
}

#[cfg(test)]
mod tests;
