//! `geecache get URL GROUP KEY KEY...`: several values in one `POST /api/{group}`.
//!
//! The node answers one JSON result per key, in the order asked, values in base64. Each found
//! value is printed as `KEY: VALUE` (a value that is not one line of text is named by its size;
//! `-o DIR` writes every value whole, to a file per key), each key without a value is named on
//! standard error.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use geecache_transport_http::path;
use http::StatusCode;
use serde::Deserialize;

use crate::cli::GetArgs;
use crate::client;

#[derive(Deserialize)]
struct Answers {
    results: Vec<Answered>,
}

#[derive(Deserialize)]
struct Answered {
    key: String,
    value: Option<String>,
    error: Option<String>,
    message: Option<String>,
}

/// Runs a batch `get`: 0 when every key has a value, 1 when some are not found (and nothing
/// else went wrong), 2 on any other error.
pub(crate) fn run(args: &GetArgs, keys: &[String], runtime: &tokio::runtime::Runtime) -> ExitCode {
    let url = format!(
        "{}/api/{}",
        args.url.trim_end_matches('/'),
        path::encode(&args.group)
    );
    let body = match serde_json::to_vec(&serde_json::json!({ "keys": keys })) {
        Ok(body) => body,
        Err(e) => {
            eprintln!("geecache: cannot encode the keys: {e}");
            return ExitCode::from(2);
        }
    };
    let fetched = runtime.block_on(async {
        let http = crate::get::http_client(args)?;
        let token = args.api_token.as_deref();
        client::post_json(
            &http,
            &url,
            body.into(),
            token,
            args.timeout,
            crate::get::MAX_VALUE,
        )
        .await
    });
    let fetched = match fetched {
        Ok(f) => f,
        Err(client::FetchError::Connect(why)) => {
            eprintln!("geecache: {why} to {}", args.url);
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("geecache: POST {url}: {e}");
            return ExitCode::from(2);
        }
    };
    if fetched.status != StatusCode::OK {
        let message = String::from_utf8_lossy(&fetched.body).trim().to_owned();
        eprintln!("geecache: {url} answered {}: {message}", fetched.status);
        return ExitCode::from(2);
    }
    let answers: Answers = match serde_json::from_slice(&fetched.body) {
        Ok(answers) => answers,
        Err(e) => {
            eprintln!("geecache: {url} answered something other than batch results: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &args.output
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("geecache: cannot create {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    let mut worst = 0_u8;
    let mut out = std::io::stdout().lock();
    for answered in answers.results {
        match shown(&answered, args.output.as_deref(), &mut out) {
            Ok(()) => {}
            Err(Missing::NotFound) => {
                eprintln!("geecache: {}: not found", answered.key);
                worst = worst.max(1);
            }
            Err(Missing::Error(why)) => {
                eprintln!("geecache: {}: {why}", answered.key);
                worst = 2;
            }
        }
    }
    if let Err(e) = out.flush() {
        eprintln!("geecache: cannot write to standard output: {e}");
        return ExitCode::from(2);
    }
    ExitCode::from(worst)
}

enum Missing {
    NotFound,
    Error(String),
}

/// Prints or writes one result's value.
fn shown(
    answered: &Answered,
    dir: Option<&Path>,
    out: &mut impl std::io::Write,
) -> Result<(), Missing> {
    let Some(encoded) = &answered.value else {
        return Err(match answered.error.as_deref() {
            Some("not-found") => Missing::NotFound,
            kind => Missing::Error(format!(
                "{} ({})",
                answered.message.as_deref().unwrap_or("no value"),
                kind.unwrap_or("no error kind")
            )),
        });
    };
    let value = BASE64
        .decode(encoded)
        .map_err(|e| Missing::Error(format!("the value is not base64: {e}")))?;
    let written = match dir {
        Some(dir) => {
            let file = dir.join(path::encode(&answered.key).to_string());
            std::fs::write(&file, &value)
                .map_err(|e| format!("cannot write {}: {e}", file.display()))
        }
        None => {
            let line = match std::str::from_utf8(&value) {
                Ok(text) if !text.contains('\n') => format!("{}: {text}", answered.key),
                _ => format!(
                    "{}: ({} bytes; use -o DIR for the value)",
                    answered.key,
                    value.len()
                ),
            };
            writeln!(out, "{line}").map_err(|e| format!("cannot write to standard output: {e}"))
        }
    };
    written.map_err(Missing::Error)
}
