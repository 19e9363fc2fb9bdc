//! A TCP proxy in front of etcd that can be cut: one node's view of etcd goes away while
//! etcd itself, and every other client of it, carries on (a network fault between that node
//! and etcd, not an etcd outage).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards each connection to the target until [`cut`](Proxy::cut): then every open
/// connection is closed and new ones are closed as soon as they are accepted, until
/// [`heal`](Proxy::heal).
pub(crate) struct Proxy {
    url: String,
    cut: watch::Sender<bool>,
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
        let (cut, cut_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if *cut_rx.borrow() {
                    continue; // dropped: closed at once
                }
                let mut cut_rx = cut_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Proxy { url, cut, task }
    }

    /// Where clients connect.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Closes every connection and refuses service until [`heal`](Proxy::heal).
    pub(crate) fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards again.
    pub(crate) fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
