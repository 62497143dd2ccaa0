//! The node's listener: HTTP/1.1 over TCP, or over TLS (rustls), with limits that keep
//! slow or greedy clients from exhausting it — a deadline for each request head (which
//! also ends idle keep-alive connections), header size and count caps (431), a deadline
//! for each request body, and a cap on open connections — and graceful shutdown.

use axum::Router;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Limits of the listener (defaults in `docs/limits.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Time a client has to send a whole request head, counted from when the connection
    /// waits for it: when it opens (after the TLS handshake, which has the same limit)
    /// or when its previous response was sent — so it is also the idle keep-alive
    /// timeout.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) in bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// Most header fields in a request; more gets 431.
    pub max_headers: usize,
    /// Time a client has to send a whole request body, counted from the end of its head;
    /// past it the body fails and the request with it.
    pub body_read_timeout: Duration,
    /// Most connections open at once; further clients wait in the listen backlog until
    /// one closes.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            body_read_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// Smallest `max_header_bytes` accepted (hyper's read buffer cannot be smaller).
pub const MIN_HEADER_BYTES: usize = 8192;

/// Which TLS file a [`load_tls`] error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// The certificate chain.
    Cert,
    /// The private key.
    Key,
}

/// Builds the TLS server config from PEM files: a certificate chain and its private key
/// (PKCS#8, PKCS#1 or SEC1). The error says which file is wrong and why.
pub fn load_tls(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, (TlsFile, String)> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| {
            (
                TlsFile::Cert,
                format!("cannot read {}: {e}", cert.display()),
            )
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| (TlsFile::Cert, format!("bad PEM in {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err((
            TlsFile::Cert,
            format!("no certificate in {}", cert.display()),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        (
            TlsFile::Key,
            format!("no usable private key in {}: {e}", key.display()),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| (TlsFile::Cert, format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            (
                TlsFile::Key,
                format!(
                    "{} does not fit the certificate {}: {e}",
                    key.display(),
                    cert.display()
                ),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A request body that fails once its deadline passes before it has been received.
struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

/// The error of a body that was not received in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within the body read timeout")]
struct BodyTimeout;

impl Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout.into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on `listener` (TLS when `tls` is given) until `shutdown` completes,
/// then stops accepting and waits for open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        let Some((stream, peer, slot)) = accepted else {
            continue;
        };
        let watcher = graceful.watcher();
        let app = app.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match acceptor {
                None => serve_connection(TokioIo::new(stream), peer, app, limits, watcher).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                        Ok(Ok(tls)) => {
                            serve_connection(TokioIo::new(tls), peer, app, limits, watcher).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Waits for a free connection slot, then for a client. `None` after a failed accept
/// (logged; a pause first when the process is out of file descriptors).
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
)> {
    let slot = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => {
            let _ = stream.set_nodelay(true);
            Some((stream, peer, slot))
        }
        Err(e) => {
            tracing::warn!("accept failed: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

async fn serve_connection<I>(
    io: TokioIo<I>,
    peer: SocketAddr,
    app: Router,
    limits: ServerLimits,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let body_timeout = limits.body_read_timeout;
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let mut req = req.map(|inner| {
            axum::body::Body::new(TimedBody {
                inner,
                deadline: Box::pin(tokio::time::sleep(body_timeout)),
            })
        });
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES) + 16 * 1024)
        .max_headers(limits.max_headers);
    let conn = builder.serve_connection(io, service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}
