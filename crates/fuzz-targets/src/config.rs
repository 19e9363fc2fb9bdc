//! The config target: the TOML config file and the `--group` spec, as `geecache serve` reads
//! them.

use geecache_server::fuzzing::{self, Accepted, ConfigError};

/// Reads `data` as a config file and, separately, as one `--group` spec.
///
/// Every input goes through both parsers: a mutated spec is often a line of a file and the
/// other way round, and one corpus then serves both.
///
/// # Panics
///
/// When a parser panics, when an error has no message, or when an accepted configuration breaks
/// a rule the parser promises: group names of 1 to 64 characters that need no escaping in a
/// URL, given once, served in order; `dir:` roots that are directories; a spec's group named
/// as the spec names it.
pub fn config(data: &[u8]) {
    // A config file that is not UTF-8 is refused when read, before the parser sees it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(accepted) = checked(fuzzing::config_file(text)) {
        assert!(!accepted.groups.is_empty(), "a config without a group runs");
    }
    if let Some(accepted) = checked(fuzzing::group_spec(text)) {
        let (name, _) = text.split_once('=').expect("an accepted spec has a '='");
        assert_eq!(
            accepted.groups,
            [name.trim()],
            "the spec {text:?} names another group"
        );
    }
}

/// The accepted configuration after checking its invariants, or `None` after checking the
/// error's.
fn checked(result: Result<Accepted, ConfigError>) -> Option<Accepted> {
    let accepted = match result {
        Ok(accepted) => accepted,
        Err(e) => {
            // The message is all the operator gets (printed, then exit status 2).
            assert!(
                !e.to_string().is_empty(),
                "an error without a message: {e:?}"
            );
            return None;
        }
    };
    for name in &accepted.groups {
        assert!(
            (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
            "group name {name:?} was accepted"
        );
    }
    assert!(
        accepted.groups.windows(2).all(|w| w[0] < w[1]),
        "groups not sorted or given twice: {:?}",
        accepted.groups
    );
    for root in &accepted.dir_roots {
        assert!(
            root.is_dir(),
            "dir: root {} is not a directory",
            root.display()
        );
    }
    assert!(!accepted.summary.is_empty());
    Some(accepted)
}
