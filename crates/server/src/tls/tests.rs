//! Loading and reloading the TLS files: errors that name the file, a reload that keeps the
//! old material when the new files are bad, and one load of the key per change.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use super::*;

/// A CA and a certificate it signed for `127.0.0.1`, as PEM text.
pub(crate) struct Pem {
    pub(crate) ca: String,
    pub(crate) cert: String,
    pub(crate) key: String,
}

/// Makes a CA and a node certificate signed by it.
pub(crate) fn pem() -> Pem {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Pem {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// Writes `pem` into `dir` and returns the files, with client authentication `mode`.
pub(crate) fn write(dir: &Path, pem: &Pem, mode: ClientAuth) -> TlsFiles {
    let files = TlsFiles {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        ca: dir.join("ca.crt"),
        client_auth: mode,
    };
    std::fs::write(&files.cert, &pem.cert).unwrap();
    std::fs::write(&files.key, &pem.key).unwrap();
    std::fs::write(&files.ca, &pem.ca).unwrap();
    files
}

#[test]
fn good_files_load_once() {
    let dir = tempfile::tempdir().unwrap();
    let files = write(dir.path(), &pem(), ClientAuth::Required);
    let tls = NodeTls::load(&files).unwrap();
    assert_eq!(tls.key_loads(), 1);
    // Both configurations share the one material: asking for them loads nothing.
    let _ = (
        tls.server_config(),
        tls.client_config(),
        tls.client_config(),
    );
    assert_eq!(tls.key_loads(), 1);
}

#[test]
fn a_malformed_certificate_is_named_with_its_problem() {
    let dir = tempfile::tempdir().unwrap();
    let files = write(dir.path(), &pem(), ClientAuth::None);
    std::fs::write(&files.cert, "not a certificate\n").unwrap();
    let error = NodeTls::load(&files).unwrap_err().to_string();
    assert!(error.starts_with("certificate "), "{error}");
    assert!(error.contains("tls.crt"), "{error}");
    assert!(error.contains("no CERTIFICATE block"), "{error}");
}

#[test]
fn a_truncated_certificate_block_is_named_with_its_problem() {
    let dir = tempfile::tempdir().unwrap();
    let pem = pem();
    let files = write(dir.path(), &pem, ClientAuth::None);
    let cut = &pem.cert[..pem.cert.len() / 2];
    std::fs::write(&files.cert, cut).unwrap();
    let error = NodeTls::load(&files).unwrap_err().to_string();
    assert!(error.contains("tls.crt"), "{error}");
}

#[test]
fn a_key_file_without_a_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let pem = pem();
    let files = write(dir.path(), &pem, ClientAuth::None);
    std::fs::write(&files.key, &pem.cert).unwrap();
    let error = NodeTls::load(&files).unwrap_err().to_string();
    assert!(error.starts_with("key "), "{error}");
    assert!(error.contains("tls.key"), "{error}");
    assert!(error.contains("no PRIVATE KEY block"), "{error}");
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let files = write(dir.path(), &pem(), ClientAuth::None);
    std::fs::write(&files.key, pem().key).unwrap();
    let error = NodeTls::load(&files).unwrap_err().to_string();
    assert!(
        error.contains("tls.key") && error.contains("tls.crt"),
        "{error}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let files = write(dir.path(), &pem(), ClientAuth::None);
    std::fs::remove_file(&files.ca).unwrap();
    let error = NodeTls::load(&files).unwrap_err().to_string();
    assert!(
        error.starts_with("CA ") && error.contains("ca.crt"),
        "{error}"
    );
    assert!(error.contains("cannot read it"), "{error}");
}

#[test]
fn a_reload_swaps_only_when_the_files_change_and_keeps_the_old_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let files = write(dir.path(), &pem(), ClientAuth::Required);
    let tls = NodeTls::load(&files).unwrap();
    assert_eq!(tls.reload(false).unwrap(), Reloaded::Unchanged);
    assert_eq!(tls.key_loads(), 1);

    write(dir.path(), &pem(), ClientAuth::Required);
    assert_eq!(tls.reload(false).unwrap(), Reloaded::Swapped);
    assert_eq!(tls.key_loads(), 2);

    // Half-written (as a copy in progress): refused, reported once, the material in use stays.
    std::fs::write(&files.key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    let error = tls.reload(false).unwrap_err().to_string();
    assert!(error.contains("tls.key"), "{error}");
    assert_eq!(
        tls.reload(false).unwrap(),
        Reloaded::Unchanged,
        "reported once"
    );
    assert_eq!(tls.key_loads(), 2);
    // A forced reload (SIGHUP) tries again and says why again.
    assert!(tls.reload(true).is_err());
}

#[test]
fn client_auth_modes_parse() {
    assert_eq!("required".parse(), Ok(ClientAuth::Required));
    assert_eq!(" Optional ".parse(), Ok(ClientAuth::Optional));
    assert_eq!("none".parse(), Ok(ClientAuth::None));
    assert_eq!("yes".parse::<ClientAuth>(), Err(()));
}
