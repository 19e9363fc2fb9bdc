//! An error answer: a kind, and a message for people.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use geecache_group::Error as GroupError;

use crate::kind::ErrorKind;
use crate::names;

/// An error answer: the kind decides the status and the `x-geecache-error` header; the
/// message is the plain-text body.
#[derive(Debug)]
pub(crate) struct Failure {
    kind: ErrorKind,
    message: String,
}

impl Failure {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }

    /// The kind of error.
    pub(crate) fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message for people.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The answer to a get that failed in the group.
    pub(crate) fn of_get(group: &str, key: &str, error: &GroupError) -> Self {
        match error {
            GroupError::NotFound => Failure::new(
                ErrorKind::NotFound,
                format!("not found: key {:?} in group {group:?}", quoted(key)),
            ),
            GroupError::Rejected(rejected) => {
                Failure::new(ErrorKind::InvalidKey, rejected.to_string())
            }
            GroupError::EmptyKey => Failure::new(ErrorKind::BadPath, "empty key"),
            GroupError::Load(_) | GroupError::Panicked => {
                Failure::new(ErrorKind::LoadFailed, error.to_string())
            }
            _ => Failure::new(ErrorKind::Internal, error.to_string()),
        }
    }

    pub(crate) fn unauthorized() -> Self {
        Failure::new(ErrorKind::Unauthorized, "missing or wrong bearer token")
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        let mut response = (status, format!("{}\n", self.message)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(names::ERROR, HeaderValue::from_static(self.kind.as_str()));
        if self.kind == ErrorKind::Unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Keys and names are quoted in error messages up to this many characters.
const QUOTED_CHARS: usize = 80;

/// A key or group name shortened for an error message.
pub(crate) fn quoted(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(QUOTED_CHARS) {
        None => std::borrow::Cow::Borrowed(s),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}...", &s[..cut])),
    }
}
