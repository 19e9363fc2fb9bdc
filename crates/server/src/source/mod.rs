//! Where a group's values come from: the built-in demo table, a directory, an HTTP origin.
//!
//! Each source is a [`geecache_group::Getter`]; [`DataSource`] puts the three behind one type
//! so a group is built the same way whatever its source. A key a source will never look up
//! (a path that leaves a `dir:` root) is a [`Rejected`] key: the group refuses it before its
//! cache when the key's text shows it (`Getter::check_key`), or when loading when only the
//! disk can tell, and the transport answers 400 `invalid-key`.

pub(crate) mod demo;
pub(crate) mod dir;
pub(crate) mod origin;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use geecache_group::{Getter, LoadError, Loaded, Rejected};

use crate::client::HttpClient;
use crate::config::{GroupConfig, SourceSpec};
pub(crate) use demo::DemoTable;
pub(crate) use dir::DirSource;
pub(crate) use origin::HttpOrigin;

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
            SourceSpec::Dir(root) => DataSource::Dir(Arc::new(DirSource::new(
                root,
                group.max_value_bytes,
                group.origin_timeout,
            )?)),
            SourceSpec::Http(url) => DataSource::Http(Arc::new(HttpOrigin::new(
                url.clone(),
                client.clone(),
                group.origin_timeout,
                group.max_value_bytes,
            ))),
        })
    }
}

/// Keys and URLs in load errors (which are logged, and answered to clients) are cut to this
/// many characters: a key may be 64 KiB, and an encoded one three times that.
const SHOWN_CHARS: usize = 120;

/// `text` as errors show it: whole when short, else its start and how long it was.
pub(crate) fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => std::borrow::Cow::Borrowed(text),
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()).into(),
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

    /// The checks that need no I/O: the group runs them on every get, cache hits included.
    /// `dir:`'s symlink check needs the disk, so it runs in `get`, on a miss only.
    fn check_key(&self, key: &str) -> Result<(), Rejected> {
        match self {
            DataSource::Demo(_) => Ok(()),
            DataSource::Dir(_) => dir::check_key_syntax(key),
            DataSource::Http(_) => origin::check_key(key),
        }
    }
}
