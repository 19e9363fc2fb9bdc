//! The dependency arrows only point down: this module proves it on every CI run.
//!
//! The table mirrors the layer table in `docs/architecture.md`. A crate that is not in the table
//! (the facade, the binary, xtask) may depend on anything.

use std::path::Path;
use std::process::Command;

struct Rule {
    package: &'static str,
    /// Workspace crates this one may depend on directly (normal dependencies).
    allowed: &'static [&'static str],
    /// Floor-1 crates carry no runtime: tokio must not appear anywhere in their normal tree.
    no_runtime: bool,
}

const RULES: &[Rule] = &[
    Rule {
        package: "geecache-lru",
        allowed: &[],
        no_runtime: true,
    },
    Rule {
        package: "geecache-byteview",
        allowed: &[],
        no_runtime: true,
    },
    Rule {
        package: "geecache-consistenthash",
        allowed: &[],
        no_runtime: true,
    },
    Rule {
        package: "geecache-singleflight",
        allowed: &[],
        no_runtime: true,
    },
    Rule {
        package: "geecache-group",
        allowed: &[
            "geecache-lru",
            "geecache-byteview",
            "geecache-singleflight",
            "geecache-consistenthash",
        ],
        no_runtime: false,
    },
    Rule {
        package: "geecache-transport-http",
        allowed: &[
            "geecache-group",
            "geecache-consistenthash",
            "geecache-byteview",
        ],
        no_runtime: false,
    },
    Rule {
        package: "geecache-transport-grpc",
        allowed: &[
            "geecache-group",
            "geecache-consistenthash",
            "geecache-byteview",
        ],
        no_runtime: false,
    },
    Rule {
        package: "geecache-discovery-etcd",
        allowed: &[],
        no_runtime: false,
    },
    Rule {
        package: "geecache-discovery-dns",
        allowed: &[],
        no_runtime: false,
    },
];

pub(crate) fn check(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    for rule in RULES {
        let dir = rule.package.trim_start_matches("geecache-");
        if !root.join("crates").join(dir).join("Cargo.toml").exists() {
            continue;
        }
        let tree = normal_tree(root, rule.package)?;
        for (depth, name) in &tree {
            if *depth == 1 && name.starts_with("geecache") && !rule.allowed.contains(&name.as_str())
            {
                problems.push(format!(
                    "{} depends on {name}; allowed: {:?}",
                    rule.package, rule.allowed
                ));
            }
            if rule.no_runtime && name == "tokio" {
                problems.push(format!(
                    "{} pulls in tokio (depth {depth}); floor-1 crates carry no runtime",
                    rule.package
                ));
            }
        }
        println!(
            "xtask: {} ok ({} crates in its tree)",
            rule.package,
            tree.len()
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// `(depth, crate name)` for every crate in the normal-dependency tree, all features on.
fn normal_tree(root: &Path, package: &str) -> Result<Vec<(usize, String)>, String> {
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["tree", "-p", package, "-e", "normal", "--all-features"])
        .args(["--prefix", "depth", "--charset", "ascii"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo tree -p {package} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut tree = Vec::new();
    for line in text.lines() {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(depth) = line[..digits].parse::<usize>() else {
            continue;
        };
        if let Some(name) = line[digits..].split_whitespace().next() {
            tree.push((depth, name.to_string()));
        }
    }
    Ok(tree)
}
