//! What the fuzz targets under `fuzz/` run, one function per target.
//!
//! Each function takes arbitrary bytes and panics only on a bug: a decoder that panics on its
//! input, a wire message that does not survive re-encoding, a router that answers a client's
//! request with 500, a config parser that accepts what it promises to refuse, a `dir:` key
//! that reads a file outside its root. The functions live here, in a crate that builds on stable, rather than in
//! `fuzz/` itself, so that the test in `tests/corpus.rs` replays every committed corpus file
//! through exactly the code libFuzzer runs, on every CI run, with no nightly toolchain.
//!
//! ```
//! // Any bytes are fine: a malformed escape is an error, not a panic.
//! geecache_fuzz_targets::peer_path(b"/_geecache/scores/%zz");
//! geecache_fuzz_targets::wire(&[0x0a, 0x03, b'a', b'b', b'c']);
//! geecache_fuzz_targets::config(b"[groups.scores]\nsource = \"demo\"\ncache_bytes = -1\n");
//! // A real directory with symlinks out of the root, removed on drop.
//! let fixture = geecache_fuzz_targets::DirFixture::new()?;
//! fixture.check(b"up/outside/secret.txt");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod dir_key;
mod peer_path;
mod router;
mod wire;

pub use config::config;
pub use dir_key::{DirFixture, dir_key};
pub use peer_path::peer_path;
pub use router::{router, statuses};
pub use wire::wire;

/// The targets by name, as `fuzz/Cargo.toml`, `fuzz/fuzz_targets/` and `fuzz/corpus/` name
/// them (a test holds the four lists together; `cargo xtask fuzz` reads `fuzz/Cargo.toml`).
pub const TARGETS: &[&str] = &["peer_path", "wire", "router", "config", "dir_key"];
