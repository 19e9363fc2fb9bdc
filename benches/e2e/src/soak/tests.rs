use super::*;

fn tick(from_s: f64, to_s: f64, ok: u64, errors: u64) -> Tick {
    Tick {
        from_s,
        to_s,
        ok,
        errors,
    }
}

fn window(start_s: f64, end_s: f64) -> Window {
    Window {
        fault: "kill node1".to_owned(),
        start_s,
        end_s,
    }
}

#[test]
fn timeline_lines_are_timed_from_the_origin_and_torn_lines_skipped() {
    let text = "1000500 1001500 900 0\n1001500 1002500 850 3\n1002500 1003";
    assert_eq!(
        parse_timeline(text, 1_000_000),
        vec![tick(0.5, 1.5, 900, 0), tick(1.5, 2.5, 850, 3)]
    );
}

#[test]
fn an_error_tick_touching_a_window_counts_inside_and_one_beside_it_outside() {
    let windows = [window(10.0, 20.0)];
    let ticks = [
        tick(8.0, 9.0, 100, 1),    // before: outside
        tick(9.5, 10.5, 100, 2),   // straddles the start: inside
        tick(15.0, 16.0, 100, 4),  // within
        tick(19.9, 20.9, 100, 8),  // straddles the end: inside
        tick(21.0, 22.0, 100, 16), // after: outside
        tick(30.0, 31.0, 100, 0),  // no errors: not listed
    ];
    let split = split_errors(&ticks, &windows);
    assert_eq!(split.inside, 2 + 4 + 8);
    assert_eq!(split.outside, 1 + 16);
    assert_eq!(split.outside_at, vec![9.0, 22.0]);
}

#[test]
fn without_windows_every_error_is_outside() {
    let split = split_errors(&[tick(0.0, 1.0, 5, 3)], &[]);
    assert_eq!((split.inside, split.outside), (0, 3));
}

#[test]
fn each_tick_goes_to_the_interval_its_end_falls_in() {
    let ticks = [
        tick(0.0, 1.0, 10, 0),
        tick(9.0, 10.0, 20, 1),  // ends on the first sample: first interval
        tick(10.0, 11.0, 40, 0), // second
        tick(19.5, 20.5, 80, 2), // after the last sample: dropped, not misplaced
    ];
    assert_eq!(per_interval(&ticks, &[10.0, 20.0]), vec![(30, 1), (40, 0)]);
}

#[test]
fn a_flat_noisy_series_has_no_growth_and_a_rising_one_has() {
    // Noise around 100 with no trend.
    let flat: Vec<(f64, f64)> = (0..20)
        .map(|i| {
            (
                f64::from(i) * 10.0,
                100.0 + if i % 2 == 0 { 1.0 } else { -1.0 },
            )
        })
        .collect();
    let growth = growth_over_last_half(&flat).expect("enough points");
    assert!(growth.abs() < 1.0, "{growth}");

    // Flat for the first half, then 2 per second: 90 s of the last half's 90 s span.
    let rising: Vec<(f64, f64)> = (0..20)
        .map(|i| {
            let t = f64::from(i) * 10.0;
            (
                t,
                if t < 100.0 {
                    100.0
                } else {
                    100.0 + 2.0 * (t - 100.0)
                },
            )
        })
        .collect();
    let growth = growth_over_last_half(&rising).expect("enough points");
    assert!((growth - 180.0).abs() < 1e-6, "{growth}");
}

#[test]
fn an_early_rise_is_not_a_trend_in_the_last_half() {
    // Warm-up growth that stopped halfway: only the last half is judged.
    let points: Vec<(f64, f64)> = (0..20)
        .map(|i| {
            let t = f64::from(i) * 10.0;
            (t, t.min(90.0))
        })
        .collect();
    assert_eq!(growth_over_last_half(&points), Some(0.0));
}

#[test]
fn too_few_points_are_no_trend() {
    assert_eq!(growth_over_last_half(&[]), None);
    assert_eq!(growth_over_last_half(&[(0.0, 1.0), (10.0, 5.0)]), None);
    assert_eq!(
        growth_over_last_half(&[(0.0, 1.0), (10.0, 5.0), (20.0, 9.0)]),
        None
    );
}

/// 20 points 10 s apart, `value(t)` each.
fn series(value: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    (0..20)
        .map(|i| {
            let t = f64::from(i) * 10.0;
            (t, value(t))
        })
        .collect()
}

#[test]
fn a_step_made_during_a_fault_and_kept_is_no_growth_between_faults() {
    // Flat at 100, up to 104 while a fault is made at 135-142 s (and the sample just after it,
    // still settling), then flat: a high-water mark.
    let points = series(|t| if t < 140.0 { 100.0 } else { 104.0 });
    let windows = [window(135.0, 142.0)];
    assert!(growth_over_last_half(&points).expect("enough points") > 3.0);
    let growth = growth_between_faults(&points, &windows, 10.0).expect("enough points");
    assert!(growth.abs() < 1e-9, "{growth}");
    // Without the window, the same step is growth within one stretch.
    assert!(growth_between_faults(&points, &[], 10.0).expect("enough points") > 3.0);
}

#[test]
fn growth_while_serving_is_seen_across_faults() {
    // 2 per second all along, with two faults in the last half: each stretch rises at the
    // same rate, so the fitted growth is the last half's 90 s at 2 per second.
    let points = series(|t| 100.0 + 2.0 * t);
    let windows = [window(115.0, 118.0), window(155.0, 158.0)];
    let growth = growth_between_faults(&points, &windows, 10.0).expect("enough points");
    assert!((growth - 180.0).abs() < 1e-6, "{growth}");
}

#[test]
fn a_window_between_two_samples_splits_the_stretch() {
    // A fault made and over between the samples at 120 and 130 s (none fell inside it), with
    // the step it left: the two sides are separate stretches, each flat.
    let points = series(|t| if t < 125.0 { 100.0 } else { 104.0 });
    let windows = [window(121.0, 124.0)];
    let growth = growth_between_faults(&points, &windows, 0.0).expect("enough points");
    assert!(growth.abs() < 1e-9, "{growth}");
}

#[test]
fn too_few_quiet_points_are_no_growth_between_faults() {
    let points = series(|t| t);
    // Every point of the last half inside a window.
    assert_eq!(
        growth_between_faults(&points, &[window(90.0, 200.0)], 0.0),
        None
    );
    // Quiet points, but no two in one stretch.
    let windows: Vec<Window> = (0..5)
        .map(|i| window(105.0 + 20.0 * f64::from(i), 115.0 + 20.0 * f64::from(i)))
        .collect();
    assert_eq!(growth_between_faults(&points, &windows, 0.0), None);
    assert_eq!(growth_between_faults(&[], &[], 0.0), None);
}

#[test]
fn a_key_may_be_loaded_once_plus_once_per_fault_it_saw() {
    let loads = [("a", 1), ("b", 2), ("c", 2), ("d", 4)];
    // b and d were exposed to one fault each, c to none.
    let exposures = |key: &str| u64::from(key == "b" || key == "d");
    assert_eq!(
        overloaded(loads, exposures),
        vec![
            Overload {
                key: "c".to_owned(),
                loads: 2,
                allowed: 1
            },
            Overload {
                key: "d".to_owned(),
                loads: 4,
                allowed: 2
            },
        ]
    );
}

fn samples() -> Vec<Sample> {
    let node = |pid, rss| NodeSample {
        pid,
        rss_bytes: rss,
        fds: rss.map(|_| 40),
        members: rss.map(|_| 3),
        open_circuits: rss.map(|_| 0),
        cached_bytes: rss.map(|_| 1000),
        circuit_openings: rss.map(|_| 2),
    };
    vec![
        Sample {
            t_s: 10.0,
            requests: 5000,
            errors: 0,
            source_loads: 100,
            fault: String::new(),
            nodes: vec![node(11, Some(20 << 20)), node(12, Some(21 << 20))],
        },
        Sample {
            t_s: 20.0,
            requests: 3000,
            errors: 7,
            source_loads: 150,
            fault: "stop node2, \"hung\"".to_owned(),
            nodes: vec![node(11, Some(22 << 20)), node(12, None)],
        },
    ]
}

#[test]
fn the_csv_has_a_column_per_node_figure_and_empty_cells_for_silence() {
    let mut out = Vec::new();
    write_csv(&samples(), &mut out).expect("writes to a vector");
    let text = String::from_utf8(out).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        "t_s,requests,requests_per_s,errors,source_loads,fault,\
         node1_pid,node1_rss_bytes,node1_fds,node1_members,node1_open_circuits,node1_cached_bytes,node1_circuit_openings,\
         node2_pid,node2_rss_bytes,node2_fds,node2_members,node2_open_circuits,node2_cached_bytes,node2_circuit_openings"
    );
    assert_eq!(
        lines[1],
        "10.0,5000,500.0,0,100,\"\",11,20971520,40,3,0,1000,2,12,22020096,40,3,0,1000,2"
    );
    // The quote in the fault is doubled, and the silent node's cells are empty.
    assert_eq!(
        lines[2],
        "20.0,3000,300.0,7,150,\"stop node2, \"\"hung\"\"\",11,23068672,40,3,0,1000,2,12,,,,,,"
    );
    let columns = |l: &str| l.split(',').count();
    assert_eq!(columns(lines[0]), columns(lines[1]));
}

#[test]
fn the_chart_is_a_png() {
    let dir = std::env::temp_dir().join(format!("geecache-soak-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("soak.png");
    let windows = [window(12.0, 18.0)];
    if let Err(e) = plot_png(&samples(), &windows, 40 << 20, &path) {
        // Only the missing font is excused, and only where nothing requires the chart.
        let no_font = e.to_string().contains("no font");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            no_font && std::env::var_os("GEECACHE_REQUIRE_FONT").is_none(),
            "{e}"
        );
        eprintln!("skipped: {e}");
        return;
    }
    let bytes = std::fs::read(&path).expect("written");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 1000, "{} bytes", bytes.len());
}

#[test]
fn circuit_openings_count_only_between_samples_clear_of_every_window_and_restart() {
    let at = |t_s: f64, nodes: Vec<(u32, u64)>| Sample {
        t_s,
        nodes: nodes
            .into_iter()
            .map(|(pid, openings)| NodeSample {
                pid,
                circuit_openings: Some(openings),
                ..NodeSample::default()
            })
            .collect(),
        ..Sample::default()
    };
    let samples = [
        at(10.0, vec![(1, 0), (2, 0)]),
        at(20.0, vec![(1, 1), (2, 0)]), // +1 outside
        at(30.0, vec![(1, 5), (2, 3)]), // inside the window at 25 s: not counted
        at(40.0, vec![(1, 6), (7, 1)]), // +1 for node 1; node 2 restarted: not counted
        at(50.0, vec![(1, 6), (7, 3)]), // +2 for the restarted node
    ];
    assert_eq!(openings_outside(&samples, &[window(25.0, 27.0)]), 1 + 1 + 2);
}

#[test]
fn a_peer_is_ejected_once_per_clear_interval_in_which_any_node_opened_its_circuit() {
    use std::collections::HashMap;
    let peers = ["a".to_owned(), "b".to_owned()];
    let sample = |t_s: f64, pids: [u32; 2]| Sample {
        t_s,
        nodes: pids
            .iter()
            .map(|&pid| NodeSample {
                pid,
                ..NodeSample::default()
            })
            .collect(),
        ..Sample::default()
    };
    let seen = |a: u64, b: u64| HashMap::from([("a".to_owned(), a), ("b".to_owned(), b)]);
    let samples = [
        sample(10.0, [1, 2]),
        sample(20.0, [1, 2]),
        sample(30.0, [1, 2]),
        sample(40.0, [1, 9]),
    ];
    let openings = [
        vec![seen(0, 0), seen(0, 0)],
        // Both nodes opened their circuit to a: one interval, one ejection.
        vec![seen(1, 0), seen(2, 0)],
        // Both opened, inside the window of a fault on b: b is the fault's, a is counted.
        vec![seen(2, 1), seen(2, 0)],
        // The second node restarted: its counts are not compared.
        vec![seen(2, 1), seen(5, 5)],
    ];
    assert_eq!(
        ejections(
            &samples,
            &openings,
            &[window(25.0, 26.0)],
            &[vec![1]],
            &peers
        ),
        vec![2, 0]
    );
}
