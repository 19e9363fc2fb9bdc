//! TLS on both ends of a connection: why a handshake was refused, the plain-HTTP answer a TLS
//! port gives, and the name a peer's certificate must carry.
//!
//! The transport takes rustls configurations ready made ([`ServeConfig::tls`] and
//! [`PoolBuilder::tls`]) and reads no file: where certificates come from, and when they are
//! replaced, is the application's. A configuration whose certificate resolver and verifiers
//! can be swapped (as the `geecache` binary builds) rotates certificates without the
//! transport noticing.
//!
//! [`ServeConfig::tls`]: crate::ServeConfig::tls
//! [`PoolBuilder::tls`]: crate::PoolBuilder::tls

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{AlertDescription, CertificateError};

/// Why a TLS handshake on a serving port failed: a fixed set, fit for a metric's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// A certificate was expired or not yet valid (the client's, or ours as the client saw it).
    Expired,
    /// A certificate was not signed by a trusted CA (the client's, or ours as the client saw it).
    UnknownCa,
    /// A certificate does not name the host it was presented for.
    BadName,
    /// Client authentication is required and the client sent no certificate.
    NoClientCert,
    /// The client spoke plain HTTP (or anything else that is not TLS) to the TLS port.
    Plaintext,
    /// The handshake did not finish within the handshake timeout.
    Timeout,
    /// Any other failure: no protocol or cipher in common, a malformed message, a client
    /// that hung up half-way.
    Other,
}

impl HandshakeFailure {
    /// Every reason, in a fixed order (for metrics that show each at zero from the start).
    pub const ALL: [HandshakeFailure; 7] = [
        HandshakeFailure::Expired,
        HandshakeFailure::UnknownCa,
        HandshakeFailure::BadName,
        HandshakeFailure::NoClientCert,
        HandshakeFailure::Plaintext,
        HandshakeFailure::Timeout,
        HandshakeFailure::Other,
    ];

    /// The reason's name: `expired`, `unknown_ca`, `bad_name`, `no_client_cert`,
    /// `plaintext`, `timeout` or `other`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeFailure::Expired => "expired",
            HandshakeFailure::UnknownCa => "unknown_ca",
            HandshakeFailure::BadName => "bad_name",
            HandshakeFailure::NoClientCert => "no_client_cert",
            HandshakeFailure::Plaintext => "plaintext",
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::Other => "other",
        }
    }

    /// The reason of a failed handshake, from the error tokio-rustls returned (a rustls
    /// error inside an `io::Error`).
    #[must_use]
    pub fn of(error: &io::Error) -> HandshakeFailure {
        let Some(tls) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        else {
            return HandshakeFailure::Other;
        };
        match tls {
            rustls::Error::NoCertificatesPresented => HandshakeFailure::NoClientCert,
            rustls::Error::InvalidCertificate(certificate) => of_certificate(certificate),
            // The client refused our certificate and said why.
            rustls::Error::AlertReceived(alert) => match alert {
                AlertDescription::CertificateExpired => HandshakeFailure::Expired,
                AlertDescription::UnknownCA => HandshakeFailure::UnknownCa,
                AlertDescription::CertificateRequired => HandshakeFailure::NoClientCert,
                _ => HandshakeFailure::Other,
            },
            _ => HandshakeFailure::Other,
        }
    }
}

fn of_certificate(error: &CertificateError) -> HandshakeFailure {
    match error {
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => HandshakeFailure::Expired,
        // A signature that does not verify is a certificate no trusted CA signed.
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            HandshakeFailure::UnknownCa
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            HandshakeFailure::BadName
        }
        _ => HandshakeFailure::Other,
    }
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hears every failed handshake on a serving port, e.g. to count them by reason.
pub type HandshakeObserver = Arc<dyn Fn(HandshakeFailure) + Send + Sync>;

/// The first byte of every TLS connection: a handshake record (`ClientHello`).
pub(crate) const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a plain-HTTP request to a TLS port is answered, before the connection is closed: a
/// person with `curl http://` reads why at once, where a bare reset would say nothing.
pub(crate) const PLAINTEXT_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
connection: close\r\n\
content-type: text/plain; charset=utf-8\r\n\
x-geecache-error: tls-required\r\n\
content-length: 52\r\n\
\r\n\
this port speaks TLS only: use https:// to reach it\n";

/// Whether `first`, the first byte a client sent, starts a plain-text request (an HTTP/1
/// method, or the HTTP/2 preface `PRI`), rather than a TLS record.
pub(crate) fn looks_like_http(first: u8) -> bool {
    first.is_ascii_uppercase()
}

/// The name a peer's certificate must carry for `authority` (`host[:port]` of its URL): the
/// host alone, an IP address for a literal one (brackets dropped).
pub(crate) fn server_name(authority: &str) -> Result<ServerName<'static>, &'static str> {
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed
            .split_once(']')
            .map(|(ip, _)| ip)
            .ok_or("unclosed '[' in the host")?,
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    ServerName::try_from(host.to_owned()).map_err(|_| "host is not a valid TLS server name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_drop_the_port_and_brackets() {
        assert_eq!(
            server_name("node-1.cache:8443").unwrap(),
            ServerName::try_from("node-1.cache").unwrap()
        );
        assert_eq!(
            server_name("10.0.0.5:8443").unwrap(),
            ServerName::try_from("10.0.0.5").unwrap()
        );
        assert_eq!(
            server_name("[::1]:8443").unwrap(),
            ServerName::try_from("::1").unwrap()
        );
        assert!(server_name("[::1:8443").is_err());
    }

    #[test]
    fn the_plaintext_answer_announces_its_length() {
        let (head, body) = std::str::from_utf8(PLAINTEXT_ANSWER)
            .unwrap()
            .split_once("\r\n\r\n")
            .unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }

    #[test]
    fn the_plaintext_answer_names_its_kind_and_status() {
        let kind = crate::ErrorKind::TlsRequired;
        let text = std::str::from_utf8(PLAINTEXT_ANSWER).unwrap();
        assert!(text.starts_with(&format!("HTTP/1.1 {} ", kind.status().as_u16())));
        assert!(text.contains(&format!("x-geecache-error: {kind}\r\n")));
    }

    #[test]
    fn requests_and_the_h2_preface_look_like_http_and_a_client_hello_does_not() {
        for start in [b"GET /", b"POST ", b"PRI *", b"HEAD "] {
            assert!(looks_like_http(start[0]));
        }
        assert!(!looks_like_http(TLS_HANDSHAKE_RECORD));
    }

    #[test]
    fn rustls_errors_map_to_reasons() {
        let wrap = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let cases = [
            (
                rustls::Error::NoCertificatesPresented,
                HandshakeFailure::NoClientCert,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Expired),
                HandshakeFailure::Expired,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                HandshakeFailure::UnknownCa,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                HandshakeFailure::BadName,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::UnknownCA),
                HandshakeFailure::UnknownCa,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
                HandshakeFailure::Other,
            ),
        ];
        for (error, reason) in cases {
            assert_eq!(HandshakeFailure::of(&wrap(error)), reason);
        }
        assert_eq!(
            HandshakeFailure::of(&io::Error::from(io::ErrorKind::UnexpectedEof)),
            HandshakeFailure::Other
        );
    }
}
