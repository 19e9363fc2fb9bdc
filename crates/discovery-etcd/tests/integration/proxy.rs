//! A TCP proxy in front of etcd that can be cut or stalled: one node's view of etcd goes away
//! while etcd itself, and every other client of it, carries on (a network fault between that
//! node and etcd, not an etcd outage).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Forwarding,
    /// Connections stay open but carry nothing, as when packets are dropped: no side learns
    /// of it from the connection, and what was sent meanwhile arrives after the heal.
    Stalled,
    /// Connections are closed, new ones as soon as they are accepted.
    Cut,
}

/// Forwards each connection to the target until [`cut`](Proxy::cut) or
/// [`stall`](Proxy::stall), and again after [`heal`](Proxy::heal).
pub(crate) struct Proxy {
    url: String,
    state: watch::Sender<State>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// A proxy on a free loopback port, forwarding to `target` (an `http://host:port` URL).
    pub(crate) async fn start(target: &str) -> Proxy {
        let target: SocketAddr = target
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .expect("an http://ip:port URL");
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let (state, state_rx) = watch::channel(State::Forwarding);
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                if *state_rx.borrow() == State::Cut {
                    continue; // dropped: closed at once
                }
                let state_rx = state_rx.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    let mut cut = state_rx.clone();
                    tokio::select! {
                        () = pump(in_read, out_write, state_rx.clone()) => {}
                        () = pump(out_read, in_write, state_rx) => {}
                        _ = cut.wait_for(|state| *state == State::Cut) => {}
                    }
                });
            }
        });
        Proxy { url, state, task }
    }

    /// Where clients connect.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Closes every connection and refuses service until [`heal`](Proxy::heal).
    pub(crate) fn cut(&self) {
        self.state.send_replace(State::Cut);
    }

    /// Stops carrying bytes, keeping every connection open, until [`heal`](Proxy::heal).
    pub(crate) fn stall(&self) {
        self.state.send_replace(State::Stalled);
    }

    /// Forwards again.
    pub(crate) fn heal(&self) {
        self.state.send_replace(State::Forwarding);
    }
}

/// Copies one direction of a connection, holding what it read while the proxy is stalled.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut state: watch::Receiver<State>) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let Ok(read) = from.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        if state
            .wait_for(|state| *state != State::Stalled)
            .await
            .is_err()
        {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
