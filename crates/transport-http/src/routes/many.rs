//! Batch gets: many keys of one group in one request, from a peer (`POST {base}{group}`,
//! protobuf) or from a client (`POST /api/{group}`, JSON).
//!
//! Both answer one result per key, in the order asked, with the group's
//! [`Group::fetch_many`]: a key's value, or why there is none, exactly as a single get of it
//! would answer. Only the request as a whole can fail: a body over the limits is 413, one that
//! does not decode is 400.

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use geecache_group::{Fetched, Group, Origin};
use prost::Message;
use serde::{Deserialize, Serialize};

use super::{API_BASE, App, source_name};
use crate::failure::Failure;
use crate::kind::ErrorKind;
use crate::path::Decoding;
use crate::proto::{GetMany, GetManyAnswer, KeyAnswer};
use crate::{PEER_HEADER, PROTOBUF, names};

/// The most value bytes one batch answer carries. Keys past it are answered `too-large`
/// (a peer then loads them itself, a client asks for them alone) rather than letting one
/// request make the node hold gigabytes for a single answer.
const MAX_ANSWER_BYTES: usize = 32 << 20;

/// `POST {base}{group}`: a peer's [`GetMany`], answered with a [`GetManyAnswer`].
pub(super) async fn from_peer(app: App, request: Request) -> Result<Response, Failure> {
    let group = app.locate_bare_group(request.uri(), &app.0.base, Decoding::Form)?;
    let origin = match is_peer(request.headers()) {
        true => Origin::Peer,
        false => Origin::Client,
    };
    let body = read_body(&app, request.into_body()).await?;
    let keys = GetMany::decode(body)
        .map_err(|e| Failure::new(ErrorKind::BadBody, format!("not a GetMany message: {e}")))?
        .keys;
    let results = fetch(&app, &group, &keys, origin).await?;
    let now = SystemTime::now();
    let mut budget = Budget::default();
    let answers = results
        .into_iter()
        .map(|result| match result.and_then(|f| budget.take(f)) {
            Ok(f) => KeyAnswer::found(f.value, f.ttl, now).with_minute_qps(f.rate),
            Err(failure) => KeyAnswer::failed(failure.kind(), failure.message()),
        })
        .collect();
    let body = Bytes::from(GetManyAnswer { answers }.encode_to_vec());
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF)),
        (names::BATCH, HeaderValue::from_static("1")),
    ];
    Ok((headers, body).into_response())
}

/// `POST /api/{group}` with `{"keys": [...]}`: a client's batch, answered in JSON.
///
/// JSON rather than protobuf because this route is for programs of any language and for
/// `curl`; values are base64, since they are bytes and JSON strings are text.
pub(super) async fn from_client(
    State(app): State<App>,
    request: Request,
) -> Result<Response, Failure> {
    let group = app.locate_bare_group(request.uri(), API_BASE, Decoding::Percent)?;
    let body = read_body(&app, request.into_body()).await?;
    let asked: Asked = serde_json::from_slice(&body).map_err(|e| {
        Failure::new(
            ErrorKind::BadBody,
            format!("the body must be JSON {{\"keys\": [\"...\"]}}: {e}"),
        )
    })?;
    let results = fetch(&app, &group, &asked.keys, Origin::Client).await?;
    let mut budget = Budget::default();
    let results: Vec<Answered> = (asked.keys.into_iter().zip(results))
        .map(|(key, result)| match result.and_then(|f| budget.take(f)) {
            Ok(f) => Answered {
                key,
                value: Some(BASE64.encode(f.value.as_slice())),
                source: Some(source_name(f.source)),
                ttl_ms: f
                    .ttl
                    .map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
                error: None,
                message: None,
            },
            Err(failure) => Answered {
                key,
                value: None,
                source: None,
                ttl_ms: None,
                error: Some(failure.kind().as_str()),
                message: Some(failure.message().to_owned()),
            },
        })
        .collect();
    let body = serde_json::to_vec(&Answers { results })
        .map_err(|e| Failure::new(ErrorKind::Internal, format!("cannot encode answer: {e}")))?;
    let content_type = HeaderValue::from_static("application/json");
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Asked {
    keys: Vec<String>,
}

#[derive(Serialize)]
struct Answers {
    results: Vec<Answered>,
}

#[derive(Serialize)]
struct Answered {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// Value bytes answered so far in one batch.
#[derive(Default)]
struct Budget(usize);

impl Budget {
    fn take(&mut self, fetched: Fetched) -> Result<Fetched, Failure> {
        let len = fetched.value.len();
        if self.0.saturating_add(len) > MAX_ANSWER_BYTES && self.0 > 0 {
            return Err(Failure::new(
                ErrorKind::TooLarge,
                format!(
                    "the batch's answer is over {MAX_ANSWER_BYTES} bytes; ask for this key alone"
                ),
            ));
        }
        self.0 += len;
        Ok(fetched)
    }
}

fn is_peer(headers: &HeaderMap) -> bool {
    headers
        .get(PEER_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1")
}

async fn read_body(app: &App, body: Body) -> Result<Bytes, Failure> {
    let limit = app.0.max_batch_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        Failure::new(
            ErrorKind::TooLarge,
            format!("a batch's body may hold at most {limit} bytes"),
        )
    })
}

/// Each key's result: the group's, or `key-too-long` for a key over the node's limit (which
/// the group never sees, as on the single-key routes).
async fn fetch(
    app: &App,
    group: &Group,
    keys: &[String],
    origin: Origin,
) -> Result<Vec<Result<Fetched, Failure>>, Failure> {
    let max_keys = app.0.max_batch_keys;
    if keys.len() > max_keys {
        return Err(Failure::new(
            ErrorKind::TooLarge,
            format!(
                "a batch may ask for at most {max_keys} keys, not {}",
                keys.len()
            ),
        ));
    }
    let max = app.0.max_key_bytes;
    let fits: Vec<&str> = (keys.iter())
        .filter(|k| k.len() <= max)
        .map(String::as_str)
        .collect();
    let mut fetched = group.fetch_many(&fits, origin).await.into_iter();
    let results = keys
        .iter()
        .map(|key| match key.len() <= max {
            true => match fetched.next() {
                Some(result) => result.map_err(|e| Failure::of_get(group.name(), key, &e)),
                // `fetch_many` answers every key it is given; this is never reached.
                None => Err(Failure::new(ErrorKind::Internal, "no answer for the key")),
            },
            false => Err(Failure::new(
                ErrorKind::KeyTooLong,
                format!("key is {} bytes, over the limit of {max}", key.len()),
            )),
        })
        .collect();
    Ok(results)
}
