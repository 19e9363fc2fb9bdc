//! The `dir:` key target: no key a `dir:` source accepts reaches a file outside its root.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use geecache_group::LoadError;
use geecache_server::fuzzing::DirRoot;

/// What every file outside the root starts with: a read that returns it has escaped.
const OUTSIDE: &[u8] = b"OUTSIDE the root";

/// A real directory tree with every way out of the root a key could try to use:
///
/// ```text
/// base/
///   outside/secret.txt       OUTSIDE...
///   root-evil/secret.txt     OUTSIDE...   (a sibling whose name starts with the root's)
///   root/                    the source's root
///     a.txt  sub/b.txt  sub/deeper/c.txt  .hidden
///     up -> ..               out -> ../outside        secret -> ../outside/secret.txt
///     evil -> ../root-evil   abs -> /                 in -> sub (stays inside)
///     loop -> loop           dangling -> nowhere      a-link -> a.txt (stays inside)
/// ```
///
/// Symlinks exist on Unix only; elsewhere the tree has just the files.
pub struct DirFixture {
    source: DirRoot,
    /// Every path inside the root, found by a walk that follows no symlink: the canonical path
    /// of what a key may reach, and the file's contents (`None` for a directory).
    inside: BTreeMap<PathBuf, Option<Vec<u8>>>,
    /// The tree, removed on drop (after the source, which is declared first).
    _dir: tempfile::TempDir,
}

impl DirFixture {
    /// Builds the tree in a new temporary directory.
    ///
    /// # Errors
    ///
    /// When the temporary directory cannot be written.
    pub fn new() -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("geecache-fuzz-dir-")
            .tempdir()?;
        let base = dir.path();
        let root = base.join("root");
        for sub in ["outside", "root-evil", "root/sub/deeper"] {
            fs::create_dir_all(base.join(sub))?;
        }
        for file in ["outside/secret.txt", "root-evil/secret.txt"] {
            fs::write(base.join(file), [OUTSIDE, file.as_bytes()].concat())?;
        }
        for file in ["a.txt", "sub/b.txt", "sub/deeper/c.txt", ".hidden"] {
            fs::write(root.join(file), format!("inside: {file}"))?;
        }
        #[cfg(unix)]
        for (link, target) in [
            ("up", ".."),
            ("out", "../outside"),
            ("secret", "../outside/secret.txt"),
            ("evil", "../root-evil"),
            ("abs", "/"),
            ("in", "sub"),
            ("loop", "loop"),
            ("dangling", "nowhere"),
            ("a-link", "a.txt"),
        ] {
            std::os::unix::fs::symlink(target, root.join(link))?;
        }
        let source = DirRoot::new(&root, 1 << 20)?;
        let mut inside = BTreeMap::new();
        walk(source.root(), &mut inside)?;
        Ok(DirFixture {
            source,
            inside,
            _dir: dir,
        })
    }

    /// What a load of `key` returns.
    ///
    /// # Errors
    ///
    /// What the load fails with: not found, refused, or a failed read.
    pub fn read(&self, key: &str) -> Result<Vec<u8>, LoadError> {
        self.source.read(key)
    }

    /// Runs `data` as a key through the source's checks and its read.
    ///
    /// # Panics
    ///
    /// When a key the text check refuses is resolved or read anyway; when a key resolves to a
    /// path that is not inside the root; when a read returns anything but the contents of the
    /// file inside the root that the key resolved to.
    pub fn check(&self, data: &[u8]) {
        // Keys are text: a peer or client path that does not decode to UTF-8 is refused (400)
        // before any source sees it.
        let Ok(key) = std::str::from_utf8(data) else {
            return;
        };
        let syntax = DirRoot::check_key(key);
        let resolved = self.source.resolve(key);
        let read = self.source.read(key);
        if syntax.is_err() {
            assert!(resolved.is_err(), "{key:?} refused by text but resolved");
            assert!(
                matches!(read, Err(LoadError::Rejected(_))),
                "{key:?} refused by text but read: {read:?}"
            );
        }
        if let Ok(Some(path)) = &resolved {
            assert!(
                self.inside.contains_key(path),
                "{key:?} resolved to {}, not a path inside the root",
                path.display()
            );
        }
        if let Ok(bytes) = &read {
            assert!(
                !bytes.starts_with(OUTSIDE),
                "{key:?} read a file outside the root"
            );
            let Ok(Some(path)) = &resolved else {
                panic!("{key:?} was read but does not resolve: {resolved:?}");
            };
            assert_eq!(
                self.inside.get(path),
                Some(&Some(bytes.clone())),
                "{key:?} read something other than {}",
                path.display()
            );
        }
    }
}

/// Records `dir` and everything under it, without following symlinks.
fn walk(dir: &Path, found: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) -> io::Result<()> {
    found.insert(dir.to_path_buf(), None);
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let kind = fs::symlink_metadata(&path)?.file_type();
        if kind.is_dir() {
            walk(&path, found)?;
        } else if kind.is_file() {
            found.insert(path.clone(), Some(fs::read(&path)?));
        }
    }
    Ok(())
}

/// Runs `data` as a key through a `dir:` source over a [`DirFixture`], built on the first
/// call and kept for the process's life (libFuzzer runs one process per target; the tree, a
/// few small files, stays in the temporary directory after it).
///
/// # Panics
///
/// As [`DirFixture::check`] does, or when the fixture cannot be built.
pub fn dir_key(data: &[u8]) {
    static FIXTURE: OnceLock<DirFixture> = OnceLock::new();
    FIXTURE
        .get_or_init(|| DirFixture::new().expect("the dir: fixture is built"))
        .check(data);
}
