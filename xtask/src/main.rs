//! Project automation, run as `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! Plain cargo can say most of what this project needs; this binary holds the few things it
//! cannot say in one line: the full CI pipeline with its system tools, the layering rules, and
//! the checks that keep `docs/` pointing at files that exist. It depends on nothing but `std`,
//! so it builds in seconds on a fresh machine.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod deploy;
mod docs;
mod fuzz;
mod layering;
mod tools;

const USAGE: &str = "\
usage: cargo xtask <command> [args...]

commands:
  ci            install missing system tools, then fmt, clippy, deploy files, tests, the short
                host chaos scenarios, a 2-minute soak, doc tests, docs, layering, and a dry
                run of publishing every crate
  bench [ARGS]  run the criterion benchmarks (ARGS go to `cargo bench`, e.g. a filter)
  demo [ARGS]   run the local cluster demo (ARGS go to `geecache demo`)
  chaos [ARGS]  build release binaries (etcd included), then run every chaos scenario of
                the e2e harness (ARGS go to `e2e`, e.g. `--rounds 3` or `--chaos hung,slow`);
                `cut`, `separate`, `one-way`, `etcd-cut`, `host-rolling` and `dns` run on
                network-namespace hosts and need root; `--hosts` runs only those six
  soak [--minutes N] [ARGS]
                build release binaries (etcd included), then run the e2e soak for N minutes
                (default 10): three nodes under Zipf load with faults in turn; writes
                soak.csv, soak.png and soak.md to <target>/soak (ARGS go to `e2e`)
  docs          build the API docs with warnings denied, check the book's file references and
                links, and build the book when mdBook is installed
  deploy        check the files in deploy/: Kubernetes schemas, hadolint, promtool, systemd-analyze
  fuzz [--seconds N] [TARGET...]
                run the libFuzzer targets under fuzz/ (default: all, 60 s each); needs a
                nightly toolchain and cargo-fuzz, and says so when they are missing
";

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let result = match command.as_deref() {
        Some("ci") => ci(),
        Some("bench") => bench(&rest),
        Some("demo") => demo(&rest),
        Some("chaos") => chaos(&rest),
        Some("soak") => soak(&rest),
        Some("docs") => docs_all(),
        Some("fuzz") => fuzz::run(&workspace_root(), &rest),
        Some("deploy") => step_fn("deploy files", || deploy::check(&workspace_root())),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The one test command: everything CI checks, in order, failing fast.
fn ci() -> Result<(), String> {
    let root = workspace_root();
    tools::ensure_present(&root)?;

    step("format", cargo(&["fmt", "--all", "--", "--check"]))?;
    step(
        "clippy",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // Seconds, and independent of the build: before the tests, so a broken file fails fast.
    step_fn("deploy files", || deploy::check(&root))?;
    let mut tests = if has_nextest() {
        cargo(&["nextest", "run", "--workspace", "--all-features"])
    } else {
        cargo(&["test", "--workspace", "--all-features", "--all-targets"])
    };
    // The tools were just ensured, so a test that would skip for want of one must fail instead.
    tests
        .env("GEECACHE_REQUIRE_ETCD", "1")
        .env("GEECACHE_REQUIRE_GO", "1")
        .env("GEECACHE_REQUIRE_DNSMASQ", "1")
        .env("GEECACHE_REQUIRE_PROMTOOL", "1")
        // Built for the server's integration tests; the e2e harness's TLS cluster test runs it.
        .env("GEECACHE_REQUIRE_GEECACHE_BINARY", "1")
        .env("GEECACHE_REQUIRE_FONT", "1");
    // Network namespaces need root, not a package: required where CI runs, as root.
    let root_user = tools::is_root();
    if root_user {
        tests.env("GEECACHE_REQUIRE_NETNS", "1");
    }
    step("tests", tests)?;
    host_chaos(root_user)?;
    ci_soak()?;
    step(
        "doc tests",
        cargo(&["test", "--workspace", "--all-features", "--doc"]),
    )?;
    docs_all()?;
    step_fn("layering", || layering::check(&root))?;
    // Every publishable crate packs and builds from its package alone, in dependency order
    // (cargo stands in a local registry for the workspace crates not yet on crates.io). This
    // catches a file outside the crate that the build needs, a path dependency without a
    // version, a missing README. It reads the crates.io index, so it needs the network or a
    // warm index cache.
    //
    // In a target dir of its own, new for each run: cargo builds the packed crates as if they
    // came from a registry, under the same name and version (0.1.0) whatever their contents,
    // so a target dir that built an earlier state of a workspace crate this way reuses that
    // build. Emptying a fixed dir is not enough: cargo also unpacks each packed crate under
    // `$CARGO_HOME/registry/src/`, in a directory named after the stand-in registry's path,
    // and reuses what it finds there, so a rerun on the same machine compiled a dependent
    // crate against the earlier contents of a crate and failed on a method added since. A
    // path of its own per run gives each run unpacked sources of its own (a few hundred KiB
    // left in `$CARGO_HOME` per run).
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let publish_target =
        target_dir().join(format!("publish-dry-run-{stamp}-{}", std::process::id()));
    let mut package = cargo(&["publish", "--dry-run", "--workspace", "--allow-dirty"]);
    package.env("CARGO_TARGET_DIR", &publish_target);
    let packed = step("package", package);
    // Its builds are of no use to a later run; the sources it unpacked stay in `$CARGO_HOME`.
    let _ = std::fs::remove_dir_all(&publish_target);
    packed?;
    println!("xtask: ci passed");
    Ok(())
}

fn bench(args: &[String]) -> Result<(), String> {
    // `--bench '*'` selects bench targets only: `--benches` would also run each library's
    // libtest harness, which rejects criterion's flags.
    let mut command = cargo(&["bench", "--workspace", "--bench", "*"]);
    if !args.is_empty() {
        command.arg("--").args(args);
    }
    step("bench", command)
}

fn demo(args: &[String]) -> Result<(), String> {
    let mut command = cargo(&["run", "--release", "-p", "geecache-server", "--", "demo"]);
    command.args(args);
    step("demo", command)
}

fn chaos(args: &[String]) -> Result<(), String> {
    step("chaos build", release_build())?;
    let mut run = Command::new(target_dir().join("release/e2e"));
    // `--hosts`: only the scenarios on network-namespace hosts (as root).
    let hosts = args.iter().any(|a| a == "--hosts");
    let rest: Vec<&String> = args.iter().filter(|a| *a != "--hosts").collect();
    if !rest.iter().any(|a| *a == "--chaos") {
        let scenarios = if hosts {
            HOST_SCENARIOS
        } else {
            "hung,dead,join,leave,rolling,slow,cut,separate,one-way,etcd-cut,host-rolling,dns"
        };
        run.arg("--chaos").arg(scenarios);
    }
    run.args(rest);
    step("chaos", run)
}

/// The chaos scenarios on network-namespace hosts.
const HOST_SCENARIOS: &str = "cut,separate,one-way,etcd-cut,host-rolling,dns";

/// The chaos scenarios across hosts with their own addresses, short: three nodes in network
/// namespaces, one host cut off, two hosts separated, one host's packets to another dropped,
/// etcd cut off, a rolling restart, DNS membership. A debug build is enough for what is checked
/// here, that clients see no error, every node keeps or regains every member, and no value moves
/// for a change of members that did not happen; the figures of a release build are
/// `cargo xtask chaos`'s.
fn host_chaos(require: bool) -> Result<(), String> {
    // One build for these scenarios and the soak after them.
    step("host chaos build", debug_build())?;
    let debug = target_dir().join("debug");
    let mut run = Command::new(debug.join("e2e"));
    run.arg("--geecache").arg(debug.join("geecache"));
    run.args([
        "--chaos",
        HOST_SCENARIOS,
        "--keys",
        "3000",
        "--connections",
        "8",
    ]);
    run.args(["--server-threads", "2", "--fault-for", "5s"]);
    println!("xtask: == host chaos: {}", display(&run));
    let out = run
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("host chaos: cannot start e2e: {e}"))?;
    let table = String::from_utf8_lossy(&out.stdout);
    print!("{table}");
    if !out.status.success() {
        return Err(format!("host chaos failed ({})", out.status));
    }
    // Other figures (loads per key, waits) depend on how busy the machine is; errors, the
    // member lists and values moved when no member changed do not. As root the scenarios must
    // run; otherwise they say once that they were skipped.
    let failed: Vec<&str> = table
        .lines()
        .filter(|l| {
            let settled = ["client errors", " list", "change of members"];
            (l.contains("**missed**") && settled.iter().any(|s| l.contains(s)))
                || (require && l.contains("| skipped |"))
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "host chaos: clients saw errors, a node lost members or moved values for no change \
             of members, or a scenario was skipped:\n{}",
            failed.join("\n")
        ))
    }
}

fn soak(args: &[String]) -> Result<(), String> {
    let mut minutes = 10u64;
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--minutes" {
            minutes = args
                .next()
                .and_then(|m| m.parse().ok())
                .filter(|&m| m > 0)
                .ok_or("--minutes takes a whole number of minutes, at least 1")?;
        } else {
            rest.push(arg.clone());
        }
    }
    step("soak build", release_build())?;
    let out = target_dir().join("soak");
    let mut run = Command::new(target_dir().join("release/e2e"));
    run.arg("--soak")
        .arg(format!("{}s", minutes * 60))
        .arg("--soak-out")
        .arg(&out)
        .args(rest);
    step("soak", run)?;
    soak_written(&out)
}

/// A two-minute soak of a debug build, lighter than `cargo xtask soak` (16 load connections,
/// 20 000 keys) so that two cores running three debug nodes, the origin and the load are not
/// so overloaded that slow answers trip the nodes' slow-peer rule, which is a fault of its
/// own. The bound on memory keeps the 1.25 × budget term and takes 45 MiB for the fixed part,
/// not 30: a debug `geecache serve` is resident at about 24 MiB idle, a release one at 8.
/// The figures to quote are those of the release soak in docs/performance.md.
fn ci_soak() -> Result<(), String> {
    step("soak build", debug_build())?;
    let debug = target_dir().join("debug");
    let out = target_dir().join("soak-ci");
    let mut run = Command::new(debug.join("e2e"));
    run.arg("--geecache").arg(debug.join("geecache"));
    run.args(["--soak", "2m", "--keys", "20000", "--connections", "16"]);
    run.args(["--server-threads", "2", "--fault-for", "8s"]);
    run.args(["--soak-overhead", "45"]);
    run.arg("--soak-out").arg(&out);
    step("soak (2 minutes, debug)", run)?;
    soak_written(&out)
}

/// The release `geecache` (with etcd) and the e2e harness, for `cargo xtask chaos` and `soak`.
fn release_build() -> Command {
    cargo(&[
        "build",
        "--release",
        "-p",
        "geecache-server",
        "--features",
        "etcd",
        "-p",
        "geecache-bench-e2e",
    ])
}

/// The debug `geecache` (with etcd) and the e2e harness, for the host chaos scenarios and the
/// soak of `cargo xtask ci`.
fn debug_build() -> Command {
    // All features, as the tests built them (etcd membership among them), so that this build
    // reuses theirs.
    cargo(&[
        "build",
        "-p",
        "geecache-server",
        "-p",
        "geecache-bench-e2e",
        "--all-features",
    ])
}

/// Fails unless the soak left its CSV (a header and rows) and a PNG in `out`.
fn soak_written(out: &Path) -> Result<(), String> {
    let csv = std::fs::read_to_string(out.join("soak.csv"))
        .map_err(|e| format!("soak: no soak.csv in {}: {e}", out.display()))?;
    if csv.lines().count() < 2 || !csv.starts_with("t_s,") {
        return Err(format!(
            "soak: {} holds no samples",
            out.join("soak.csv").display()
        ));
    }
    let png = std::fs::read(out.join("soak.png"))
        .map_err(|e| format!("soak: no soak.png in {}: {e}", out.display()))?;
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(format!(
            "soak: {} is not a PNG",
            out.join("soak.png").display()
        ));
    }
    println!("xtask: soak wrote {}", out.display());
    Ok(())
}

fn docs_all() -> Result<(), String> {
    // The server's code is its library's, whose public docs show one function: its internals
    // (every module's docs, and their links) are checked in a run of their own, with private
    // items. The workspace's run after it leaves the public pages in place for readers. (The
    // server's binary is not documented: named `geecache`, it would share `doc/geecache/` with
    // the facade library, and two rustdoc processes would race to clear it.)
    let runs: [&[&str]; 2] = [
        &[
            "doc",
            "--no-deps",
            "--all-features",
            "-p",
            "geecache-server",
            "--document-private-items",
        ],
        &["doc", "--workspace", "--no-deps", "--all-features"],
    ];
    for args in runs {
        let mut rustdoc = cargo(args);
        rustdoc.env("RUSTDOCFLAGS", "-D warnings");
        step("rustdoc", rustdoc)?;
    }
    let root = workspace_root();
    step_fn("book references and links", || docs::check(&root))?;
    book()
}

/// Builds the book with mdBook when it is installed (it is not a Debian package, so CI does not
/// install it: `cargo install mdbook` does). The links were checked above either way.
fn book() -> Result<(), String> {
    let mdbook = Command::new("mdbook")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if !mdbook.is_ok_and(|s| s.success()) {
        println!(
            "xtask: mdbook is not installed; the book's HTML was not built (cargo install mdbook)"
        );
        return Ok(());
    }
    let mut build = Command::new("mdbook");
    build
        .args(["build", "docs/src"])
        .current_dir(workspace_root());
    step("book", build)
}

/// Runs `command`, echoing it first, and turns a non-zero exit into an error naming the step.
fn step(name: &str, mut command: Command) -> Result<(), String> {
    println!("xtask: == {name}: {}", display(&command));
    let status = command
        .status()
        .map_err(|e| format!("{name}: cannot start `{}`: {e}", display(&command)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status})"))
    }
}

fn step_fn(name: &str, check: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    println!("xtask: == {name}");
    check().map_err(|e| format!("{name} failed:\n{e}"))
}

fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.args(args).current_dir(workspace_root());
    command
}

fn has_nextest() -> bool {
    cargo(&["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn display(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Where cargo puts what it builds: `CARGO_TARGET_DIR` (relative to the workspace root, where
/// [`cargo`] runs), or `target/`.
fn target_dir() -> PathBuf {
    let root = workspace_root();
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir))
}

fn workspace_root() -> PathBuf {
    // xtask lives in `<root>/xtask`, so its manifest dir's parent is the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits one level below the workspace root")
        .to_path_buf()
}
