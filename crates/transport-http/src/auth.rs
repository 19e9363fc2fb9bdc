//! Shared-secret bearer tokens.

use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderValue};

use crate::error::Error;

/// A shared secret, checked in constant time.
#[derive(Clone)]
pub(crate) struct Token {
    secret: Box<[u8]>,
    /// `Bearer <secret>`, ready to send; marked sensitive so it is never logged by hyper.
    header: HeaderValue,
}

impl Token {
    pub(crate) fn new(secret: &str) -> Result<Token, Error> {
        if secret.is_empty() {
            return Err(Error::InvalidToken("empty"));
        }
        // Visible ASCII only: a token with spaces or control bytes could not be sent as one
        // header value, and would be cut or rejected along the way.
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidToken(
                "only visible ASCII characters (no spaces) are allowed",
            ));
        }
        let mut header = HeaderValue::try_from(format!("Bearer {secret}"))
            .map_err(|_| Error::InvalidToken("not a valid header value"))?;
        header.set_sensitive(true);
        Ok(Token {
            secret: secret.as_bytes().into(),
            header,
        })
    }

    pub(crate) fn from_option(secret: Option<String>) -> Result<Option<Token>, Error> {
        secret.as_deref().map(Token::new).transpose()
    }

    pub(crate) fn header(&self) -> &HeaderValue {
        &self.header
    }

    /// Whether `headers` carry `Authorization: Bearer <this secret>`.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return false;
        };
        let Some(presented) = value.as_bytes().strip_prefix(b"Bearer ") else {
            return false;
        };
        constant_time_eq(presented, &self.secret)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Compares two byte strings in time that depends on their lengths only, never on where they
/// first differ, so response timing cannot be used to guess a token byte by byte.
///
/// The length itself is not hidden; a token's length says little about its content.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // `black_box` stops the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}
