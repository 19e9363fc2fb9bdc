//! The node's TLS: certificate, key and CA read from PEM files once, built into the one rustls
//! server configuration and the one client configuration every transport of the node uses,
//! and swapped in place when the files change.
//!
//! The transports read no files; they take the two configurations built here. Both hold the
//! same [`Swap`] (`swap.rs`): the server's certificate resolver, the client's certificate
//! resolver (for mutual TLS, the node presents its own certificate to its peers) and both
//! verifiers read what it holds at each handshake, so a reload (`reload.rs`: on SIGHUP or when
//! the files change) reaches new connections at once while open ones keep their session.

mod reload;
mod swap;
#[cfg(test)]
pub(crate) mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::RootCertStore;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

pub(crate) use reload::{POLL_INTERVAL, watch};
use swap::Swap;

/// Whether callers must show a certificate signed by the CA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// No certificate is asked for (peers and clients authenticate with tokens, if any).
    #[default]
    None,
    /// A certificate is asked for; one that is shown must be signed by the CA, but a caller
    /// may show none (clients of `/api` with a token, say).
    Optional,
    /// A caller without a certificate signed by the CA is refused during the handshake.
    Required,
}

impl ClientAuth {
    /// The name used by `--tls-client-auth` and the config file.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ClientAuth::None => "none",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "required",
        }
    }
}

impl std::str::FromStr for ClientAuth {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(ClientAuth::None),
            "optional" => Ok(ClientAuth::Optional),
            "required" => Ok(ClientAuth::Required),
            _ => Err(()),
        }
    }
}

/// Where the node's TLS material lives, and what it asks of callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// The node's certificate chain (PEM), leaf first.
    pub(crate) cert: PathBuf,
    /// The node's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub(crate) key: PathBuf,
    /// The CA certificates (PEM) that sign peers' (and callers') certificates.
    pub(crate) ca: PathBuf,
    /// Whether callers must show a certificate.
    pub(crate) client_auth: ClientAuth,
}

/// Why the TLS files could not be used. Each names the file and the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum TlsError {
    /// The file could not be read.
    #[error("{what} {path}: cannot read it: {source}")]
    Read {
        /// Which file: "certificate", "key" or "CA".
        what: &'static str,
        /// The path as given.
        path: String,
        /// What the read said.
        source: std::io::Error,
    },
    /// The file is not PEM of the kind expected.
    #[error("{what} {path}: {problem}")]
    Pem {
        /// Which file.
        what: &'static str,
        /// The path as given.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// rustls refused the material (a key that does not match the certificate, say).
    #[error("{what}: {source}")]
    Rustls {
        /// What was being built.
        what: String,
        /// What rustls said.
        source: rustls::Error,
    },
}

/// The material read from the files, before it goes into the configurations.
struct Material {
    key: Arc<CertifiedKey>,
    roots: Arc<RootCertStore>,
}

/// The files' bytes, as last read (to tell a change).
#[derive(Clone, PartialEq, Eq)]
struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
    ca: Vec<u8>,
}

impl Contents {
    fn read(files: &TlsFiles) -> Result<Contents, TlsError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                what,
                path: path.display().to_string(),
                source,
            })
        };
        Ok(Contents {
            cert: read("certificate", &files.cert)?,
            key: read("key", &files.key)?,
            ca: read("CA", &files.ca)?,
        })
    }

    /// Parses the three files, each error naming its file.
    fn parse(&self, files: &TlsFiles) -> Result<Material, TlsError> {
        let bad = |what, path: &Path, problem: String| TlsError::Pem {
            what,
            path: path.display().to_string(),
            problem,
        };
        let chain =
            certificates(&self.cert).map_err(|problem| bad("certificate", &files.cert, problem))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(|e| {
            bad(
                "key",
                &files.key,
                match e {
                    pem::Error::NoItemsFound => "no PRIVATE KEY block found (PKCS#8, PKCS#1 or \
                                                 SEC1 PEM expected)"
                        .to_owned(),
                    other => format!("not a readable PEM private key: {other}"),
                },
            )
        })?;
        let key =
            CertifiedKey::from_der(chain, key, &provider()).map_err(|source| TlsError::Rustls {
                what: format!(
                    "key {} with certificate {}",
                    files.key.display(),
                    files.cert.display()
                ),
                source,
            })?;
        let mut roots = RootCertStore::empty();
        let cas = certificates(&self.ca).map_err(|problem| bad("CA", &files.ca, problem))?;
        for ca in cas {
            roots.add(ca).map_err(|e| {
                bad(
                    "CA",
                    &files.ca,
                    format!("a certificate is not a usable CA: {e}"),
                )
            })?;
        }
        Ok(Material {
            key: Arc::new(key),
            roots: Arc::new(roots),
        })
    }
}

/// The cryptography: `ring`, named once. rustls 0.23.48 deprecates `ring`'s provider in favour
/// of aws-lc-rs, for the post-quantum key exchange only aws-lc-rs has; we keep `ring` because
/// aws-lc-rs compiles C with cmake (a heavier build, and one more toolchain), and the
/// classical key exchanges (X25519, P-256) are what every peer and client offers today.
///
/// The key exchanges are put in that order, X25519 first, as OpenSSL, Go and browsers offer
/// them: `ring`'s provider lists P-384 first, and a rustls server takes the first group of the
/// client's list that it supports, so a node dialing its peers (and `geecache get`) made
/// every handshake a P-384 one, which `ring` computes without assembly: about 1 ms of CPU on
/// each side against 0.2 ms with X25519 on the benchmark machine (`docs/performance.md`).
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::kx_group;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    Arc::new(provider)
}

/// The CERTIFICATE blocks of a PEM file: at least one, and every block readable.
fn certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not readable PEM: {e}"))?;
    if chain.is_empty() {
        return Err("no CERTIFICATE block found (PEM expected)".to_owned());
    }
    Ok(chain)
}

/// A node's TLS: the two configurations its transports use, and what swaps their material.
pub(crate) struct NodeTls {
    files: TlsFiles,
    swap: Arc<Swap>,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    /// The files as last tried (loaded, or refused), so a poll reloads only what changed and
    /// reports a bad file once, not at every poll.
    last: std::sync::Mutex<Contents>,
    /// How many times the key file was read and loaded (at start, then at each reload).
    loads: AtomicU64,
}

impl NodeTls {
    /// Reads and checks the files and builds both configurations.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, is not PEM of its kind, or a key that does not match the
    /// certificate; the error names the file.
    pub(crate) fn load(files: &TlsFiles) -> Result<Arc<NodeTls>, TlsError> {
        let contents = Contents::read(files)?;
        let material = contents.parse(files)?;
        let swap = Arc::new(Swap::new(material.key, &material.roots, files.client_auth)?);
        let server = swap.server_config();
        let client = swap.client_config();
        Ok(Arc::new(NodeTls {
            files: files.clone(),
            swap,
            server,
            client,
            last: std::sync::Mutex::new(contents),
            loads: AtomicU64::new(1),
        }))
    }

    /// The configuration every connection the node accepts is served with.
    pub(crate) fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.server)
    }

    /// The configuration the node dials its peers with (both transports set their own ALPN
    /// on a copy; the material stays shared).
    pub(crate) fn client_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.client)
    }

    /// How many times the key was loaded: once at start, once per reload.
    pub(crate) fn key_loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// Reads the files again and, if they changed since the last try (or `force`), swaps the
    /// new material in. On an error the material in use stays.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load); nothing changes then.
    pub(crate) fn reload(&self, force: bool) -> Result<Reloaded, TlsError> {
        let contents = Contents::read(&self.files)?;
        {
            let mut last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !force && *last == contents {
                return Ok(Reloaded::Unchanged);
            }
            // Remembered even when refused: a bad file is reported once, then again only
            // when it changes (or on SIGHUP).
            *last = contents.clone();
        }
        let material = contents.parse(&self.files)?;
        self.loads.fetch_add(1, Ordering::Relaxed);
        self.swap.replace(material.key, &material.roots)?;
        Ok(Reloaded::Swapped)
    }
}

/// The TLS of a client of nodes (`geecache get`, the demo's load): the CA that signs the
/// nodes' certificates and, for nodes that ask for one, a client certificate and key.
///
/// # Errors
///
/// As [`NodeTls::load`], naming the file.
pub(crate) fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let read = |what, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            what,
            path: path.display().to_string(),
            source,
        })
    };
    let bad = |what, path: &Path, problem: String| TlsError::Pem {
        what,
        path: path.display().to_string(),
        problem,
    };
    let mut roots = RootCertStore::empty();
    for cert in certificates(&read("CA", ca)?).map_err(|p| bad("CA", ca, p))? {
        roots
            .add(cert)
            .map_err(|e| bad("CA", ca, format!("a certificate is not a usable CA: {e}")))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            what: "the TLS client".to_owned(),
            source,
        })?
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates(&read("certificate", cert)?)
                .map_err(|p| bad("certificate", cert, p))?;
            let key_der = PrivateKeyDer::from_pem_slice(&read("key", key)?)
                .map_err(|e| bad("key", key, format!("not a readable PEM private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|source| TlsError::Rustls {
                    what: format!("key {} with certificate {}", key.display(), cert.display()),
                    source,
                })?
        }
    };
    Ok(Arc::new(config))
}

/// What a reload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reloaded {
    /// The files were as last read.
    Unchanged,
    /// New connections use the new material.
    Swapped,
}

impl fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeTls")
            .field("files", &self.files)
            .field("key_loads", &self.key_loads())
            .finish_non_exhaustive()
    }
}
