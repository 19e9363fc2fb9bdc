//! Keeps the book honest: every file it names exists, and every link in it (a chapter in
//! `SUMMARY.md`, a page, a heading) leads somewhere.

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
        let dir = page.parent().unwrap_or(root);
        for link in markdown_links(&prose(&text)) {
            if let Some(problem) = broken(dir, page, &text, link) {
                problems.push(format!("{shown}: link `{link}` {problem}"));
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

/// The text outside fenced code blocks, where a `](` is code, not a link.
fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Why a relative link from `page` (in `dir`, with `text`) leads nowhere, if it does.
/// Links to other sites are not fetched: the check must work offline.
fn broken(dir: &Path, page: &Path, text: &str, link: &str) -> Option<String> {
    if link.contains("://") || link.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = link.split_once('#').unwrap_or((link, ""));
    let target = if path.is_empty() {
        page.to_path_buf()
    } else {
        dir.join(path)
    };
    if !target.exists() {
        return Some("leads to a file that does not exist".to_owned());
    }
    if anchor.is_empty() || target.extension().is_none_or(|e| e != "md") {
        return None;
    }
    let target_text = if path.is_empty() {
        text.to_owned()
    } else {
        fs::read_to_string(&target).ok()?
    };
    let found = prose(&target_text)
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| slug(h.trim_start_matches('#')))
        .any(|s| s == anchor);
    (!found).then(|| format!("names a heading `#{anchor}` that does not exist"))
}

/// A heading's anchor as GitHub and mdBook make it: lower case, spaces to hyphens, other
/// punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}
