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
use std::sync::Arc;
use std::time::Duration;

use geecache_group::{LoadError, Loaded, Rejected};

use super::shown;
use tokio::sync::Semaphore;

/// The most disk loads of one `dir:` source in flight at once, stuck ones included. Enough for
/// a busy disk; small beside the blocking pool's 512 threads, which every source and every
/// other blocking task share.
pub(crate) const DISK_LOADS: usize = 64;

/// A `dir:` source.
#[derive(Debug)]
pub(crate) struct DirSource {
    /// Canonical (absolute, symlink-free) root.
    root: PathBuf,
    max_bytes: u64,
    /// How long a load may take, from waiting for a slot to the last byte read.
    timeout: Duration,
    /// One permit per disk load in flight; a thread stuck on a file keeps its permit.
    slots: Arc<Semaphore>,
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
    /// A source serving files under `root`, none larger than `max_bytes`, each load within
    /// `timeout`.
    ///
    /// # Errors
    ///
    /// When `root` cannot be canonicalised (it does not exist, or is unreadable).
    pub(crate) fn new(root: &Path, max_bytes: u64, timeout: Duration) -> io::Result<Self> {
        Ok(DirSource {
            root: root.canonicalize()?,
            max_bytes,
            timeout,
            slots: Arc::new(Semaphore::new(DISK_LOADS)),
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

    /// Loads a file (on the blocking pool: file I/O would stall the async workers), within
    /// the source's timeout.
    pub(crate) async fn load(self: &Arc<Self>, key: &str) -> Result<Loaded, LoadError> {
        let this = Arc::clone(self);
        let owned = key.to_owned();
        bounded_blocking(&self.slots, self.timeout, move || {
            this.load_blocking(&owned)
        })
        .await
        .map_err(|e| match e {
            Bounded::TimedOut => LoadError::failed(format!(
                "reading {:?} took longer than {:?} (origin_timeout); the file may be \
                     a FIFO or on a hung mount",
                shown(key),
                self.timeout
            )),
            Bounded::Failed(e) => e,
        })
    }

    /// A load's work, on the calling thread.
    pub(crate) fn load_blocking(&self, key: &str) -> Result<Loaded, LoadError> {
        // Errors are logged and answered to clients: a 64 KiB key is shown by its start.
        let shown_key = shown(key);
        let Some(path) = self.resolve(key)? else {
            return Err(LoadError::NotFound);
        };
        // Only a regular file is a value, and only one is opened: opening a FIFO would wait
        // for a writer, and a device may do anything. (A file swapped for a FIFO after this
        // check is what the timeout is for.)
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            _ => return Err(LoadError::NotFound),
        }
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LoadError::NotFound),
            Err(e) => return Err(LoadError::failed(format!("cannot open {shown_key:?}: {e}"))),
        };
        self.check_opened(&file)?;
        let meta = file
            .metadata()
            .map_err(|e| LoadError::failed(format!("cannot stat {shown_key:?}: {e}")))?;
        if !meta.is_file() {
            // A directory (or a device) is not a value.
            return Err(LoadError::NotFound);
        }
        if meta.len() > self.max_bytes {
            return Err(LoadError::failed(format!(
                "{shown_key:?} is {} bytes, over the limit of {} (max_value_bytes)",
                meta.len(),
                self.max_bytes
            )));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        // `take` bounds the read even if the file grows after the size check.
        file.take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| LoadError::failed(format!("cannot read {shown_key:?}: {e}")))?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(LoadError::failed(format!(
                "{shown_key:?} grew over the limit of {} bytes while being read",
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

/// Why [`bounded_blocking`] gave no result.
#[derive(Debug)]
pub(crate) enum Bounded {
    /// The deadline passed, waiting for a slot or for the work.
    TimedOut,
    /// The work failed (or panicked).
    Failed(LoadError),
}

/// Runs `work` on the blocking pool while holding one of `slots`, and waits for it at most
/// `timeout`, the wait for a slot included.
///
/// A blocking thread cannot be cancelled: one stuck in `open` stays stuck when the caller
/// stops waiting. It keeps its slot until it returns, so the stuck ones never outnumber the
/// slots, and once every slot is stuck a load fails at its deadline instead of taking yet
/// another thread.
pub(crate) async fn bounded_blocking<T: Send + 'static>(
    slots: &Arc<Semaphore>,
    timeout: Duration,
    work: impl FnOnce() -> Result<T, LoadError> + Send + 'static,
) -> Result<T, Bounded> {
    let run = async {
        // The semaphore is never closed; an error here would be a bug, reported as a failure.
        let slot = (Arc::clone(slots).acquire_owned().await)
            .map_err(|e| Bounded::Failed(LoadError::failed(e)))?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await
        .map_err(|e| Bounded::Failed(LoadError::failed(format!("file read task failed: {e}"))))?
        .map_err(Bounded::Failed)
    };
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or(Err(Bounded::TimedOut))
}
