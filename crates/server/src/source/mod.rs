//! Where a group's values come from: the built-in demo table, a directory, an HTTP origin.
//!
//! Each source is a [`geecache_group::Getter`]; [`DataSource`] puts the three behind one type
//! so a group is built the same way whatever its source.

pub(crate) mod demo;
pub(crate) mod dir;
pub(crate) mod origin;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use geecache_group::{Getter, LoadError, Loaded};

use crate::client::HttpClient;
use crate::config::{GroupConfig, SourceSpec};
pub(crate) use demo::DemoTable;
pub(crate) use dir::DirSource;
pub(crate) use origin::HttpOrigin;

/// A key the source refuses to look up at all, as opposed to one it looks up and misses.
///
/// The HTTP layer answers it with 400: it is the client's mistake (or an attack), and no
/// retry, peer or fallback can make it valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid key: {0}")]
pub(crate) struct InvalidKey(pub(crate) String);

impl InvalidKey {
    pub(crate) fn new(why: impl Into<String>) -> Self {
        InvalidKey(why.into())
    }
}

/// One group's source.
#[derive(Clone, Debug)]
pub(crate) enum DataSource {
    /// The built-in table.
    Demo(DemoTable),
    /// Files under a root directory.
    Dir(Arc<DirSource>),
    /// An HTTP origin.
    Http(Arc<HttpOrigin>),
}

impl DataSource {
    /// Builds the source a group's config names.
    ///
    /// # Errors
    ///
    /// When a `dir:` root cannot be resolved (it was checked at validation, but it may have
    /// gone since).
    pub(crate) fn from_config(group: &GroupConfig, client: &HttpClient) -> std::io::Result<Self> {
        Ok(match &group.source {
            SourceSpec::Demo => DataSource::Demo(DemoTable::builder().build()),
            SourceSpec::Dir(root) => {
                DataSource::Dir(Arc::new(DirSource::new(root, group.max_value_bytes)?))
            }
            SourceSpec::Http(url) => DataSource::Http(Arc::new(HttpOrigin::new(
                url.clone(),
                client.clone(),
                group.origin_timeout,
                group.max_value_bytes,
            ))),
        })
    }

    /// Whether [`check_key`](Self::check_key) can refuse a key: the demo table takes any.
    pub(crate) fn refuses_keys(&self) -> bool {
        match self {
            DataSource::Demo(_) => false,
            DataSource::Http(_) | DataSource::Dir(_) => true,
        }
    }

    /// Refuses keys this source would never look up, before any cache or peer sees them.
    ///
    /// For `dir:` this resolves symlinks on disk (metadata only, never the file's contents),
    /// so it runs on the blocking pool.
    pub(crate) async fn check_key(&self, key: &str) -> Result<(), InvalidKey> {
        match self {
            DataSource::Demo(_) => Ok(()),
            DataSource::Http(origin) => origin.check_key(key),
            DataSource::Dir(dir) => {
                let dir = Arc::clone(dir);
                let key = key.to_owned();
                tokio::task::spawn_blocking(move || dir.check_key_on_disk(&key))
                    .await
                    .unwrap_or_else(|_| Err(InvalidKey::new("key check was interrupted")))
            }
        }
    }
}

impl Getter for DataSource {
    async fn get(&self, key: &str) -> Result<Loaded, LoadError> {
        match self {
            DataSource::Demo(table) => table.get(key).await,
            DataSource::Dir(dir) => dir.load(key).await,
            DataSource::Http(origin) => origin.load(key).await,
        }
    }
}
