//! What both configurations read at each handshake, swapped whole on a reload.
//!
//! rustls has no "replace the certificate" call on a configuration in use; it asks a
//! certificate resolver and a verifier at every handshake instead. So the configurations are
//! built once, around resolvers and verifiers that read the [`Swap`], and a reload replaces
//! what the `Swap` holds. The alternative, a new `ServerConfig` per reload handed to the
//! accept loop, would need the transport to know about reloading; this way it never does, and
//! connections already open keep the session they negotiated.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use super::{ClientAuth, TlsError, provider};

/// The material in use: the node's certificate and key, and the verifiers built from the CA.
pub(super) struct Swap {
    client_auth: ClientAuth,
    current: RwLock<Current>,
}

#[derive(Clone)]
struct Current {
    key: Arc<CertifiedKey>,
    peers: Arc<dyn ServerCertVerifier>,
    callers: Option<Arc<dyn ClientCertVerifier>>,
}

impl Swap {
    pub(super) fn new(
        key: Arc<CertifiedKey>,
        roots: &Arc<RootCertStore>,
        client_auth: ClientAuth,
    ) -> Result<Swap, TlsError> {
        let current = Current::build(key, roots, client_auth)?;
        Ok(Swap {
            client_auth,
            current: RwLock::new(current),
        })
    }

    /// Puts new material in place for the handshakes that follow.
    pub(super) fn replace(
        &self,
        key: Arc<CertifiedKey>,
        roots: &Arc<RootCertStore>,
    ) -> Result<(), TlsError> {
        let current = Current::build(key, roots, self.client_auth)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = current;
        Ok(())
    }

    fn current(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The server configuration: this node's certificate, callers checked as `client_auth`
    /// says. ALPN is the transport's to set.
    pub(super) fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions");
        let builder = match self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional | ClientAuth::Required => {
                builder.with_client_cert_verifier(Arc::new(Callers(Arc::clone(self))))
            }
        };
        Arc::new(builder.with_cert_resolver(Arc::new(OwnCert(Arc::clone(self)))))
    }

    /// The client configuration: peers checked against the CA, this node's certificate shown
    /// when a peer asks for one.
    pub(super) fn client_config(self: &Arc<Self>) -> Arc<rustls::ClientConfig> {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            // "Dangerous" in rustls's words only because it is a verifier of our own: it
            // hands every call to rustls's WebPKI verifier built from the CA.
            .with_custom_certificate_verifier(Arc::new(Peers(Arc::clone(self))))
            .with_client_cert_resolver(Arc::new(OwnCert(Arc::clone(self))));
        Arc::new(config)
    }
}

impl Current {
    fn build(
        key: Arc<CertifiedKey>,
        roots: &Arc<RootCertStore>,
        client_auth: ClientAuth,
    ) -> Result<Current, TlsError> {
        let rustls_error = |what: &str, e: &dyn fmt::Display| TlsError::Rustls {
            what: what.to_owned(),
            source: rustls::Error::General(e.to_string()),
        };
        let peers: Arc<dyn ServerCertVerifier> =
            WebPkiServerVerifier::builder_with_provider(Arc::clone(roots), provider())
                .build()
                .map_err(|e| rustls_error("the CA as a peer verifier", &e))?;
        let callers: Option<Arc<dyn ClientCertVerifier>> = match client_auth {
            ClientAuth::None => None,
            ClientAuth::Optional => Some(
                WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), provider())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| rustls_error("the CA as a client verifier", &e))?,
            ),
            ClientAuth::Required => Some(
                WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), provider())
                    .build()
                    .map_err(|e| rustls_error("the CA as a client verifier", &e))?,
            ),
        };
        Ok(Current {
            key,
            peers,
            callers,
        })
    }
}

/// The node's own certificate, as a server and as a client of its peers: one key, loaded
/// once, for both roles and both transports.
struct OwnCert(Arc<Swap>);

impl ResolvesServerCert for OwnCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().key)
    }
}

impl ResolvesClientCert for OwnCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().key)
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Checks a peer's certificate against the CA in use.
struct Peers(Arc<Swap>);

impl ServerCertVerifier for Peers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0.current().peers.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        (self.0.current().peers).verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        (self.0.current().peers).verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.current().peers.supported_verify_schemes()
    }
}

/// Checks a caller's certificate against the CA in use.
struct Callers(Arc<Swap>);

impl Callers {
    fn inner(&self) -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
        // Only built into a configuration when client authentication is on.
        (self.0.current().callers).ok_or(rustls::Error::General(
            "client authentication is off".to_owned(),
        ))
    }
}

impl ClientCertVerifier for Callers {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth == ClientAuth::Required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The names of the CAs cannot be lent out of a lock that a reload may take. An empty
        // list is allowed: it tells the client "any certificate you have", and a node has
        // exactly one.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner()?
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner()
            .map(|inner| inner.supported_verify_schemes())
            .unwrap_or_default()
    }
}

// The traits ask for `Debug`; the material is not printed.
impl fmt::Debug for OwnCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnCert")
    }
}

impl fmt::Debug for Peers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Peers")
    }
}

impl fmt::Debug for Callers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Callers")
    }
}
