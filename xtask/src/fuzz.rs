//! `cargo xtask fuzz`: every libFuzzer target under `fuzz/`, for a fixed time each.
//!
//! libFuzzer needs a nightly toolchain and cargo-fuzz, which CI does not install: CI replays the
//! committed corpus on stable instead (`cargo test -p geecache-fuzz-targets`). This command is
//! for finding new inputs, and says what is missing rather than failing when the tools are not
//! there, unless `GEECACHE_REQUIRE_FUZZ` is set.

use std::env;
use std::path::Path;
use std::process::{Command, Stdio};

/// The targets: the `[[bin]]`s of `fuzz/Cargo.toml`, in their order. (A test in
/// `crates/fuzz-targets` holds that list to the crate's `TARGETS`, so a target added there and
/// forgotten here fails CI rather than going unfuzzed.)
fn targets(fuzz: &Path) -> Result<Vec<String>, String> {
    let manifest = fuzz.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("fuzz: reading {}: {e}", manifest.display()))?;
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(name) = line.strip_prefix("name = ").filter(|_| in_bin) {
            names.push(name.trim_matches('"').to_owned());
        }
    }
    if names.is_empty() {
        return Err(format!("fuzz: {} lists no [[bin]]", manifest.display()));
    }
    Ok(names)
}

/// Seconds per target when `--seconds` is not given: long enough for a few million runs of
/// the decoders, short enough to run before a commit.
const DEFAULT_SECONDS: u64 = 60;

pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let fuzz = root.join("fuzz");
    let all = targets(&fuzz)?;
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().ok_or("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--seconds: `{value}` is not a positive number"))?;
            }
            name if all.iter().any(|t| t == name) => targets.push(name.to_owned()),
            other => {
                return Err(format!(
                    "fuzz: unknown argument `{other}` (targets: {})",
                    all.join(", ")
                ));
            }
        }
    }
    if targets.is_empty() {
        targets = all;
    }
    if !has_cargo_fuzz() {
        let message = "fuzz: needs a nightly toolchain and cargo-fuzz \
            (`rustup toolchain install nightly` and `cargo install cargo-fuzz`); \
            the committed corpus is still replayed on stable by \
            `cargo test -p geecache-fuzz-targets`";
        if env::var_os("GEECACHE_REQUIRE_FUZZ").is_some() {
            return Err(message.to_owned());
        }
        println!("xtask: {message}");
        return Ok(());
    }
    for target in targets {
        // libFuzzer writes what it finds into the first directory: a scratch one, so that the
        // committed seeds (the second) change only when someone copies a finding there.
        let scratch = fuzz.join("target").join("corpus").join(&target);
        std::fs::create_dir_all(&scratch)
            .map_err(|e| format!("fuzz: creating {}: {e}", scratch.display()))?;
        let mut command = Command::new("cargo");
        command
            .args(["+nightly", "fuzz", "run", &target])
            .arg(&scratch)
            .arg(fuzz.join("corpus").join(&target))
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-print_final_stats=1",
            ])
            // `cargo fuzz` finds `fuzz/` from the workspace root.
            .current_dir(root)
            // The workspace's target dir holds stable builds; the instrumented ones go to
            // `fuzz/target`, where cargo-fuzz keeps them by default.
            .env_remove("CARGO_TARGET_DIR");
        crate::step(&format!("fuzz {target} for {seconds} s"), command)?;
    }
    Ok(())
}

fn has_cargo_fuzz() -> bool {
    Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
