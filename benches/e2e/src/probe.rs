//! A blocking HTTP/1.1 GET over loopback, plain or TLS, for readiness checks and `/stats`.
//!
//! The orchestrator needs a handful of requests, all before or after a measured window, so a
//! std `TcpStream` with timeouts is enough and keeps an async runtime out of that process.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// A response: status code and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body (the connection is closed after it, so it is whatever came before EOF).
    pub body: Vec<u8>,
}

/// `GET path` on `addr` with `Connection: close`, each socket operation bounded by `timeout`.
///
/// # Errors
///
/// On a connection failure, a timeout, or a response without a status line.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<Response> {
    request(addr, "GET", path, timeout)
}

/// As [`get`], with another method (and no body).
///
/// # Errors
///
/// As [`get`].
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    timeout: Duration,
) -> io::Result<Response> {
    exchange(connect(addr, timeout)?, addr, method, path)
}

/// As [`get`], over TLS with `client` (the server is named by its IP address, so its
/// certificate must carry that address).
///
/// # Errors
///
/// As [`get`], and when the handshake fails.
pub fn get_tls(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    client: &Arc<ClientConfig>,
) -> io::Result<Response> {
    let tcp = connect(addr, timeout)?;
    let name = ServerName::IpAddress(addr.ip().into());
    let session = ClientConnection::new(Arc::clone(client), name).map_err(io::Error::other)?;
    exchange(StreamOwned::new(session, tcp), addr, "GET", path)
}

fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

fn exchange(
    mut stream: impl Read + Write,
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> io::Result<Response> {
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()?;
    let mut raw = Vec::new();
    // The response is small and the server closes the connection; a 16 MiB cap keeps a
    // confused peer from filling memory.
    match stream.take(16 << 20).read_to_end(&mut raw) {
        Ok(_) => {}
        // A TLS server may close the TCP connection without a close_notify after a
        // `Connection: close` answer; the answer is whole (it has a Content-Length), so that
        // end is as good as EOF here.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    parse_response(&raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP status line"))
}

/// Splits a raw HTTP/1.1 response into status and body (no chunked decoding: the routes read
/// here answer with a `Content-Length`).
#[must_use]
pub fn parse_response(raw: &[u8]) -> Option<Response> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let status = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(Response {
        status,
        body: raw[head_end + 4..].to_vec(),
    })
}
