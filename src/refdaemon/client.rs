//! The handed-off client connection: non-blocking writes with a stall deadline, and a watch for
//! the client going away, on the tokio reactor.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::net::{AddressFamily, RecvFlags, SendFlags, Shutdown};
use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};

/// The browser's connection, as handed off: TCP, or an AF_UNIX stream socket (a test option).
pub(crate) struct ClientConn {
    io: Io,
    /// How long one write may wait for the client to make room before the client counts as gone.
    write_timeout: Duration,
}

enum Io {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Why writing to the client stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientGone {
    #[error("the client closed the connection ({0})")]
    Closed(io::Error),
    #[error("the client read nothing for {0:?}")]
    Stalled(Duration),
}

impl ClientConn {
    /// Puts `fd` (a stream socket) in non-blocking mode and registers it with the reactor.
    pub(crate) fn new(fd: OwnedFd, write_timeout: Duration) -> io::Result<Self> {
        // Apache leaves O_NONBLOCK set; a test client may not have.
        rustix::io::ioctl_fionbio(&fd, true)?;
        let io = match rustix::net::sockopt::socket_domain(&fd)? {
            AddressFamily::INET | AddressFamily::INET6 => Io::Tcp(TcpStream::from_std(fd.into())?),
            AddressFamily::UNIX => Io::Unix(UnixStream::from_std(fd.into())?),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("the handed-off socket is of family {other:?}, not TCP or Unix"),
                ));
            }
        };
        Ok(ClientConn { io, write_timeout })
    }

    async fn ready(&self, interest: Interest) -> io::Result<()> {
        match &self.io {
            Io::Tcp(s) => s.ready(interest).await.map(drop),
            Io::Unix(s) => s.ready(interest).await.map(drop),
        }
    }

    fn try_io<R>(
        &self,
        interest: Interest,
        f: impl FnOnce(BorrowedFd<'_>) -> rustix::io::Result<R>,
    ) -> io::Result<R> {
        match &self.io {
            Io::Tcp(s) => s.try_io(interest, || f(s.as_fd()).map_err(Into::into)),
            Io::Unix(s) => s.try_io(interest, || f(s.as_fd()).map_err(Into::into)),
        }
    }

    /// Writes all of `bytes`; fails if the client is gone or reads nothing for the write timeout.
    pub(crate) async fn write_all(&self, bytes: &[u8]) -> Result<(), ClientGone> {
        match tokio::time::timeout(self.write_timeout, self.write_all_inner(bytes)).await {
            Ok(result) => result.map_err(ClientGone::Closed),
            Err(_) => Err(ClientGone::Stalled(self.write_timeout)),
        }
    }

    async fn write_all_inner(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            self.ready(Interest::WRITABLE).await?;
            // NOSIGNAL: a closed peer is an EPIPE error here, not a SIGPIPE for the process.
            match self.try_io(Interest::WRITABLE, |fd| {
                rustix::net::send(fd, bytes, SendFlags::NOSIGNAL)
            }) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Resolves when the client has gone: end of file (the browser closed its side, as Go's
    /// net/http and nginx also take it), a reset, or an error. Bytes a client sends after its
    /// request are read and discarded so they can neither fill memory nor turn our close into RST.
    pub(crate) async fn gone(&self) -> io::Error {
        let mut sink = [0u8; 1024];
        loop {
            if let Err(err) = self.ready(Interest::READABLE).await {
                return err;
            }
            match self.try_io(Interest::READABLE, |fd| {
                rustix::net::recv(fd, &mut sink, RecvFlags::empty())
            }) {
                Ok((0, _)) => return io::ErrorKind::UnexpectedEof.into(),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return err,
            }
        }
    }

    /// Ends the response: FIN to the client (the end of a close-delimited body). The fd itself
    /// closes when the connection is dropped.
    pub(crate) fn shutdown_write(&self) {
        let fd = match &self.io {
            Io::Tcp(s) => s.as_fd(),
            Io::Unix(s) => s.as_fd(),
        };
        // ENOTCONN when the client already went away: nothing left to end.
        let _ = rustix::net::shutdown(fd, Shutdown::Write);
    }
}
