//! TLS for the runs that measure it: a CA and a node certificate made on the spot, and the
//! client side that trusts them (the load generator's and the orchestrator's probes).
//!
//! Every node of a run shares one certificate, for `127.0.0.1`: what a handshake costs does
//! not depend on whose certificate it is, and one key pair keeps the start-up short. The
//! certificate carries both key usages, `serverAuth` for the node's port and `clientAuth` for
//! the node as a client of its peers, so the same files serve both roles as the operations
//! manual asks of real ones. Keys are ECDSA P-256, rcgen's default and what cert-manager
//! issues unless told otherwise.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::{ClientConfig, RootCertStore};

/// Where the files of a made-up public-key infrastructure are: one CA, one node certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pki {
    /// The CA certificate (PEM): what the nodes and the clients trust.
    pub ca: PathBuf,
    /// The node certificate (PEM), for `127.0.0.1` and `localhost`, signed by the CA.
    pub cert: PathBuf,
    /// The node certificate's private key (PEM, PKCS#8).
    pub key: PathBuf,
}

impl Pki {
    /// Makes a CA and a node certificate and writes them into `dir` (created if missing) as
    /// `ca.crt`, `node.crt` and `node.key`.
    ///
    /// # Errors
    ///
    /// When rcgen cannot make a key or a certificate, or a file cannot be written.
    pub fn generate(dir: &Path) -> io::Result<Pki> {
        let made = |what: &str, e: rcgen::Error| io::Error::other(format!("{what}: {e}"));
        let mut ca = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| made("the CA's parameters", e))?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "geecache e2e CA");
        let ca_key = KeyPair::generate().map_err(|e| made("the CA's key", e))?;
        let issuer =
            CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| made("the CA certificate", e))?;

        let mut node = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(|e| made("the node's parameters", e))?;
        node.distinguished_name
            .push(DnType::CommonName, "geecache e2e node");
        node.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let node_key = KeyPair::generate().map_err(|e| made("the node's key", e))?;
        let node = node
            .signed_by(&node_key, &issuer)
            .map_err(|e| made("the node certificate", e))?;

        std::fs::create_dir_all(dir)?;
        let pki = Pki {
            ca: dir.join("ca.crt"),
            cert: dir.join("node.crt"),
            key: dir.join("node.key"),
        };
        let write = |path: &Path, text: String| {
            std::fs::write(path, text)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        write(&pki.ca, issuer.pem())?;
        write(&pki.cert, node.pem())?;
        write(&pki.key, node_key.serialize_pem())?;
        Ok(pki)
    }

    /// The `geecache serve` flags that serve with these files and check peers against the CA.
    #[must_use]
    pub fn serve_args(&self) -> Vec<String> {
        let path = |p: &PathBuf| p.display().to_string();
        vec![
            "--tls-cert".to_owned(),
            path(&self.cert),
            "--tls-key".to_owned(),
            path(&self.key),
            "--tls-ca".to_owned(),
            path(&self.ca),
        ]
    }
}

/// Whether a client keeps sessions to resume them on its next connection to the same server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resumption {
    /// Every connection makes a full handshake (certificate sent, signed and checked).
    Off,
    /// A connection resumes the session of an earlier one when it can (a TLS 1.3 ticket):
    /// a key exchange still, but no certificate.
    On,
}

/// A TLS client that trusts the CA certificates in the PEM file `ca`, shows no certificate of
/// its own, and speaks HTTP/1.1 (offered by ALPN, since a node offers `h2` as well).
///
/// # Errors
///
/// When the file cannot be read, holds no certificate, or one is not a usable CA.
pub fn client_config(ca: &Path, resumption: Resumption) -> io::Result<Arc<ClientConfig>> {
    let bad = |problem: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("CA {}: {problem}", ca.display()),
        )
    };
    let pem = std::fs::read(ca)
        .map_err(|e| io::Error::new(e.kind(), format!("CA {}: {e}", ca.display())))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not readable PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block found".to_owned()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a usable CA: {e}")))?;
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(format!("the TLS client: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if resumption == Resumption::Off {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// The cryptography, the server's own: `ring` (rustls deprecates its provider in favour of
/// aws-lc-rs, which needs cmake and a C toolchain to build; the classical key exchanges that
/// `ring` has are what the nodes offer). X25519 first, as OpenSSL, Go and browsers send it:
/// `ring`'s own order puts P-384 first, which no common client does.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::kx_group;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    Arc::new(provider)
}

#[cfg(test)]
mod tests;
