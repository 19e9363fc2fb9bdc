//! The TLS flags, the comparison table, and a TLS cluster started the way the runs start one.

use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use clap::Parser as _;

use super::{Material, Security, compare};
use crate::table::tests::{run, setup};
use crate::table::{Role, markdown};
use crate::{Args, Bench, Run, Transport, cache_figures};

#[test]
fn security_takes_a_list_like_transport_and_defaults_to_plain() {
    let args = Args::try_parse_from(["e2e", "--runs", "warm,handshake", "--security", "plain,tls"])
        .expect("parses");
    assert_eq!(args.tls.security, [Security::Plain, Security::Tls]);
    assert_eq!(args.runs, [Run::Warm, Run::Handshake]);
    assert_eq!(args.tls.handshake_connections, 8);
    assert_eq!(args.tls.handshake_max, 30_000);

    let defaults = Args::try_parse_from(["e2e"]).expect("parses");
    assert_eq!(defaults.tls.security, [Security::Plain]);
    assert!(
        !defaults.runs.contains(&Run::Handshake),
        "handshake runs only when asked"
    );

    for bad in [
        &["e2e", "--security", "ssl"][..],
        &["e2e", "--handshake-connections", "0"],
        &["e2e", "--handshake-max", "0"],
    ] {
        assert!(Args::try_parse_from(bad).is_err(), "{bad:?} parsed");
    }
}

#[test]
fn certificates_are_made_only_when_a_run_is_over_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let none = Material::for_runs(&dir.path().join("plain"), &[Security::Plain]).expect("ok");
    assert!(none.is_none());
    assert!(
        !dir.path().join("plain").exists(),
        "nothing written for plain runs"
    );
    let made = Material::for_runs(&dir.path().join("tls"), &[Security::Plain, Security::Tls])
        .expect("made")
        .expect("TLS asked for");
    assert!(made.pki.ca.is_file() && made.pki.cert.is_file() && made.pki.key.is_file());
}

#[test]
fn each_tls_run_is_compared_with_the_plain_run_of_its_round_and_transport() {
    let mut runs = Vec::new();
    for (round, tls_cpu) in [(1, 24.0), (2, 30.0), (3, 22.0)] {
        for (transport, factor) in [("http", 1.0), ("grpc", 2.0)] {
            for (security, cpu) in [(Security::Plain, 20.0), (Security::Tls, tls_cpu)] {
                let label = format!("warm, {transport} peers, {}", security.as_str());
                let mut m = run(&label, Role::Target, round, cpu * factor, true);
                m.compared_as(&format!("warm, {}", security.as_str()), transport);
                m.secured_as("warm", security);
                m.report.requests_per_s = 1000.0;
                m.report.p99_us = if security == Security::Tls {
                    2500.0
                } else {
                    900.0
                };
                runs.push(m);
            }
        }
        // The handshake run: no transport, reported without a verdict.
        for (label, security, cpu, resumed) in [
            ("handshake, plain", Security::Plain, 10.0, 0),
            ("handshake, tls, full handshakes", Security::Tls, 80.0, 0),
            ("handshake, tls, resumed sessions", Security::Tls, 60.0, 990),
        ] {
            let mut m = run(label, Role::Other, round, cpu, false);
            m.secured_as("handshake", security);
            m.report.requests_per_s = 100.0;
            if security == Security::Tls {
                m.report.tls_handshakes = 1000;
                m.report.tls_resumed = resumed;
            }
            runs.push(m);
        }
    }
    let mut out = String::new();
    compare(&mut out, &runs, true);
    assert!(
        out.contains("| warm, http peers, tls (round 2) | 1.50x | 1.00x | 900 µs | 2.50 ms |"),
        "{out}"
    );
    assert!(
        out.contains(
            "- warm, http peers, tls ÷ plain over 3 round(s): CPU per request median **1.20x** \
             (1.10 to 1.50x) (target ≤ 1.3x: met)"
        ),
        "{out}"
    );
    // gRPC's TLS run against gRPC's plain run, not HTTP's: the same ratios.
    assert!(
        out.contains(
            "- warm, grpc peers, tls ÷ plain over 3 round(s): CPU per request median **1.20x**"
        ),
        "{out}"
    );
    assert!(
        out.contains("| handshake, tls, resumed sessions (round 1) | 6.00x | 1.00x | 0 µs | 0 µs | 990 of 1000 |"),
        "{out}"
    );
    assert!(
        out.contains(
            "- handshake, tls, full handshakes ÷ plain over 3 round(s): CPU per request median \
             **8.00x** (8.00 to 8.00x); requests/s median 1.00x\n"
        ),
        "{out}"
    );
    // And the whole report carries the section.
    assert!(markdown(&setup(), &runs).contains("TLS beside plain HTTP"));
}

#[test]
fn without_tls_runs_there_is_no_tls_section() {
    let mut plain = run("warm", Role::Target, 1, 20.0, true);
    plain.secured_as("warm", Security::Plain);
    let mut out = String::new();
    compare(
        &mut out,
        &[plain, run("bare", Role::Floor, 1, 10.0, false)],
        false,
    );
    assert!(out.is_empty(), "{out}");
}

/// Set to `1` to make a missing `geecache` binary a test failure instead of a skip (`cargo
/// xtask ci` tests the whole workspace, which builds it for the server's integration tests).
const REQUIRE_VAR: &str = "GEECACHE_REQUIRE_GEECACHE_BINARY";

/// A bench of the built `geecache` beside this test's target directory, its logs and
/// certificates in `dir`; `None` (and a note) when it is not built.
fn bench(dir: &Path) -> Option<Bench> {
    let exe = std::env::current_exe().expect("test path");
    // target/<profile>/deps/<this test> -> target/<profile>
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let geecache = profile.join("geecache");
    if !geecache.is_file() {
        let why = format!(
            "{} is not built (cargo build -p geecache-server)",
            geecache.display()
        );
        assert!(
            !std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1"),
            "{REQUIRE_VAR}=1 but {why}"
        );
        static SAID: Once = Once::new();
        SAID.call_once(|| {
            eprintln!("note: skipping the TLS cluster test: {why} (set {REQUIRE_VAR}=1 to make this an error)");
        });
        return None;
    }
    let args = Args::try_parse_from(["e2e", "--security", "tls"]).expect("parses");
    let tls = Material::for_runs(&dir.join("tls"), &args.tls.security).expect("certificates");
    Some(Bench {
        geecache,
        // Not run here: the cluster is reached with the orchestrator's own probes.
        loadgen: profile.join("loadgen"),
        bare_axum: profile.join("bare-axum"),
        duration: Duration::from_secs(1),
        warmup: Duration::from_secs(1),
        hot_warmup: Duration::ZERO,
        log_dir: dir.to_path_buf(),
        ticks_per_s: 100,
        tls,
        args,
    })
}

#[test]
fn a_tls_cluster_of_the_harness_answers_over_https_and_its_nodes_fetch_from_each_other() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(bench) = bench(dir.path()) else {
        return;
    };
    for transport in [Transport::Http, Transport::Grpc] {
        let tag = format!("tls-{}", transport.as_str());
        let nodes = bench
            .cluster(
                &bench.geecache,
                2,
                &tag,
                "scores=demo",
                transport,
                Security::Tls,
            )
            .expect("a ready TLS cluster");
        let first = &nodes[0];
        assert!(
            first.url().starts_with("https://127.0.0.1:"),
            "{}",
            first.url()
        );
        let answer = first
            .get("/api/scores/player-000001", Duration::from_secs(10))
            .expect("answered over TLS");
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        // Forty keys through the first node: those the second node owns are fetched from it
        // over https.
        for i in 0..40 {
            let path = format!("/api/scores/player-{i:06}");
            let answer = first.get(&path, Duration::from_secs(10)).expect("answered");
            assert_eq!(
                answer.status,
                200,
                "{path}: {}",
                String::from_utf8_lossy(&answer.body)
            );
        }
        let figures = cache_figures(&[first])
            .expect("stats over TLS")
            .expect("one node");
        assert!(
            figures.peer_loads > 0,
            "{transport:?}: no key came from the peer: {figures:?}"
        );
        assert_eq!(figures.peer_errors, 0, "{transport:?}: {figures:?}");
    }
}
