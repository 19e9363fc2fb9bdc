//! The TLS settings: the certificate, key and CA files and the client-authentication mode, and
//! the scheme every node's URL must then have.

use std::path::PathBuf;

use super::error::ConfigError;
use super::layers::{Layers, ids};
use crate::tls::{ClientAuth, TlsFiles};

/// The TLS files and mode: certificate, key and CA all three, or none of them. The files are
/// read later, once (`tls::NodeTls::load`), so that their errors name the file's problem.
pub(super) fn resolve_tls(layers: &Layers<'_>) -> Result<Option<TlsFiles>, ConfigError> {
    let (args, file) = (layers.args, layers.file);
    let cert = layers.pick(
        ids::TLS_CERT,
        args.tls_cert.as_ref(),
        file.tls_cert.as_ref(),
    );
    let key = layers.pick(ids::TLS_KEY, args.tls_key.as_ref(), file.tls_key.as_ref());
    let ca = layers.pick(ids::TLS_CA, args.tls_ca.as_ref(), file.tls_ca.as_ref());
    let client_auth = match layers.pick(
        ids::TLS_CLIENT_AUTH,
        args.tls_client_auth.as_ref(),
        file.tls_client_auth.as_ref(),
    ) {
        None => None,
        Some((text, field)) => Some(text.parse::<ClientAuth>().map_err(|()| {
            ConfigError::invalid(
                &field,
                &text,
                "unknown client authentication mode",
                "expected required (mutual TLS), optional (a certificate is asked for; /api \
                 clients may use the token instead) or none",
            )
        })?),
    };
    let (cert, key, ca) = match (cert, key, ca) {
        (None, None, None) => {
            if client_auth.is_some_and(|mode| mode != ClientAuth::None) {
                return Err(ConfigError::Missing(
                    "--tls-client-auth needs TLS: give --tls-cert, --tls-key and --tls-ca (or \
                     tls_cert, tls_key and tls_ca in the config file)"
                        .to_owned(),
                ));
            }
            return Ok(None);
        }
        (Some(cert), Some(key), Some(ca)) => (cert, key, ca),
        (cert, key, ca) => {
            let missing: Vec<&str> = [
                (cert.is_none(), "--tls-cert"),
                (key.is_none(), "--tls-key"),
                (ca.is_none(), "--tls-ca"),
            ]
            .into_iter()
            .filter_map(|(missing, flag)| missing.then_some(flag))
            .collect();
            return Err(ConfigError::Missing(format!(
                "TLS needs --tls-cert, --tls-key and --tls-ca together (or tls_cert, tls_key and \
                 tls_ca in the config file); missing: {}. The CA checks the peers' certificates: \
                 a node serving TLS dials its peers over TLS too",
                missing.join(", ")
            )));
        }
    };
    let path = |(text, _): (String, _)| PathBuf::from(text.trim());
    Ok(Some(TlsFiles {
        cert: path(cert),
        key: path(key),
        ca: path(ca),
        client_auth: client_auth.unwrap_or_default(),
    }))
}

/// A cluster is all `https://` (with TLS) or all `http://` (without): a mixed one would send
/// values and tokens in clear text to some members, or dial TLS with nothing to check a peer
/// by. Members learned later (etcd) are held to the same rule when they arrive.
pub(super) fn check_schemes(
    tls: bool,
    self_url: Option<&str>,
    peers: &[String],
) -> Result<(), ConfigError> {
    let wanted = if tls { "https://" } else { "http://" };
    let wrong: Vec<&str> = (self_url.iter().copied())
        .chain(peers.iter().map(String::as_str))
        .filter(|url| !url.starts_with(wanted))
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    Err(ConfigError::Missing(if tls {
        format!(
            "with TLS (--tls-cert) every node's URL must be https://, but {} {} http://: a \
             cluster mixing http and https peers is refused",
            wrong.join(", "),
            if wrong.len() == 1 { "is" } else { "are" }
        )
    } else {
        format!(
            "{} {} https://, but this node has no TLS: give it --tls-cert, --tls-key and \
             --tls-ca, or use http:// for every node (a cluster mixing http and https peers is \
             refused)",
            wrong.join(", "),
            if wrong.len() == 1 { "is" } else { "are" }
        )
    }))
}
