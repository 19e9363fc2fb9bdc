//! The one error a bad configuration produces: which setting, what is wrong, what is allowed.

use std::fmt;

/// Where a setting's value came from, so an error names the thing the operator typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// A command-line flag by its long name, e.g. `listen` for `--listen`.
    Flag(&'static str),
    /// An environment variable, e.g. `GEECACHE_LISTEN`.
    Env(&'static str),
    /// A key in the config file, e.g. `groups.files.source`, and the file's path.
    File { key: String, path: String },
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Flag(flag) => write!(f, "--{flag}"),
            Field::Env(var) => write!(f, "${var}"),
            Field::File { key, path } => write!(f, "{key} (in {path})"),
        }
    }
}

/// A configuration that cannot run. `serve` prints it and exits with status 2.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting has a value that is not allowed.
    #[error("invalid {field} {value:?}: {problem}; {allowed}")]
    Invalid {
        /// The setting, as the operator wrote it.
        field: String,
        /// The offending value (tokens are never echoed).
        value: String,
        /// What is wrong with it.
        problem: String,
        /// What would be accepted.
        allowed: String,
    },
    /// A required setting is missing, or settings contradict each other.
    #[error("{0}")]
    Missing(String),
    /// The config file could not be read or parsed.
    #[error("config file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// The reader's or parser's message (TOML errors carry line and column).
        message: String,
    },
}

impl ConfigError {
    /// A value that is not allowed for `field`.
    pub(crate) fn invalid(
        field: &Field,
        value: &str,
        problem: impl Into<String>,
        allowed: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            field: field.to_string(),
            value: value.to_owned(),
            problem: problem.into(),
            allowed: allowed.into(),
        }
    }
}
