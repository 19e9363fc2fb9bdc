//! Shared-secret bearer tokens, and the tower layer that requires one.

use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use http::header::{AUTHORIZATION, HeaderValue};
use http::{HeaderMap, Request};
use tower::{Layer, Service};

use crate::error::Error;
use crate::failure::{Failure, quoted};

/// A [`Layer`] that answers 401 `unauthorized` to every request without
/// `Authorization: Bearer <token>`, and passes the rest on.
///
/// The router puts one in front of each audience's routes that has a token (peer and admin
/// routes share the peer token; the client routes have their own), with
/// [`Router::route_layer`](axum::Router::route_layer), so a path no route matches is still
/// answered `no-route`. An application that adds routes of its own can guard them the same
/// way:
///
/// ```
/// use axum::{Router, routing::get};
/// use geecache_transport_http::RequireBearer;
///
/// let guard = RequireBearer::new("s3cret")?;
/// let app: Router = Router::new().route("/debug", get(|| async { "ok" })).route_layer(guard);
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RequireBearer {
    token: Arc<Token>,
}

impl RequireBearer {
    /// A layer requiring `token`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidToken`] for an empty token or one a header cannot carry.
    pub fn new(token: &str) -> Result<Self, Error> {
        Ok(RequireBearer {
            token: Arc::new(Token::new(token)?),
        })
    }

    pub(crate) fn from_token(token: Token) -> Self {
        RequireBearer {
            token: Arc::new(token),
        }
    }
}

impl<S> Layer<S> for RequireBearer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerService {
            inner,
            token: Arc::clone(&self.token),
        }
    }
}

/// The service [`RequireBearer`] wraps around a route.
#[derive(Clone, Debug)]
pub struct BearerService<S> {
    inner: S,
    token: Arc<Token>,
}

impl<S, B> Service<Request<B>> for BearerService<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if self.token.admits(request.headers()) {
            return Either::Right(self.inner.call(request));
        }
        tracing::warn!(
            path = %quoted(request.uri().path()),
            presented = request.headers().contains_key(AUTHORIZATION),
            "rejected request: missing or wrong bearer token"
        );
        Either::Left(ready(Ok(Failure::unauthorized().into_response())))
    }
}

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
        // The scheme is case-insensitive (RFC 9110, section 11.1): `bearer T` is `Bearer T`.
        let Some((scheme, presented)) = value.as_bytes().split_at_checked(7) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(b"Bearer ") {
            return false;
        }
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
