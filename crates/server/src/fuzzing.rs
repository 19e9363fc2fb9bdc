//! Entry points for the fuzz targets (`crates/fuzz-targets`): the config file and group-spec
//! parsers, and a `dir:` source's key resolution. Not an API.
//!
//! Hidden from the docs rather than public: these are the binary's internals (its config
//! parser, its `dir:` source), whose shapes change whenever the binary's needs do. A public
//! API would hold them to semver for the benefit of one test crate, and would show crates.io
//! readers functions no user of the binary has a reason to call. Each function here is a thin
//! wrapper that runs exactly the code `geecache serve` runs.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use geecache_group::{LoadError, Rejected};

use crate::cli::ServeArgs;
pub use crate::config::error::ConfigError;
use crate::config::{self, Config};
use crate::source::DirSource;
use crate::source::dir::check_key_syntax;

/// What a configuration that was accepted says, for the fuzz targets' invariants.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The groups' names, in the order the node serves them.
    pub groups: Vec<String>,
    /// The roots of the groups with a `dir:` source, as configured.
    pub dir_roots: Vec<PathBuf>,
    /// The one-line summary the node logs at start.
    pub summary: String,
}

impl From<Config> for Accepted {
    fn from(config: Config) -> Self {
        Accepted {
            summary: config.summary(),
            dir_roots: config
                .groups
                .iter()
                .filter_map(|g| match &g.source {
                    config::SourceSpec::Dir(root) => Some(root.clone()),
                    _ => None,
                })
                .collect(),
            groups: config.groups.into_iter().map(|g| g.name).collect(),
        }
    }
}

/// Checks a config file's text as `geecache serve --config FILE` does when no flag and no
/// `GEECACHE_*` variable is set.
///
/// # Errors
///
/// The error `serve` would print before exiting with status 2.
pub fn config_file(text: &str) -> Result<Accepted, ConfigError> {
    config::from_toml(text, &ServeArgs::default()).map(Accepted::from)
}

/// Checks one `--group NAME=SOURCE[,OPTION=VALUE]...` spec, given alone on the command line.
///
/// # Errors
///
/// The error `serve` would print before exiting with status 2.
pub fn group_spec(spec: &str) -> Result<Accepted, ConfigError> {
    let args = ServeArgs {
        groups: vec![spec.to_owned()],
        ..ServeArgs::default()
    };
    config::from_toml("", &args).map(Accepted::from)
}

/// A `dir:` source's view of its root: the checks every key goes through, and the read.
#[derive(Debug)]
pub struct DirRoot(DirSource);

impl DirRoot {
    /// The source `--group NAME=dir:ROOT` builds, with files of up to `max_bytes`.
    ///
    /// # Errors
    ///
    /// When `root` cannot be canonicalised.
    pub fn new(root: &Path, max_bytes: u64) -> io::Result<Self> {
        // The timeout bounds the async wait for a load, which `read` does not use.
        DirSource::new(root, max_bytes, Duration::from_secs(5)).map(DirRoot)
    }

    /// The canonical root: every path the source reads lies under it.
    pub fn root(&self) -> &Path {
        self.0.root()
    }

    /// The check of a key's text that the group runs on every get, before its cache.
    ///
    /// # Errors
    ///
    /// Why the key is refused.
    pub fn check_key(key: &str) -> Result<(), Rejected> {
        check_key_syntax(key)
    }

    /// The canonical path `key` names, `None` when nothing is there.
    ///
    /// # Errors
    ///
    /// Why the key is refused.
    pub fn resolve(&self, key: &str) -> Result<Option<PathBuf>, Rejected> {
        self.0.resolve(key)
    }

    /// The value a load of `key` returns, read on the calling thread (a load runs the same
    /// code on the blocking pool, within the group's timeout).
    ///
    /// # Errors
    ///
    /// What a load of `key` fails with: not found, refused, or a failed read.
    pub fn read(&self, key: &str) -> Result<Vec<u8>, LoadError> {
        self.0
            .load_blocking(key)
            .map(|loaded| loaded.value().to_vec())
    }
}
