//! Listeners, TLS, and serving connections: HTTP/1.1 and HTTP/2 on one port.
//!
//! Cleartext: hyper-util's auto builder reads the first bytes and serves HTTP/2 when they are the
//! client preface (`PRI * HTTP/2.0…`, prior knowledge), HTTP/1.1 otherwise. TLS: ALPN decides
//! (`h2` → HTTP/2, `http/1.1` → HTTP/1.1); a client that offers no ALPN gets the same first-bytes
//! detection as cleartext.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UnixListener, UnixStream};
use tokio_rustls::TlsAcceptor;

use super::log::Transport;
use super::{ConnInfo, MockError, Shared, routes};

/// Pending connections the kernel may queue (capped by net.core.somaxconn): bursts of thousands
/// of daemon connections must not see SYN retries.
const BACKLOG: u32 = 8192;
/// A TLS client gets this long to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Listeners {
    pub tcp: TcpListener,
    pub unix: Option<UnixListener>,
}

pub(crate) async fn bind(addr: SocketAddr, socket: Option<&Path>) -> Result<Listeners, MockError> {
    let bind_err = |source| MockError::Bind { addr, source };
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind_err)?;
    sock.set_reuseaddr(true).map_err(bind_err)?;
    sock.bind(addr).map_err(bind_err)?;
    let tcp = sock.listen(BACKLOG).map_err(bind_err)?;
    let unix = match socket {
        Some(path) => Some(bind_unix(path)?),
        None => None,
    };
    Ok(Listeners { tcp, unix })
}

fn bind_unix(path: &Path) -> Result<UnixListener, MockError> {
    use std::os::unix::fs::FileTypeExt;
    let err = |reason: String| MockError::Socket {
        path: path.to_path_buf(),
        reason,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(err(
                "the path exists and is not a socket; remove it or choose another --socket path"
                    .into(),
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(err(
                "another server is listening there; stop it or choose another --socket path".into(),
            ));
        }
        // A socket nobody listens on is left over from an earlier run.
        std::fs::remove_file(path)
            .map_err(|e| err(format!("cannot remove the stale socket: {e}")))?;
    }
    UnixListener::bind(path).map_err(|e| err(format!("cannot listen: {e}")))
}

/// The three ways a connection is served.
struct Builders {
    auto: auto::Builder<TokioExecutor>,
    h1: auto::Builder<TokioExecutor>,
    h2: auto::Builder<TokioExecutor>,
}

fn builder(h2_max_streams: u32) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // The timer enables hyper's 30 s header-read timeout on HTTP/1.1.
    b.http1().timer(TokioTimer::new());
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(h2_max_streams);
    b
}

pub(crate) struct ServeConfig {
    pub tls: Option<TlsAcceptor>,
    pub h2_max_streams: u32,
}

/// Accepts until `stop` fires. Connections still open then are dropped with the runtime.
pub(crate) async fn run(
    listeners: Listeners,
    config: ServeConfig,
    shared: Arc<Shared>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let builders = Arc::new(Builders {
        auto: builder(config.h2_max_streams),
        h1: builder(config.h2_max_streams).http1_only(),
        h2: builder(config.h2_max_streams).http2_only(),
    });
    let tls = config.tls;
    let tcp = async {
        loop {
            match listeners.tcp.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let io = ConnIo {
                        stream: Stream::Tcp(stream),
                        control: Arc::default(),
                    };
                    spawn_conn(
                        io,
                        Some(peer),
                        tls.clone(),
                        builders.clone(),
                        shared.clone(),
                    );
                }
                Err(e) => accept_failed(e).await,
            }
        }
    };
    let unix = async {
        let Some(listener) = &listeners.unix else {
            return std::future::pending::<()>().await;
        };
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let io = ConnIo {
                        stream: Stream::Unix(stream),
                        control: Arc::default(),
                    };
                    spawn_conn(io, None, tls.clone(), builders.clone(), shared.clone());
                }
                Err(e) => accept_failed(e).await,
            }
        }
    };
    tokio::select! {
        _ = stop => {}
        () = tcp => {}
        () = unix => {}
    }
}

/// Out of file descriptors (or a connection aborted before accept): back off briefly rather
/// than spin; the listener keeps working once descriptors free up.
async fn accept_failed(_: io::Error) {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

fn spawn_conn(
    io: ConnIo,
    peer: Option<SocketAddr>,
    tls: Option<TlsAcceptor>,
    builders: Arc<Builders>,
    shared: Arc<Shared>,
) {
    tokio::spawn(async move {
        let transport = match io.stream {
            Stream::Tcp(_) => Transport::Tcp,
            Stream::Unix(_) => Transport::Unix,
        };
        let info = |tls| {
            Arc::new(ConnInfo {
                tls,
                transport,
                peer,
                control: io.control.clone(),
            })
        };
        match tls {
            None => {
                let info = info(false);
                serve(io, &builders.auto, info, shared).await;
            }
            Some(acceptor) => {
                let info = info(true);
                let Ok(Ok(stream)) =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await
                else {
                    return; // a failed handshake is the client's problem, and rustls told it
                };
                let builder = match stream.get_ref().1.alpn_protocol() {
                    Some(b"h2") => &builders.h2,
                    Some(b"http/1.1") => &builders.h1,
                    _ => &builders.auto,
                };
                serve(stream, builder, info, shared).await;
            }
        }
    });
}

async fn serve<I>(
    io: I,
    builder: &auto::Builder<TokioExecutor>,
    info: Arc<ConnInfo>,
    shared: Arc<Shared>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| routes::handle(req, info.clone(), shared.clone()));
    // Errors here are the client's doing (malformed requests, resets); hyper has already
    // answered what deserved an answer.
    let _ = builder.serve_connection(TokioIo::new(io), service).await;
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// What a connection's socket shares with the bodies it serves (HTTP/1.1 resets).
#[derive(Default)]
pub(crate) struct ConnControl {
    /// Set by a body whose plan ends in a reset: the socket gets SO_LINGER 0 as it is dropped,
    /// so the close sends RST.
    pub(crate) reset: AtomicBool,
    /// Completed flushes of the socket (below TLS, so the bytes have reached the kernel).
    flushes: AtomicU64,
    flush_waker: Mutex<Option<Waker>>,
}

impl ConnControl {
    /// Flushes completed so far.
    pub(crate) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::SeqCst)
    }

    /// `Ready` once more than `seen` flushes have completed.
    pub(crate) fn poll_flushed_after(&self, seen: u64, cx: &mut Context<'_>) -> Poll<()> {
        if self.flushes() > seen {
            return Poll::Ready(());
        }
        *self.flush_waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        // A flush may have completed between the check and the registration.
        if self.flushes() > seen {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn flushed(&self) {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        if let Some(waker) = self
            .flush_waker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            waker.wake();
        }
    }
}

/// The accepted socket, able to end in a TCP reset and counting its flushes.
struct ConnIo {
    stream: Stream,
    control: Arc<ConnControl>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.control.reset.load(Ordering::SeqCst)
            && let Stream::Tcp(s) = &self.stream
        {
            let _ = s.set_zero_linger();
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match &mut $self.get_mut().stream {
            Stream::Tcp($s) => $e,
            Stream::Unix($s) => $e,
        }
    };
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let control = self.control.clone();
        let result = delegate!(self, s => Pin::new(s).poll_flush(cx));
        if let Poll::Ready(Ok(())) = result {
            control.flushed();
        }
        result
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

/// Removes a Unix socket file this mock created.
pub(crate) fn remove_socket(path: &PathBuf) {
    let _ = std::fs::remove_file(path);
}
