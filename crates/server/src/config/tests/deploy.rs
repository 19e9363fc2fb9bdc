//! The Kubernetes manifests in `deploy/kubernetes/` start `geecache serve` with a config file
//! from their ConfigMap and settings from the pod's environment. These tests run that exact
//! configuration through the node's own parser, so a manifest cannot ship a setting the node
//! would refuse at start (exit status 2, a pod in CrashLoopBackOff).
//!
//! The manifests are read as text, by the few shapes they are written in (a `|` block for the
//! TOML, `- name:` / `value:` pairs for the environment), rather than with a YAML library: the
//! schema check (`cargo xtask deploy`, with `kubernetes-validate`) already proves they are valid
//! YAML and valid Kubernetes; what is left to prove here is that the node accepts them. Each
//! helper fails loudly when it finds nothing, so a change of layout cannot make a test vacuous.

use std::collections::BTreeMap;
use std::path::Path;

use clap::{CommandFactory, Parser};

use super::super::{Config, from_toml};
use crate::cli::{Cli, Command};

/// What the pod's downward API would put in the variables the manifests refer to.
const POD: &[(&str, &str)] = &[
    ("$(POD_NAME)", "geecache-0"),
    ("$(POD_NAMESPACE)", "default"),
    ("$(POD_IP)", "10.1.2.3"),
];

/// The value a `secretKeyRef` stands for in these tests.
const SECRET: &str = "a-token-from-the-secret";

/// One manifest file, split into its YAML documents.
struct Manifest {
    name: String,
    documents: Vec<String>,
}

impl Manifest {
    fn read(file: &str) -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/kubernetes")
            .join(file);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Manifest {
            name: file.to_owned(),
            documents: text.split("\n---\n").map(str::to_owned).collect(),
        }
    }

    /// The one document of this kind.
    fn kind(&self, kind: &str) -> &str {
        let line = format!("\nkind: {kind}\n");
        let found: Vec<&String> = self
            .documents
            .iter()
            .filter(|d| format!("\n{d}").contains(&line))
            .collect();
        assert_eq!(found.len(), 1, "{}: one {kind} expected", self.name);
        found[0]
    }

    /// The workload: the StatefulSet or the Deployment.
    fn workload(&self) -> &str {
        let kinds = ["StatefulSet", "Deployment"];
        let kind = kinds
            .iter()
            .find(|k| {
                self.documents
                    .iter()
                    .any(|d| d.contains(&format!("kind: {k}\n")))
            })
            .unwrap_or_else(|| panic!("{}: no StatefulSet or Deployment", self.name));
        self.kind(kind)
    }
}

/// The lines of the `|` block scalar under `key:`, without their indentation.
fn block(document: &str, key: &str) -> String {
    let mut lines = document.lines();
    let header = lines
        .by_ref()
        .find(|l| l.trim() == format!("{key}: |"))
        .unwrap_or_else(|| panic!("no `{key}: |` block"));
    let indent = header.len() - header.trim_start().len() + 2;
    let body: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect();
    assert!(!body.is_empty(), "the `{key}` block is empty");
    body.join("\n")
}

/// The container's `GEECACHE_*` variables, with the downward API's references filled in and
/// each `secretKeyRef` read as [`SECRET`].
fn geecache_env(workload: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = workload
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let mut env = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.strip_prefix("- name: GEECACHE_") else {
            continue;
        };
        let value = match lines.get(i + 1) {
            Some(next) if next.starts_with("value: ") => {
                let quoted = next["value: ".len()..].trim();
                let mut value = quoted.trim_matches('"').to_owned();
                for (reference, stands_for) in POD {
                    value = value.replace(reference, stands_for);
                }
                assert!(!value.contains("$("), "an unknown reference in {value}");
                value
            }
            Some(next) if next.starts_with("valueFrom:") => {
                assert_eq!(lines.get(i + 2), Some(&"secretKeyRef:"));
                SECRET.to_owned()
            }
            other => panic!("GEECACHE_{name}: no value in {other:?}"),
        };
        env.insert(format!("GEECACHE_{name}"), value);
    }
    assert!(!env.is_empty(), "no GEECACHE_* variable");
    env
}

/// The container's `args: [...]` list.
fn container_args(workload: &str) -> Vec<String> {
    let line = workload
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("args: "))
        .expect("the container has args");
    serde_json::from_str(line).expect("args is a flow list of quoted strings")
}

/// Every `memory:` quantity of the workload, in bytes (`Mi` and `Gi` only).
fn memory_quantities(workload: &str) -> Vec<u64> {
    let quantities: Vec<u64> = workload
        .lines()
        .filter_map(|l| l.trim().strip_prefix("memory: "))
        .map(|q| {
            let (n, unit) = q.split_at(q.len() - 2);
            let n: u64 = n.parse().expect("a whole number");
            match unit {
                "Mi" => n << 20,
                "Gi" => n << 30,
                other => panic!("unexpected unit {other}"),
            }
        })
        .collect();
    assert!(!quantities.is_empty(), "no memory request or limit");
    quantities
}

/// Loads the configuration a pod of `file` starts with: the ConfigMap's file under the
/// container's arguments and environment, as `geecache serve` itself would.
fn pod_config(file: &str) -> (Manifest, Config) {
    let manifest = Manifest::read(file);
    let toml = block(manifest.kind("ConfigMap"), "geecache.toml");
    let workload = manifest.workload();

    // The config file is the ConfigMap's key, where the volume mounts it.
    let args = container_args(workload);
    assert_eq!(args[..2], ["serve", "--config"], "{file}: {args:?}");
    let (dir, key) = args[2].rsplit_once('/').expect("an absolute path");
    assert_eq!(key, "geecache.toml", "{file}: the ConfigMap's key");
    assert!(
        workload.contains(&format!("mountPath: {dir}\n")),
        "{file}: the ConfigMap is mounted at {dir}"
    );

    // Each variable becomes the flag clap ties it to, so the parse is the binary's own.
    let serve = Cli::command();
    let serve = serve.find_subcommand("serve").expect("a serve command");
    let mut command_line = vec!["geecache".to_owned(), "serve".to_owned()];
    command_line.extend(args[3..].iter().cloned());
    for (name, value) in geecache_env(workload) {
        let arg = serve
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == name.as_str()))
            .unwrap_or_else(|| panic!("{file}: `geecache serve` reads no variable {name}"));
        let long = arg.get_long().expect("every variable has a long flag");
        command_line.extend([format!("--{long}"), value]);
    }
    let cli = Cli::try_parse_from(&command_line)
        .unwrap_or_else(|e| panic!("{file}: {command_line:?}: {e}"));
    let Command::Serve(serve_args) = cli.command else {
        unreachable!("parsed as serve")
    };
    let config = from_toml(&toml, &serve_args)
        .unwrap_or_else(|e| panic!("{file}: the node refuses its configuration: {e}"));
    (manifest, config)
}

/// The pod's memory is 1.5 times its caches' budget, as docs/deploy.md sizes it, and the
/// budget counts memory: under the default payload count the same rule would leave a node of
/// small values over its limit.
fn assert_sized_from_the_budget(manifest: &Manifest, config: &Config) {
    let budget: u64 = config.groups.iter().map(|g| g.cache_bytes).sum();
    assert!(budget > 0, "{}: every group is bounded", manifest.name);
    for group in &config.groups {
        assert_eq!(
            group.charge,
            geecache_group::Charge::Memory,
            "{}: group {} charges each entry's memory",
            manifest.name,
            group.name
        );
    }
    for memory in memory_quantities(manifest.workload()) {
        assert_eq!(
            memory,
            budget * 3 / 2,
            "{}: memory request and limit are 1.5 x the cache budget",
            manifest.name
        );
    }
}

/// Readiness and liveness go through the token guard when the token is set, so the probes
/// must carry it.
fn assert_probes_carry_the_token(manifest: &Manifest, config: &Config) {
    assert!(
        config.peer_token.is_some(),
        "{}: a peer token",
        manifest.name
    );
    let workload = manifest.workload();
    for probe in ["readinessProbe:", "livenessProbe:"] {
        let after = &workload[workload.find(probe).expect(probe)..];
        let section: String = after.lines().take(8).collect::<Vec<_>>().join("\n");
        assert!(
            section.contains("value: \"Bearer replace-with-the-peer-token\""),
            "{}: {probe} carries the token placeholder the instructions replace:\n{section}",
            manifest.name
        );
    }
}

#[test]
fn the_dns_manifest_starts_a_node_that_follows_the_headless_service() {
    let (manifest, config) = pod_config("geecache.yaml");
    let dns = config.dns.as_ref().expect("DNS membership");
    // SRV records of the headless Service's port named `peer`: each pod's host name and port.
    assert_eq!(dns.target, "_peer._tcp.geecache.default.svc.cluster.local");
    // The node's URL is spelt as the SRV target names the pod, so it finds itself.
    assert_eq!(
        config.self_url.as_deref(),
        Some("http://geecache-0.geecache.default.svc.cluster.local:8001")
    );
    assert_eq!(config.listen.port(), 8001);
    // The Service the SRV name belongs to is headless, and it lists pods that are not ready
    // yet: a node is not ready until a lookup returns members, so without them no node of a
    // new cluster would ever become ready.
    let headless = manifest
        .documents
        .iter()
        .find(|d| d.contains("kind: Service\n") && d.contains("clusterIP: None"))
        .expect("a headless Service");
    assert!(headless.contains("\n  name: geecache\n"));
    assert!(headless.contains("publishNotReadyAddresses: true"));
    assert!(headless.contains("- name: peer\n"), "the SRV name's port");
    assert_eq!(config.peer_token.as_deref(), Some(SECRET));
    assert_sized_from_the_budget(&manifest, &config);
    assert_probes_carry_the_token(&manifest, &config);
}

#[cfg(feature = "etcd")]
#[test]
fn the_etcd_manifest_starts_a_node_that_registers_its_pod_ip() {
    let (manifest, config) = pod_config("geecache-etcd.yaml");
    let etcd = config.etcd.as_ref().expect("etcd membership");
    assert_eq!(etcd.endpoints, ["http://etcd:2379"]);
    assert_eq!(etcd.cluster, "geecache");
    assert_eq!(config.self_url.as_deref(), Some("http://10.1.2.3:8001"));
    assert!(config.dns.is_none());
    assert_sized_from_the_budget(&manifest, &config);
    assert_probes_carry_the_token(&manifest, &config);
}
