//! The peer routes: groupcache's `GET {base}{group}/{key}`, removals, hand-overs and batch
//! gets between nodes.

use std::time::SystemTime;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use geecache_group::{Fetched, Group, Loaded, Origin, RemoveMode};
use prost::Message;

use super::{App, bad_path, removal_response, with_source};
use crate::failure::{Failure, quoted};
use crate::kind::ErrorKind;
use crate::path::PathError;
use crate::proto::{GetResponse, HandOver};
use crate::{FANOUT_HEADER, PEEK_HEADER, PEER_HEADER, PROTOBUF, TAKEN_HEADER, names};

pub(super) fn routes(base: &str) -> Router<App> {
    // The catch-all `{*rest}` only decides which handler runs; handlers read the raw path
    // from the URI themselves, because the router's own captures are percent-decoded (with
    // `+` left alone) and would lose the difference between `/` and `%2F`.
    Router::new()
        .route(
            &format!("{base}{{*rest}}"),
            get(fetch)
                .delete(remove)
                .post(post)
                .put(super::write::set_from_peer),
        )
        .route(base, any(missing_group))
}

fn is_marked(headers: &HeaderMap, name: &str) -> bool {
    headers.get(name).is_some_and(|v| v.as_bytes() == b"1")
}

async fn fetch(State(app): State<App>, request: Request) -> Result<Response, Failure> {
    // Read in place: the `HeaderMap` and `Uri` extractors would copy them.
    let (headers, uri) = (request.headers(), request.uri());
    let (group, key) = app.locate(uri, &app.0.base, app.0.peer_decoding)?;
    if is_marked(headers, PEEK_HEADER) {
        return peek(&group, &key);
    }
    // Only our own nodes mark their requests. A Go groupcache node sends none: it is then
    // served as groupcache serves it, and may be forwarded to the owner this node knows.
    let origin = match is_marked(headers, PEER_HEADER) {
        true => Origin::Peer,
        false => Origin::Client,
    };
    let fetched = group
        .fetch(&key, origin)
        .await
        .map_err(|e| Failure::of_get(group.name(), &key, &e))?;
    Ok(protobuf_response(fetched))
}

/// A peek: the value if this node holds a copy, else 404 `not-cached`; never a load.
fn peek(group: &Group, key: &str) -> Result<Response, Failure> {
    let cached = group
        .peek(key)
        .map_err(|e| Failure::of_get(group.name(), key, &e))?;
    let Some(fetched) = cached else {
        return Err(Failure::new(
            ErrorKind::NotCached,
            format!(
                "not cached: key {:?} in group {:?}",
                quoted(key),
                group.name()
            ),
        ));
    };
    let mut response = protobuf_response(fetched);
    // Says "this was a peek": a node that ignored the mark and served a full get sends none.
    (response.headers_mut()).insert(names::PEEK, HeaderValue::from_static("hit"));
    Ok(response)
}

fn protobuf_response(fetched: Fetched) -> Response {
    let source = fetched.source;
    let message = GetResponse::with_ttl(fetched.value, fetched.ttl, SystemTime::now())
        .with_minute_qps(fetched.rate);
    let body = Bytes::from(message.encode_to_vec());
    let response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF))],
        body,
    );
    with_source(response.into_response(), source)
}

async fn remove(State(app): State<App>, request: Request) -> Result<Response, Failure> {
    if super::write::is_group_path(&request, &app.0.base) {
        return super::write::purge_from_peer(app, request).await;
    }
    let (headers, uri) = (request.headers(), request.uri());
    let (group, key) = app.locate(uri, &app.0.base, app.0.peer_decoding)?;
    let removal = match (
        is_marked(headers, PEER_HEADER),
        is_marked(headers, FANOUT_HEADER),
    ) {
        // Another node decided this one owns the key: drop it and tell the rest, but never
        // forward, whatever this node's ring says.
        (true, true) => group.remove_for_peer(&key, RemoveMode::Owner).await,
        // "Drop your copy": nothing more.
        (true, false) => group.remove_for_peer(&key, RemoveMode::Local).await,
        // From a client or an operator: remove everywhere.
        (false, _) => group.remove(&key).await,
    };
    Ok(removal_response(&removal))
}

/// `POST {base}{group}/` is a hand-over, `POST {base}{group}` a batch get. A Go groupcache
/// node, which serves every method as a get, answers the batch's path 400 (it has no key)
/// without running its getter; the key-less path of a hand-over is never sent to one.
async fn post(State(app): State<App>, request: Request) -> Result<Response, Failure> {
    match request.uri().path().ends_with('/') {
        true => take(State(app), request).await,
        false => super::many::from_peer(app, request).await,
    }
}

/// The most a hand-over's body may weigh: what a peer answer may weigh by default. A sender
/// batches up to 1 MiB (more only for one larger value), so this leaves room for any value a
/// node could have cached.
const MAX_HANDED_BYTES: usize = 64 << 20;

/// A hand-over, `POST {base}{group}/`: a peer gives this node values for keys it owns (the
/// peer is leaving, or the membership changed). Each value is stored as the node's own; a key
/// the group refuses is left out. Answers 204 with how many values were taken.
async fn take(State(app): State<App>, request: Request) -> Result<Response, Failure> {
    let group = app.locate_group(request.uri(), &app.0.base)?;
    let body = axum::body::to_bytes(request.into_body(), MAX_HANDED_BYTES)
        .await
        .map_err(|e| Failure::new(ErrorKind::TooLarge, format!("hand-over body: {e}")))?;
    let message = HandOver::decode(body).map_err(|e| {
        Failure::new(
            ErrorKind::BadBody,
            format!("hand-over body is not a HandOver message: {e}"),
        )
    })?;
    let now = SystemTime::now();
    let mut taken = 0_usize;
    for handed in message.values {
        let ttl = handed.ttl_at(now);
        let loaded = Loaded::new(handed.value.unwrap_or_default()).with_optional_ttl(ttl);
        // Keys over the limit are refused as they would be in a path.
        if handed.key.len() <= app.0.max_key_bytes && group.take_handed(&handed.key, loaded).is_ok()
        {
            taken += 1;
        }
    }
    let count = HeaderValue::from(taken);
    Ok(([(TAKEN_HEADER, count)], axum::http::StatusCode::NO_CONTENT).into_response())
}

async fn missing_group() -> Failure {
    bad_path(&PathError::EmptyGroup)
}
