//! What the command line says to a person: help that fits a terminal, values on lines of
//! their own.

use std::process::{Command, Stdio};

use crate::support::{Server, geecache, run};

// Regression: `serve --help` had lines of up to 285 columns.
#[test]
fn help_fits_100_columns() {
    for command in [
        &["--help"][..],
        &["serve", "--help"],
        &["demo", "--help"],
        &["get", "--help"],
    ] {
        // A wide terminal too: the help still stops at 100 columns.
        let out = run(geecache().args(command).env("COLUMNS", "300"));
        assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
        for line in out.stdout.lines() {
            assert!(
                line.chars().count() <= 100,
                "{command:?}: {} columns: {line}",
                line.chars().count()
            );
        }
    }
}

// Regression: a build without etcd listed the `--etcd` flags it cannot use.
#[test]
fn serve_help_offers_etcd_only_in_builds_with_etcd() {
    let out = run(geecache().args(["serve", "--help"]));
    let help = &out.stdout;
    assert!(help.contains("--peers-dns"), "{help}");
    for flag in ["--etcd ", "--cluster ", "--etcd-ttl "] {
        assert_eq!(
            help.contains(flag),
            cfg!(feature = "etcd"),
            "{flag}:\n{help}"
        );
    }
}

// Regression: `get` to a terminal left the value and the shell's prompt on one line.
// `script` (util-linux) runs the command on a pseudo-terminal. The output is read whole, not
// line by line as `support::run` does, so a missing or added newline shows; `get`'s own
// `--timeout` bounds both runs.
#[cfg(target_os = "linux")]
#[test]
fn get_ends_a_value_with_a_newline_on_a_terminal_only() {
    let node = Server::start(&["--group", "scores=demo"]);
    let url = node.url();
    let args = ["get", &url, "scores", "player-000042", "--timeout", "5s"];
    let piped = geecache().args(args).stdin(Stdio::null()).output().unwrap();
    assert!(piped.status.success(), "{piped:?}");
    assert!(
        piped.stdout.ends_with(b"}"),
        "a pipe gets the bytes exactly: {piped:?}"
    );

    let command = format!("{} {}", env!("CARGO_BIN_EXE_geecache"), args.join(" "));
    let tty = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("`script` (util-linux) runs");
    assert!(tty.status.success(), "{tty:?}");
    // The terminal turns "\n" into "\r\n".
    assert!(tty.stdout.ends_with(b"}\r\n"), "{tty:?}");
}
