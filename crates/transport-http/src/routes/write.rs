//! Writes: `PUT` a key's value and `DELETE` a whole group, from clients and between peers.
//!
//! A client's write (`/api`, or the peer route without the peer mark) is the cluster-wide one:
//! [`Group::set`], [`Group::purge`]. A peer's write is the owner's part of it:
//! [`Group::set_for_peer`] stores the value here and tells the others to drop their copies;
//! [`Group::purge_local`] empties this node only. Answers to peers carry a confirmation
//! header, because a Go groupcache node serves every method as a `GET` and answers 200.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use geecache_group::{Group, Loaded, SetError, Written};

use super::{API_BASE, App, unconfirmed_answer};
use crate::failure::{Failure, quoted};
use crate::kind::ErrorKind;
use crate::path::Decoding;
use crate::{PEER_HEADER, TTL_HEADER, names};

/// `PUT /api/{group}/{key}`: a client sets a value across the cluster.
pub(super) async fn set_from_client(
    State(app): State<App>,
    request: Request,
) -> Result<Response, Failure> {
    set(app, request, API_BASE, Decoding::Percent).await
}

/// `PUT {base}{group}/{key}`: a peer hands this node, the owner, a value to store; unmarked, a
/// client's set as on `/api`.
pub(super) async fn set_from_peer(
    State(app): State<App>,
    request: Request,
) -> Result<Response, Failure> {
    let base = app.0.base.clone();
    set(app, request, &base, Decoding::Form).await
}

async fn set(
    app: App,
    request: Request,
    prefix: &str,
    decoding: Decoding,
) -> Result<Response, Failure> {
    let (group, key) = app.locate(request.uri(), prefix, decoding)?;
    let key = key.into_owned();
    let from_peer = is_peer(request.headers());
    let ttl = ttl(request.headers())?;
    let limit = app.0.max_value_bytes;
    let body = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| {
            Failure::new(
                ErrorKind::TooLarge,
                format!("a value may hold at most {limit} bytes"),
            )
        })?;
    let value = Loaded::from(body.to_vec()).with_optional_ttl(ttl);
    let written = match from_peer {
        true => group.set_for_peer(&key, value).await,
        false => group.set(&key, value).await,
    };
    let written = written.map_err(|e| set_failure(&group, &key, e))?;
    Ok(written_answer(&written))
}

/// `DELETE /api/{group}`: a client purges the group on every member.
pub(super) async fn purge_from_client(app: App, request: Request) -> Result<Response, Failure> {
    let group = app.locate_bare_group(request.uri(), API_BASE, Decoding::Percent)?;
    let purged = group.purge().await;
    Ok(unconfirmed_answer(&purged.unconfirmed, "purged"))
}

/// `DELETE {base}{group}`: a peer purges the group here; unmarked, a client's purge.
pub(super) async fn purge_from_peer(app: App, request: Request) -> Result<Response, Failure> {
    let base = app.0.base.clone();
    let group = app.locate_bare_group(request.uri(), &base, Decoding::Form)?;
    let mut response = match is_peer(request.headers()) {
        true => {
            group.purge_local();
            unconfirmed_answer(&[], "purged")
        }
        false => unconfirmed_answer(&group.purge().await.unconfirmed, "purged"),
    };
    (response.headers_mut()).insert(names::REMOVED, HeaderValue::from_static("1"));
    Ok(response)
}

/// Whether a `DELETE` names a group and no key: `{prefix}{group}`, nothing after.
pub(super) fn is_group_path(request: &Request, prefix: &str) -> bool {
    (request.uri().path().strip_prefix(prefix)).is_some_and(|rest| !rest.contains('/'))
}

fn written_answer(written: &Written) -> Response {
    let mut response = unconfirmed_answer(&written.unconfirmed, "stored");
    if written.stored_here {
        (response.headers_mut()).insert(names::STORED, HeaderValue::from_static("1"));
    }
    response
}

fn set_failure(group: &Group, key: &str, error: SetError) -> Failure {
    match error {
        SetError::EmptyKey => Failure::new(ErrorKind::BadPath, "empty key"),
        SetError::Rejected(rejected) => Failure::new(ErrorKind::InvalidKey, rejected.to_string()),
        SetError::Owner { .. } => Failure::new(
            ErrorKind::OwnerUnavailable,
            format!(
                "key {:?} in group {:?} not stored: {error}",
                quoted(key),
                group.name()
            ),
        ),
        _ => Failure::new(ErrorKind::Internal, error.to_string()),
    }
}

fn is_peer(headers: &HeaderMap) -> bool {
    headers
        .get(PEER_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1")
}

/// The `x-geecache-ttl` header: seconds, more than zero, at most a hundred years.
fn ttl(headers: &HeaderMap) -> Result<Option<Duration>, Failure> {
    let Some(raw) = headers.get(TTL_HEADER) else {
        return Ok(None);
    };
    let seconds = (raw.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 100.0 * 365.0 * 86_400.0);
    match seconds {
        Some(seconds) => Ok(Some(Duration::from_secs_f64(seconds))),
        None => Err(Failure::new(
            ErrorKind::BadBody,
            format!("{TTL_HEADER} must be a number of seconds above 0, e.g. 30 or 0.5"),
        )),
    }
}
