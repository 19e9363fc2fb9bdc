//! Keeps the book honest: every file it names exists, and every chapter in `SUMMARY.md` exists.

use std::fs;
use std::path::Path;

/// Prefixes that mark a backticked span in the docs as a path into this repository.
const REPO_PATHS: &[&str] = &["crates/", "xtask/", "benches/", "docs/", ".ci/", "deploy/"];

pub(crate) fn check(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut pages = vec![root.join("README.md")];
    collect_markdown(&root.join("docs"), &mut pages);
    for page in &pages {
        let text = fs::read_to_string(page).map_err(|e| format!("{}: {e}", page.display()))?;
        let shown = page
            .strip_prefix(root)
            .unwrap_or(page)
            .display()
            .to_string();
        for path in backticked_paths(&text) {
            if !root.join(path).exists() {
                problems.push(format!("{shown}: names `{path}`, which does not exist"));
            }
        }
        if page.ends_with("SUMMARY.md") {
            let dir = page.parent().unwrap_or(root);
            for link in markdown_links(&text) {
                if !link.contains("://") && !dir.join(link).exists() {
                    problems.push(format!("{shown}: chapter `{link}` does not exist"));
                }
            }
        }
    }
    if problems.is_empty() {
        println!("xtask: {} pages checked", pages.len());
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn collect_markdown(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_markdown(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// Spans like `crates/lru/src/cache.rs` (a trailing `:line` or `#anchor` is ignored).
fn backticked_paths(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2).filter_map(|span| {
        let path = span.split([':', '#', ' ']).next()?;
        REPO_PATHS
            .iter()
            .any(|p| path.starts_with(p))
            .then_some(path.trim_end_matches('/'))
    })
}

/// Targets of `[text](target)` links.
fn markdown_links(text: &str) -> impl Iterator<Item = &str> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
}
