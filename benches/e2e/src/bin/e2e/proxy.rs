//! A TCP proxy on loopback that can hold back every answer for a while: a peer slowed down,
//! as a node with a saturated disk or a noisy neighbour is, while it still answers.
//!
//! Threads, not tasks: the orchestrator has no async runtime, and the proxy carries the
//! connections of two peers' pools, a few dozen at most.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;

/// A running proxy; dropping it stops accepting (connections already open run until closed).
pub(crate) struct Proxy {
    addr: SocketAddr,
    delay_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on `listen` and forwards every connection to `target`.
    pub(crate) fn start(listen: SocketAddr, target: SocketAddr) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind(listen)
            .with_context(|| format!("proxy cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let delay_ms = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (delay, stopped) = (Arc::clone(&delay_ms), Arc::clone(&stop));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let delay = Arc::clone(&delay);
                std::thread::spawn(move || {
                    let _ = relay(client, target, &delay);
                });
            }
        });
        Ok(Proxy {
            addr,
            delay_ms,
            stop,
        })
    }

    /// From now on every chunk of an answer waits `delay` before it is passed on.
    pub(crate) fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accepting thread so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Copies both ways until either side closes; answers wait the current delay.
fn relay(client: TcpStream, target: SocketAddr, delay_ms: &AtomicU64) -> io::Result<()> {
    let server = TcpStream::connect_timeout(&target, Duration::from_secs(5))?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut client_in, mut server_out) = (client.try_clone()?, server.try_clone()?);
    let requests = std::thread::spawn(move || {
        let _ = copy(&mut client_in, &mut server_out, None);
        let _ = server_out.shutdown(Shutdown::Write);
    });
    let (mut server_in, mut client_out) = (server, client);
    let _ = copy(&mut server_in, &mut client_out, Some(delay_ms));
    let _ = client_out.shutdown(Shutdown::Write);
    let _ = requests.join();
    Ok(())
}

fn copy(from: &mut TcpStream, to: &mut TcpStream, delay_ms: Option<&AtomicU64>) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if let Some(ms) = delay_ms
            .map(|d| d.load(Ordering::Relaxed))
            .filter(|&ms| ms > 0)
        {
            // The slowness being simulated, not synchronisation.
            std::thread::sleep(Duration::from_millis(ms));
        }
        to.write_all(&buf[..n])?;
    }
}
