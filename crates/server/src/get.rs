//! `geecache get URL GROUP KEY [KEY...]`: fetch values through a node's client routes, one
//! key with `GET /api/{group}/{key}`, several in one `POST /api/{group}`.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use geecache_transport_http::{ErrorKind, path};
use http::StatusCode;

use crate::cli::GetArgs;
use crate::client;

/// The largest value (or answer to a batch) `get` will read.
pub(crate) const MAX_VALUE: usize = 1 << 30;

/// The client-route URL of `key` in `group` at node `base`.
///
/// Every byte but `A-Za-z0-9-_.~` is escaped, `/` and `+` included, so the node decodes
/// exactly the key that was typed.
pub(crate) fn value_url(base: &str, group: &str, key: &str) -> String {
    format!(
        "{}/api/{}/{}",
        base.trim_end_matches('/'),
        path::encode(group),
        path::encode(key)
    )
}

/// Runs `get`: 0 with every value, 1 when a key is not found, 2 on any error.
pub(crate) fn run(args: &GetArgs) -> ExitCode {
    if !args.url.starts_with("http://") && !args.url.starts_with("https://") {
        eprintln!(
            "geecache: invalid node URL {:?}: expected http://HOST:PORT or https://HOST:PORT, \
             e.g. http://127.0.0.1:8001",
            args.url
        );
        return ExitCode::from(2);
    }
    if args.url.starts_with("https://") && args.tls_ca.is_none() {
        eprintln!(
            "geecache: {} is https://: give --tls-ca FILE, the CA that signs the node's \
             certificate (and --tls-cert/--tls-key if the node asks for a client certificate)",
            args.url
        );
        return ExitCode::from(2);
    }
    if args.keys.iter().any(String::is_empty) {
        eprintln!("geecache: a key is empty; groups never store the empty key");
        return ExitCode::from(2);
    }
    let Some(runtime) = crate::start_runtime(crate::Workers::CallingThread) else {
        return ExitCode::from(2);
    };
    match args.keys.as_slice() {
        [key] => run_one(args, key, &runtime),
        keys => crate::get_many::run(args, keys, &runtime),
    }
}

/// The client for `args`: with `--tls-ca` (and a client certificate, if given), one that
/// speaks `https://`.
///
/// # Errors
///
/// A TLS file that cannot be used, as [`client::FetchError::Tls`].
pub(crate) fn http_client(args: &GetArgs) -> Result<client::HttpClient, client::FetchError> {
    let Some(ca) = &args.tls_ca else {
        return Ok(client::new_client());
    };
    let identity = args.tls_cert.as_deref().zip(args.tls_key.as_deref());
    crate::tls::client_config(ca, identity)
        .map(client::new_tls_client)
        .map_err(|e| client::FetchError::Tls(e.to_string()))
}

fn run_one(args: &GetArgs, key: &str, runtime: &tokio::runtime::Runtime) -> ExitCode {
    let url = value_url(&args.url, &args.group, key);
    let fetched = runtime.block_on(async {
        let http = http_client(args)?;
        client::get(
            &http,
            &url,
            args.api_token.as_deref(),
            args.timeout,
            MAX_VALUE,
        )
        .await
    });
    let fetched = match fetched {
        Ok(f) => f,
        Err(client::FetchError::Connect(why)) => {
            // The node's address is what the user typed and may have wrong; the full URL
            // would bury it.
            eprintln!("geecache: {why} to {}", args.url);
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("geecache: GET {url}: {e}");
            return ExitCode::from(2);
        }
    };
    let message = || String::from_utf8_lossy(&fetched.body).trim().to_owned();
    // A 404 is "not found" only when it is about the key; an unknown group or route is a
    // mistake in the command, and scripts should not read it as a cache miss.
    let kind = fetched.kind.as_deref().map(ErrorKind::parse);
    match fetched.status {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND if kind.is_none_or(|k| k == Some(ErrorKind::NotFound)) => {
            // A geecache node's message starts with "not found:" already; say it once.
            let message = message();
            let detail = message
                .strip_prefix("not found:")
                .unwrap_or(&message)
                .trim();
            match detail {
                "" => eprintln!("geecache: not found"),
                detail => eprintln!("geecache: not found: {detail}"),
            }
            return ExitCode::from(1);
        }
        status => {
            eprintln!("geecache: {url} answered {status}: {}", message());
            return ExitCode::from(2);
        }
    }
    let written = match &args.output {
        Some(path) => std::fs::write(path, &fetched.body)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            let mut out = std::io::stdout().lock();
            // A person at a terminal gets the prompt on a line of its own; a pipe or a file
            // gets the value's bytes exactly.
            let newline = out.is_terminal() && !fetched.body.ends_with(b"\n");
            out.write_all(&fetched.body)
                .and_then(|()| {
                    if newline {
                        out.write_all(b"\n")
                    } else {
                        Ok(())
                    }
                })
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write to standard output: {e}"))
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("geecache: {e}");
            ExitCode::from(2)
        }
    }
}
