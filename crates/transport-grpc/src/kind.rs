//! The error vocabulary of the gRPC wire: one kind per way a call can fail, each carried as a
//! status code and named in the `x-geecache-error` metadata entry.

use std::fmt;

use geecache_group::{PeerError, Rejected};
use tonic::{Code, Status};

/// The metadata key naming an error's [`ErrorKind`]. Programs read it, never the message.
pub const ERROR_METADATA: &str = "x-geecache-error";

/// What went wrong with a call, as the `x-geecache-error` metadata entry names it.
///
/// The code alone cannot say it: `NOT_FOUND` is both "no such key" (an answer, passed on to the
/// caller) and "no such group" (this node cannot help; the caller loads the key itself).
///
/// ```
/// use geecache_transport_grpc::ErrorKind;
///
/// assert_eq!(ErrorKind::parse("invalid-key"), Some(ErrorKind::InvalidKey));
/// assert_eq!(ErrorKind::InvalidKey.code(), tonic::Code::InvalidArgument);
/// assert_eq!(ErrorKind::KeyTooLong.code(), tonic::Code::ResourceExhausted);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `NOT_FOUND` `not-found`: the group's source has no value for the key. An answer.
    NotFound,
    /// `INVALID_ARGUMENT` `invalid-key`: the group's source refuses the key. An answer.
    InvalidKey,
    /// `NOT_FOUND` `unknown-group`: this node serves no group of that name.
    UnknownGroup,
    /// `INVALID_ARGUMENT` `bad-request`: an empty group or key, or a field out of range.
    BadRequest,
    /// `RESOURCE_EXHAUSTED` `key-too-long`: the key is over the node's limit.
    KeyTooLong,
    /// `UNAUTHENTICATED` `unauthorized`: the node needs a bearer token and the call had none,
    /// or another.
    Unauthorized,
    /// `INTERNAL` `load-failed`: the source failed (or its loader panicked).
    LoadFailed,
    /// `UNAVAILABLE` `shutting-down`: the node is draining and takes no new work.
    ShuttingDown,
    /// `INTERNAL` `internal`: anything else.
    Internal,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::NotFound,
        ErrorKind::InvalidKey,
        ErrorKind::UnknownGroup,
        ErrorKind::BadRequest,
        ErrorKind::KeyTooLong,
        ErrorKind::Unauthorized,
        ErrorKind::LoadFailed,
        ErrorKind::ShuttingDown,
        ErrorKind::Internal,
    ];

    /// The kind's name on the wire, e.g. `"not-found"`: the same names as the HTTP
    /// transport's `x-geecache-error` header, where both have the kind.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::InvalidKey => "invalid-key",
            ErrorKind::UnknownGroup => "unknown-group",
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::KeyTooLong => "key-too-long",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::LoadFailed => "load-failed",
            ErrorKind::ShuttingDown => "shutting-down",
            ErrorKind::Internal => "internal",
        }
    }

    /// The kind a metadata value names; `None` for a name this version does not know.
    #[must_use]
    pub fn parse(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The status code calls failing with this kind end with.
    #[must_use]
    pub fn code(self) -> Code {
        match self {
            ErrorKind::NotFound | ErrorKind::UnknownGroup => Code::NotFound,
            ErrorKind::InvalidKey | ErrorKind::BadRequest => Code::InvalidArgument,
            ErrorKind::KeyTooLong => Code::ResourceExhausted,
            ErrorKind::Unauthorized => Code::Unauthenticated,
            ErrorKind::LoadFailed | ErrorKind::Internal => Code::Internal,
            ErrorKind::ShuttingDown => Code::Unavailable,
        }
    }

    /// A status of this kind with `message`, the kind named in its metadata.
    #[must_use]
    pub fn status(self, message: impl Into<String>) -> Status {
        let mut status = Status::new(self.code(), message);
        status.metadata_mut().insert(
            ERROR_METADATA,
            tonic::metadata::MetadataValue::from_static(self.as_str()),
        );
        status
    }

    /// The kind a status names, when its code is the kind's own.
    #[must_use]
    pub fn of(status: &Status) -> Option<ErrorKind> {
        status
            .metadata()
            .get(ERROR_METADATA)
            .and_then(|v| v.to_str().ok())
            .and_then(ErrorKind::parse)
            .filter(|kind| kind.code() == status.code())
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much of a status message is kept in a peer error.
const MESSAGE_CHARS: usize = 200;

/// The group's view of a failed call: only this node's own "no such key" and "the source
/// refuses this key" are answers; every other status (an unknown group, a wrong token, a
/// proxy's refusal) says nothing about the key and makes the caller load it itself.
pub(crate) fn peer_error(status: &Status) -> PeerError {
    let message: String = status.message().chars().take(MESSAGE_CHARS).collect();
    match ErrorKind::of(status) {
        Some(ErrorKind::NotFound) => return PeerError::NotFound,
        Some(ErrorKind::InvalidKey) => {
            let reason = message.strip_prefix("invalid key: ").unwrap_or(&message);
            return PeerError::Rejected(Rejected::new(reason));
        }
        _ => {}
    }
    match status.code() {
        // The connection failed, was refused, or the node is draining (its GOAWAY refuses the
        // streams it will not serve): the peer could not be reached.
        Code::Unavailable | Code::Cancelled => {
            PeerError::Unavailable(format!("{}: {message}", code_name(status.code())).into())
        }
        // A status with a source was made here, not received: tonic's UNKNOWN "transport
        // error" is a connection that broke under the call (the peer died), which must open
        // the peer's circuit at once like a refused connection, not after three failures.
        Code::Unknown if std::error::Error::source(status).is_some() => {
            PeerError::Unavailable(format!("connection broke: {message}").into())
        }
        // Tonic answers OUT_OF_RANGE for a message over a size limit, on either side.
        Code::OutOfRange => PeerError::Malformed(message),
        code => PeerError::Status {
            status: http_status(code),
            message: format!("{}: {message}", code_name(code)),
        },
    }
}

/// The HTTP status a gRPC code corresponds to, as the gRPC-to-HTTP mapping gives it: a peer
/// error names an HTTP-like status whatever the transport, so logs and metrics read alike.
fn http_status(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::ResourceExhausted => 429,
        Code::Cancelled => 499,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
        _ => 500,
    }
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
