//! Files under a root directory; the key is the file's path relative to the root.
//!
//! The one rule: no key may reach a file outside the root. Keys come from the network, so
//! every way out is assumed to be tried: `..` segments, absolute paths, NUL bytes, and
//! symlinks inside the root that point out of it. Two checks guard it:
//!
//! 1. [`check_key_syntax`]: the key, as text, must be a plain relative path: segments that are
//!    not empty, `.` or `..`, no leading `/`, no NUL. This needs no disk access, so the group
//!    runs it on every get, before its cache.
//! 2. [`DirSource::resolve`]: the root joined with the key is canonicalised (every symlink
//!    followed) and must still lie under the canonical root. This needs the disk, so it runs
//!    only when a key is loaded: a cache hit never touches the file system.
//!
//! After opening, the file's real path is read back from `/proc/self/fd` and checked again,
//! which closes most of the gap between the check and the open if someone swaps a directory
//! for a symlink in between. Fully race-free confinement needs `openat2(RESOLVE_BENEATH)`,
//! which std does not expose; the root's contents are assumed to be under the operator's
//! control, while the keys are not.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use geecache_group::{LoadError, Loaded, Rejected};

/// A `dir:` source.
#[derive(Debug)]
pub(crate) struct DirSource {
    /// Canonical (absolute, symlink-free) root.
    root: PathBuf,
    max_bytes: u64,
    /// Keys looked up on disk: each is a `canonicalize` and, when it exists, an open. A
    /// counter rather than a mock file system, so tests see the real calls.
    #[cfg(test)]
    disk_lookups: std::sync::atomic::AtomicU64,
}

/// Checks that `key` is a plain relative path; see the module docs.
pub(crate) fn check_key_syntax(key: &str) -> Result<(), Rejected> {
    if key.is_empty() {
        return Err(Rejected::new("empty path"));
    }
    if key.contains('\0') {
        return Err(Rejected::new("the path contains a NUL byte"));
    }
    if key.starts_with('/') {
        return Err(Rejected::new(
            "absolute paths are not allowed; give a path relative to the root",
        ));
    }
    for segment in key.split('/') {
        match segment {
            "" => {
                return Err(Rejected::new(
                    "the path has an empty segment ('//' or a trailing '/')",
                ));
            }
            "." => return Err(Rejected::new("the path has a '.' segment")),
            ".." => return Err(Rejected::new("the path has a '..' segment")),
            _ => {}
        }
    }
    Ok(())
}

impl DirSource {
    /// A source serving files under `root`, none larger than `max_bytes`.
    ///
    /// # Errors
    ///
    /// When `root` cannot be canonicalised (it does not exist, or is unreadable).
    pub(crate) fn new(root: &Path, max_bytes: u64) -> io::Result<Self> {
        Ok(DirSource {
            root: root.canonicalize()?,
            max_bytes,
            #[cfg(test)]
            disk_lookups: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many keys were looked up on disk so far.
    #[cfg(test)]
    pub(crate) fn disk_lookups(&self) -> u64 {
        self.disk_lookups.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The canonical root.
    #[cfg(test)]
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The canonical path `key` names, `Ok(None)` when nothing is there, or the reason the
    /// key is refused. Touches metadata only.
    pub(crate) fn resolve(&self, key: &str) -> Result<Option<PathBuf>, Rejected> {
        check_key_syntax(key)?;
        #[cfg(test)]
        self.disk_lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let joined = self.root.join(key);
        let real = match joined.canonicalize() {
            Ok(real) => real,
            // Missing file, or a file used as a directory ("a.txt/b"): nothing to read.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None);
            }
            // Anything else (a symlink loop, a permission problem) is not the client's to
            // know about; treat it as absent rather than echo the file system's state.
            Err(_) => return Ok(None),
        };
        if !real.starts_with(&self.root) {
            return Err(Rejected::new("the path leads outside the root"));
        }
        Ok(Some(real))
    }

    /// Loads a file (on the blocking pool: file I/O would stall the async workers).
    pub(crate) async fn load(self: &std::sync::Arc<Self>, key: &str) -> Result<Loaded, LoadError> {
        let this = std::sync::Arc::clone(self);
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || this.load_blocking(&key))
            .await
            .map_err(|e| LoadError::failed(format!("file read task failed: {e}")))?
    }

    fn load_blocking(&self, key: &str) -> Result<Loaded, LoadError> {
        let Some(path) = self.resolve(key)? else {
            return Err(LoadError::NotFound);
        };
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LoadError::NotFound),
            Err(e) => return Err(LoadError::failed(format!("cannot open {key:?}: {e}"))),
        };
        self.check_opened(&file)?;
        let meta = file
            .metadata()
            .map_err(|e| LoadError::failed(format!("cannot stat {key:?}: {e}")))?;
        if !meta.is_file() {
            // A directory (or a device) is not a value.
            return Err(LoadError::NotFound);
        }
        if meta.len() > self.max_bytes {
            return Err(LoadError::failed(format!(
                "{key:?} is {} bytes, over the limit of {} (max_value_bytes)",
                meta.len(),
                self.max_bytes
            )));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        // `take` bounds the read even if the file grows after the size check.
        file.take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| LoadError::failed(format!("cannot read {key:?}: {e}")))?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(LoadError::failed(format!(
                "{key:?} grew over the limit of {} bytes while being read",
                self.max_bytes
            )));
        }
        Ok(Loaded::from(bytes))
    }

    /// Re-checks where an opened file really is (Linux: `/proc/self/fd/N`), in case the path
    /// changed between `resolve` and `open`. Where `/proc` is unavailable, `resolve` stands.
    fn check_opened(&self, file: &File) -> Result<(), LoadError> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let link = format!("/proc/self/fd/{}", file.as_raw_fd());
            if let Ok(real) = std::fs::read_link(link)
                && !real.starts_with(&self.root)
            {
                return Err(Rejected::new("the path leads outside the root").into());
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = file;
        Ok(())
    }
}
