//! A TCP proxy between a client under test and a shared service (a broker), so a test can
//! break the client's connection without restarting the service: [`Proxy::cut`] drops
//! every connection open now, [`Proxy::pause`] makes new connections fail at once (they
//! are accepted and closed) until [`Proxy::resume`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct Shared {
    target: SocketAddr,
    paused: AtomicBool,
    /// Bumped by `cut`: connections opened before the bump end.
    generation: watch::Sender<u64>,
    accepted: AtomicU64,
}

/// A running proxy on `127.0.0.1:<random port>` forwarding to a target; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `target` (e.g. `"127.0.0.1:4222"`).
    pub async fn start(target: &str) -> Proxy {
        let target: SocketAddr = tokio::net::lookup_host(target)
            .await
            .expect("resolve proxy target")
            .next()
            .expect("proxy target has an address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (generation, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            target,
            paused: AtomicBool::new(false),
            generation,
            accepted: AtomicU64::new(0),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if s.paused.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                s.accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(forward(client, s.clone()));
            }
        });
        Proxy { addr, shared, task }
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port` of [`Proxy::addr`].
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Drops every connection open now (both directions are closed).
    pub fn cut(&self) {
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Refuses new connections (accepts and closes them at once) until [`Proxy::resume`].
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::SeqCst);
    }

    /// Forwards new connections again.
    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::SeqCst);
    }

    /// [`Proxy::pause`] then [`Proxy::cut`]: the client is disconnected and cannot get back.
    pub fn break_all(&self) {
        self.pause();
        self.cut();
    }

    /// Connections forwarded so far (refused ones not counted).
    pub fn connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

async fn forward(mut client: TcpStream, shared: Arc<Shared>) {
    let mut generation = shared.generation.subscribe();
    let born = *generation.borrow_and_update();
    let Ok(mut server) = TcpStream::connect(shared.target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = async {
            while *generation.borrow_and_update() == born {
                if generation.changed().await.is_err() {
                    break;
                }
            }
        } => {}
    }
    // Dropping both streams closes them.
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn forwards_cuts_pauses_and_resumes() {
        let echo = echo_server().await;
        let proxy = Proxy::start(&echo.to_string()).await;
        let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut a).await.unwrap(), b"ping");

        proxy.break_all();
        // The open connection ends: a read returns EOF (or an error).
        let mut buf = [0u8; 4];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), a.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0);
        // New connections are closed at once.
        let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(roundtrip(&mut b).await.is_err());

        proxy.resume();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut c).await.unwrap(), b"ping");
        assert_eq!(proxy.connections(), 2);
    }
}
