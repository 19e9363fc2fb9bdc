//! The shared secret between peers, sent as `authorization: Bearer <token>` metadata.

use tonic::metadata::{AsciiMetadataValue, MetadataMap};

use crate::error::Error;

/// A shared secret, checked in constant time.
#[derive(Clone)]
pub(crate) struct Token {
    secret: Box<[u8]>,
    /// `Bearer <secret>`, ready to send.
    value: AsciiMetadataValue,
}

impl Token {
    pub(crate) fn new(secret: &str) -> Result<Token, Error> {
        if secret.is_empty() {
            return Err(Error::InvalidToken("empty"));
        }
        // Visible ASCII only, as for the HTTP transport: the same token serves both.
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidToken(
                "only visible ASCII characters (no spaces) are allowed",
            ));
        }
        let value = AsciiMetadataValue::try_from(format!("Bearer {secret}"))
            .map_err(|_| Error::InvalidToken("not a valid metadata value"))?;
        Ok(Token {
            secret: secret.as_bytes().into(),
            value,
        })
    }

    pub(crate) fn from_option(secret: Option<String>) -> Result<Option<Token>, Error> {
        secret.as_deref().map(Token::new).transpose()
    }

    pub(crate) fn value(&self) -> &AsciiMetadataValue {
        &self.value
    }

    /// Whether `metadata` carries `authorization: Bearer <this secret>` (any case of the scheme).
    pub(crate) fn admits(&self, metadata: &MetadataMap) -> bool {
        let Some(value) = metadata.get("authorization") else {
            return false;
        };
        let Some((scheme, presented)) = value.as_bytes().split_at_checked(7) else {
            return false;
        };
        scheme.eq_ignore_ascii_case(b"Bearer ") && constant_time_eq(presented, &self.secret)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Compares in time that depends on the lengths only, never on where the bytes first differ,
/// so answer times cannot be used to guess a token byte by byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
