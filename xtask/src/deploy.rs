//! Checks the deployment files in `deploy/` with the tools of their own ecosystems: the
//! Kubernetes API schemas, hadolint, promtool and systemd-analyze. No image is built and no
//! cluster is started; each check reads files and takes about a second.
//!
//! What the node itself must accept (the ConfigMap's TOML, the pod's variables, the metric
//! names the rules and the dashboard query) is tested against the real binary in the server's
//! tests; this module only runs the external validators.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools::locate;

pub(crate) fn check(root: &Path) -> Result<(), String> {
    let deploy = root.join("deploy");
    kubernetes(&deploy.join("kubernetes"))?;
    run(tool("hadolint")?.arg(deploy.join("Dockerfile")))?;
    prometheus(&deploy.join("prometheus"))?;
    systemd(&deploy.join("geecache.service"))?;
    println!("xtask: deploy files checked");
    Ok(())
}

/// Every manifest against the API schemas, refusing fields the schemas do not know: those of
/// the oldest Kubernetes the files support (docs/deploy.md: 1.30, for the `preStop` sleep
/// action) and those of the newest the validator knows.
fn kubernetes(dir: &Path) -> Result<(), String> {
    let manifests = files_ending(dir, ".yaml")?;
    if manifests.is_empty() {
        return Err(format!("no manifest in {}", dir.display()));
    }
    for version in [&["-k", "1.30.0"][..], &[]] {
        run(tool("kubernetes-validate")?
            .args(["--strict", "--quiet"])
            .args(version)
            .args(&manifests))?;
    }
    Ok(())
}

fn prometheus(dir: &Path) -> Result<(), String> {
    let rules = dir.join("geecache-rules.yml");
    run(tool("promtool")?.args(["check", "rules"]).arg(&rules))?;
    // `promtool test rules` reads the rule files relative to the test file.
    run(tool("promtool")?
        .current_dir(dir)
        .args(["test", "rules", "geecache-rules.test.yml"]))?;

    let scratch = Scratch::new("prometheus")?;
    // Debian's promtool is built without Kubernetes service discovery, so the pod discovery
    // block is swapped for an empty target list; everything around it (authorization,
    // relabelling, the rule file) is still checked. The files it names are made beside it.
    let config = read(&dir.join("prometheus.yml"))?;
    let discovery = "kubernetes_sd_configs:\n      - role: pod\n";
    if config.matches(discovery).count() != 1 {
        return Err(format!(
            "prometheus.yml: expected one `{}` block",
            discovery.trim_end()
        ));
    }
    let config = config.replace(discovery, "static_configs:\n      - targets: []\n");
    write(&scratch.0.join("prometheus.yml"), &config)?;
    write(&scratch.0.join("geecache-rules.yml"), &read(&rules)?)?;
    fs::create_dir_all(scratch.0.join("secrets")).map_err(|e| e.to_string())?;
    write(&scratch.0.join("secrets/geecache-peer-token"), "token\n")?;
    run(tool("promtool")?
        .args(["check", "config"])
        .arg(scratch.0.join("prometheus.yml")))?;

    // The dashboard's queries, with Grafana's variables filled in, as recording rules: promtool
    // then parses each one as Prometheus will.
    let dashboard = read(&dir.join("grafana-dashboard.json"))?;
    let queries = dashboard_queries(&dashboard);
    if queries.is_empty() {
        return Err("grafana-dashboard.json: no query found".to_owned());
    }
    let mut recording = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, query) in queries.iter().enumerate() {
        let query = query
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*");
        // A YAML single-quoted scalar: only `'` needs escaping, by doubling it.
        let quoted = query.replace('\'', "''");
        recording.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: '{quoted}'\n"
        ));
    }
    let file = scratch.0.join("dashboard-queries.yml");
    write(&file, &recording)?;
    run(tool("promtool")?.args(["check", "rules"]).arg(&file))
}

/// The `"expr": "..."` strings of the dashboard, unescaped (they hold `\"` and `\\` only).
fn dashboard_queries(json: &str) -> Vec<String> {
    json.lines()
        .filter_map(|l| l.trim().strip_prefix("\"expr\": \""))
        .map(|rest| {
            let rest = rest.trim_end_matches(',').trim_end_matches('"');
            rest.replace("\\\"", "\"").replace("\\\\", "\\")
        })
        .collect()
}

/// The unit as systemd reads it, and how much of the system it can reach (`systemd-analyze
/// security`, 0 to 10, lower is tighter).
fn systemd(unit: &Path) -> Result<(), String> {
    let scratch = Scratch::new("systemd")?;
    // `verify` insists that ExecStart's program exists: point it at this very executable.
    let this = std::env::current_exe().map_err(|e| e.to_string())?;
    let text = read(unit)?;
    let binary = "/usr/local/bin/geecache ";
    if !text.contains(binary) {
        return Err(format!("{}: ExecStart is not {binary}...", unit.display()));
    }
    let copy = scratch.0.join("geecache.service");
    write(
        &copy,
        &text.replace(binary, &format!("{} ", this.display())),
    )?;
    // `verify` reports unknown keys and bad values on stderr but still exits 0.
    let out = tool("systemd-analyze")?
        .arg("verify")
        .arg(&copy)
        .output()
        .map_err(|e| format!("systemd-analyze verify: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || !said.trim().is_empty() {
        return Err(format!(
            "systemd-analyze verify {}:\n{said}",
            unit.display()
        ));
    }
    // The unit rates 1.1 ("OK") today; 2.0 leaves room for a new systemd's stricter checks
    // but not for a lost hardening line. Only the verdict is shown unless it fails.
    let mut security = tool("systemd-analyze")?;
    security
        .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
        .arg(&copy);
    let out = security
        .output()
        .map_err(|e| format!("systemd-analyze security: {e}"))?;
    let report = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "systemd-analyze security {} (threshold 2.0):\n{report}{}",
            unit.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    println!(
        "xtask: systemd-analyze security: {}",
        report.lines().last().unwrap_or("").trim()
    );
    Ok(())
}

fn tool(name: &str) -> Result<Command, String> {
    locate(name).map(Command::new).ok_or_else(|| {
        format!(
            "`{name}` is not installed; `cargo xtask ci` installs it (or see xtask/src/tools.rs)"
        )
    })
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command
            .get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("xtask: {shown}");
    let status = command
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

fn files_ending(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    Ok(files)
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("xtask-deploy-{what}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
