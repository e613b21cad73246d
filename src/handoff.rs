//! What Apache's `mod_socket_handoff` hands a daemon, built exactly: the client socket, the data
//! message and its SCM_RIGHTS control message, and the errors a handoff can end in.
//!
//! - The client socket is one end of a connected pair. By default it is a loopback TCP socket as
//!   Apache leaves the browser's connection ([`PairKind::Tcp`]): AF_INET, SOCK_STREAM, `O_NONBLOCK`
//!   on its file description, `TCP_NODELAY` = 1, `SO_KEEPALIVE` = 1, no unread bytes. The other end
//!   (the one the test keeps, playing the browser) is what [`crate::ring`] reads the response from.
//!   [`PairKind::Unix`] uses an AF_UNIX socketpair instead.
//! - The message is the data bytes exactly, or a single NUL byte when the data is empty
//!   ([`message_bytes`]), sent in one `sendmsg()` with one `SCM_RIGHTS` control message carrying
//!   exactly one fd.
//! - The daemon is reached with `SOCK_SEQPACKET` like Apache ([`SocketType::SeqPacket`]) or, to
//!   test a daemon that listens as a stream socket, `SOCK_STREAM`.
//! - [`ConnectPolicy::APACHE`] is Apache's timing: connect timeout 100 ms, retries only after
//!   `ENOENT`/`ECONNREFUSED` (twice, 10 ms then 20 ms later), send timeout 200 ms.
//!
//! Loopback pairs are made by a [`TcpPairFactory`]: one listener per ring, reused for every pair.
//! Making a pair costs four non-blocking syscalls (`socket`, `connect`, `getsockname`, `accept4`);
//! on loopback the handshake completes inside `connect`, so the accept normally succeeds at once,
//! and when it does not, the ring waits for the listener to become readable. `TCP_NODELAY` and
//! `SO_KEEPALIVE` are set once on the listener: Linux copies both to every accepted socket. Each
//! stream holds three fds during its handoff (kept end, handed end, daemon connection) and one
//! afterwards, and one ephemeral port (`net.ipv4.ip_local_port_range`, 28,232 by default) while it
//! is open.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketFlags, sockopt};

/// The socket type used to connect to the daemon's Unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SocketType {
    /// `SOCK_SEQPACKET`, what Apache uses: the message is atomic.
    #[default]
    SeqPacket,
    /// `SOCK_STREAM`, for daemons that listen as a stream socket (not reachable through Apache).
    Stream,
}

impl SocketType {
    /// The name used on the command line and in reports: `seqpacket` or `stream`.
    pub fn as_str(self) -> &'static str {
        match self {
            SocketType::SeqPacket => "seqpacket",
            SocketType::Stream => "stream",
        }
    }

    pub(crate) fn to_rustix(self) -> net::SocketType {
        match self {
            SocketType::SeqPacket => net::SocketType::SEQPACKET,
            SocketType::Stream => net::SocketType::STREAM,
        }
    }
}

/// Which kind of client socket pair is handed off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PairKind {
    /// A connected 127.0.0.1 TCP pair with Apache's options (the default, as in production).
    #[default]
    Tcp,
    /// An AF_UNIX stream socketpair (TCP-only socket options fail on it with `EOPNOTSUPP`).
    Unix,
}

/// Apache's connect and send timing for one handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectPolicy {
    /// How long one connect attempt may take before it is abandoned.
    pub connect_timeout: Duration,
    /// How many times a connect failing with `ENOENT` or `ECONNREFUSED` is retried.
    pub retries: u8,
    /// The delay before the first retry; it doubles for each further retry.
    pub retry_delay: Duration,
    /// How long the `sendmsg()` may take.
    pub send_timeout: Duration,
}

impl ConnectPolicy {
    /// `mod_socket_handoff`'s defaults: 100 ms connect timeout, two retries after 10 ms and
    /// 20 ms (only on `ENOENT`/`ECONNREFUSED`), 200 ms send timeout.
    pub const APACHE: ConnectPolicy = ConnectPolicy {
        connect_timeout: Duration::from_millis(100),
        retries: 2,
        retry_delay: Duration::from_millis(10),
        send_timeout: Duration::from_millis(200),
    };

    /// The delay before retry number `retry` (1 for the first retry).
    pub fn delay_before_retry(&self, retry: u8) -> Duration {
        let doublings = u32::from(retry.saturating_sub(1)).min(16);
        self.retry_delay.saturating_mul(1 << doublings)
    }

    /// Whether Apache retries a connect that failed with `errno`.
    pub fn retries_on(errno: Errno) -> bool {
        errno == Errno::NOENT || errno == Errno::CONNREFUSED
    }
}

impl Default for ConnectPolicy {
    fn default() -> Self {
        ConnectPolicy::APACHE
    }
}

/// Everything that can stop a handoff or the stream after it. Each message names the cause and
/// what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandoffError {
    /// `connect()` failed with `ENOENT`.
    #[error(
        "daemon socket {} does not exist (ENOENT, {attempts} attempts): is the daemon running, \
         and is the path right?",
        path.display()
    )]
    SocketMissing { path: PathBuf, attempts: u8 },
    /// `connect()` failed with `EACCES`.
    #[error(
        "permission denied connecting to {} (EACCES): the socket's mode (or a parent directory's) \
         does not let this user connect; start the daemon with a wider socket mode, e.g. \
         --socket-mode 0666",
        path.display()
    )]
    PermissionDenied { path: PathBuf },
    /// `connect()` failed with `ECONNREFUSED`.
    #[error(
        "connection refused by {} (ECONNREFUSED, {attempts} attempts): the socket file exists \
         but nothing listens on it, most likely a stale file left by a daemon that exited; \
         restart the daemon",
        path.display()
    )]
    ConnectionRefused { path: PathBuf, attempts: u8 },
    /// `connect()` with `SOCK_SEQPACKET` failed with `EPROTOTYPE`: the daemon listens as
    /// `SOCK_STREAM`. A conformance failure; the rest can still be tested over `SOCK_STREAM`.
    #[error(
        "{} is a SOCK_STREAM socket, but Apache's mod_socket_handoff connects with SOCK_SEQPACKET \
         (EPROTOTYPE), so every handoff through Apache fails with a 503; make the daemon listen \
         with SOCK_SEQPACKET (--socket-type stream tests everything else meanwhile)",
        path.display()
    )]
    WrongSocketType { path: PathBuf },
    /// `connect()` failed with `EAGAIN`: the daemon's accept backlog is full.
    #[error(
        "the accept backlog of {} is full (EAGAIN): Apache fails such a handoff at once with a \
         503; the daemon is not accepting connections fast enough (accept faster, or raise its \
         listen backlog and net.core.somaxconn)",
        path.display()
    )]
    BacklogFull { path: PathBuf },
    /// The connect attempt was still pending when the connect timeout expired.
    #[error(
        "connecting to {} did not complete within {timeout_ms} ms (Apache's connect timeout): \
         the daemon is not accepting connections (accept backlog full, or its loop is blocked)",
        path.display()
    )]
    ConnectTimeout { path: PathBuf, timeout_ms: u64 },
    /// Any other `connect()` failure.
    #[error("connecting to {} failed: {errno}{}", path.display(), connect_hint(*errno))]
    Connect { path: PathBuf, errno: Errno },
    /// `sendmsg()` failed with `EMSGSIZE`: the message does not fit the socket's send buffer.
    #[error(
        "the handoff message is {size} bytes, larger than the socket's limit of {limit} bytes \
         (EMSGSIZE); Apache answers such a request with a 500: send at most {limit} bytes of data, \
         or raise net.core.wmem_default"
    )]
    MessageTooLarge { size: usize, limit: usize },
    /// The `sendmsg()` was still pending when the send timeout expired.
    #[error(
        "sending the handoff to {} did not complete within {timeout_ms} ms (Apache's send \
         timeout): the daemon is not reading its socket",
        path.display()
    )]
    SendTimeout { path: PathBuf, timeout_ms: u64 },
    /// Any other `sendmsg()` failure.
    #[error("sending the handoff to {} failed: {errno}{}", path.display(), send_hint(*errno))]
    Send { path: PathBuf, errno: Errno },
    /// Reading the daemon's response from the kept end failed.
    #[error("reading the daemon's response failed: {errno}{}", receive_hint(*errno))]
    Receive { errno: Errno },
    /// `io_uring_setup` failed.
    #[error(
        "io_uring is unavailable ({errno}): check /proc/sys/kernel/io_uring_disabled (0 allows \
         everyone, 1 only members of kernel.io_uring_group, 2 no one) and, in a container, that \
         the seccomp profile allows io_uring_setup, io_uring_enter and io_uring_register"
    )]
    RingUnavailable { errno: Errno },
    /// The kernel's io_uring lacks an operation or feature the ring needs.
    #[error(
        "this kernel's io_uring does not support {feature}: streamcheck needs Linux 6.0 or later"
    )]
    RingUnsupported { feature: &'static str },
    /// `EMFILE`/`ENFILE` while opening a socket.
    #[error(
        "out of file descriptors while {what} ({errno}): raise the open-file limit (ulimit -n, up \
         to the hard limit) or run fewer concurrent streams; each stream holds 3 fds during its \
         handoff and 1 afterwards"
    )]
    FdLimit { what: &'static str, errno: Errno },
    /// `EADDRNOTAVAIL` while connecting a loopback pair.
    #[error(
        "no local port left for another loopback connection (EADDRNOTAVAIL): \
         net.ipv4.ip_local_port_range bounds the number of concurrent client connections; widen \
         it or run fewer concurrent streams"
    )]
    PortsExhausted,
    /// The daemon socket path does not fit in `sockaddr_un`.
    #[error(
        "socket path {} is {len} bytes, but a Unix socket path must be at most 107 bytes: use a \
         shorter path",
        path.display()
    )]
    PathTooLong { path: PathBuf, len: usize },
    /// Any other system call failure.
    #[error("{what} failed: {errno}")]
    Os { what: &'static str, errno: Errno },
    /// The io_uring lost completions (the kernel could not buffer an overflowing completion queue).
    #[error(
        "the io_uring completion queue overflowed and {lost} completions were lost: run fewer \
         concurrent streams or raise the ring's cq_entries"
    )]
    CompletionsLost { lost: u32 },
    /// The ring thread behind a [`crate::ring::RingHandle`] is gone.
    #[error("the ring thread has stopped (it failed, or the process is shutting down)")]
    RingStopped,
}

fn connect_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::NOTSOCK => " (the path is not a socket)",
        _ => "",
    }
}

fn send_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::PIPE | Errno::CONNRESET => {
            " (the daemon closed the connection without reading the handoff)"
        }
        _ => "",
    }
}

fn receive_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::CONNRESET => " (the daemon reset the client connection)",
        _ => "",
    }
}

impl HandoffError {
    /// Classifies a `connect()` to the daemon's socket that failed after `attempts` attempts.
    pub fn from_connect(path: &Path, errno: Errno, attempts: u8) -> HandoffError {
        let path = path.to_path_buf();
        match errno {
            Errno::NOENT => HandoffError::SocketMissing { path, attempts },
            Errno::ACCESS | Errno::PERM => HandoffError::PermissionDenied { path },
            Errno::CONNREFUSED => HandoffError::ConnectionRefused { path, attempts },
            Errno::PROTOTYPE => HandoffError::WrongSocketType { path },
            Errno::AGAIN => HandoffError::BacklogFull { path },
            Errno::MFILE | Errno::NFILE => HandoffError::FdLimit {
                what: "connecting to the daemon",
                errno,
            },
            _ => HandoffError::Connect { path, errno },
        }
    }

    /// Whether this error is the daemon listening as `SOCK_STREAM` (retry with
    /// [`SocketType::Stream`] to test the rest).
    pub fn is_wrong_socket_type(&self) -> bool {
        matches!(self, HandoffError::WrongSocketType { .. })
    }

    pub(crate) fn os(what: &'static str, errno: Errno) -> HandoffError {
        match errno {
            Errno::MFILE | Errno::NFILE => HandoffError::FdLimit { what, errno },
            Errno::ADDRNOTAVAIL => HandoffError::PortsExhausted,
            _ => HandoffError::Os { what, errno },
        }
    }
}

/// The bytes of the handoff message: `data` exactly, or a single NUL byte when `data` is empty
/// (Apache's empty-data form; a SEQPACKET message needs at least one byte to carry the fd).
pub fn message_bytes(data: &[u8]) -> &[u8] {
    if data.is_empty() { b"\0" } else { data }
}

/// The largest message a `SOCK_SEQPACKET` socket with this send buffer accepts: Linux refuses
/// a datagram longer than `sk_sndbuf - 32` with `EMSGSIZE` (212,960 bytes with the default
/// `net.core.wmem_default` of 212,992).
pub fn seqpacket_limit(send_buffer: usize) -> usize {
    send_buffer.saturating_sub(32)
}

/// The send limit of a connected daemon socket, for [`HandoffError::MessageTooLarge`].
pub(crate) fn seqpacket_limit_of(fd: BorrowedFd<'_>) -> usize {
    seqpacket_limit(sockopt::socket_send_buffer_size(fd).unwrap_or(0))
}

/// One `SCM_RIGHTS` control message carrying exactly one fd, laid out as `CMSG_SPACE(4)` bytes.
#[repr(C)]
#[derive(Clone, Copy)]
struct FdCmsg {
    hdr: libc::cmsghdr,
    fd: libc::c_int,
    pad: [u8; 4],
}

// The layout above must be exactly what the CMSG_* macros describe.
// SAFETY: CMSG_SPACE and CMSG_LEN only do arithmetic on their argument.
const _: () = assert!(std::mem::size_of::<FdCmsg>() == unsafe { libc::CMSG_SPACE(4) } as usize);
// SAFETY: as above.
const _: () =
    assert!(std::mem::offset_of!(FdCmsg, fd) + 4 == unsafe { libc::CMSG_LEN(4) } as usize);

/// The `msghdr` of one handoff, with its iovec and control message. The kernel follows the
/// pointers inside, so a prepared `HandoffMsg` must stay at its address (the ring keeps it boxed)
/// until the `sendmsg` completes.
pub(crate) struct HandoffMsg {
    msg: libc::msghdr,
    iov: libc::iovec,
    cmsg: FdCmsg,
}

impl HandoffMsg {
    pub(crate) fn new() -> HandoffMsg {
        // SAFETY: msghdr, iovec and cmsghdr are plain C structs for which all-zero is valid.
        unsafe { std::mem::zeroed() }
    }

    /// Points the message at `payload` (already through [`message_bytes`]) and `fd`, and returns
    /// the `msghdr` to submit. `self` and `payload` must not move or be freed until the kernel
    /// has completed the send.
    pub(crate) fn prepare(&mut self, payload: &[u8], fd: RawFd) -> *const libc::msghdr {
        self.cmsg = FdCmsg {
            hdr: libc::cmsghdr {
                // SAFETY: CMSG_LEN only does arithmetic.
                cmsg_len: unsafe { libc::CMSG_LEN(4) } as _,
                cmsg_level: libc::SOL_SOCKET,
                cmsg_type: libc::SCM_RIGHTS,
            },
            fd,
            pad: [0; 4],
        };
        self.iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        };
        self.msg.msg_name = std::ptr::null_mut();
        self.msg.msg_namelen = 0;
        self.msg.msg_iov = &mut self.iov;
        self.msg.msg_iovlen = 1;
        self.msg.msg_control = (&mut self.cmsg as *mut FdCmsg).cast();
        self.msg.msg_controllen = std::mem::size_of::<FdCmsg>() as _;
        self.msg.msg_flags = 0;
        &self.msg
    }
}

/// A `sockaddr_un` for `path`, with the length to pass to `connect()`.
pub(crate) fn unix_sockaddr(path: &Path) -> Result<(libc::sockaddr_un, u32), HandoffError> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: sockaddr_un is a plain C struct for which all-zero is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(HandoffError::PathTooLong {
            path: path.to_path_buf(),
            len: bytes.len(),
        });
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    Ok((addr, len as u32))
}

/// A new socket for connecting to the daemon, as Apache makes it: non-blocking, close-on-exec.
///
/// Non-blocking matters: a Unix-socket `connect()` then fails at once with `EAGAIN` when the
/// daemon's accept backlog is full ([`HandoffError::BacklogFull`]), as it does for Apache, instead
/// of waiting.
pub(crate) fn daemon_socket(socket_type: SocketType) -> Result<OwnedFd, HandoffError> {
    net::socket_with(
        AddressFamily::UNIX,
        socket_type.to_rustix(),
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| HandoffError::os("opening a socket to the daemon", e))
}

/// A connected client pair: `handed` goes to the daemon, `kept` plays the browser.
#[derive(Debug)]
pub struct ClientPair {
    /// The browser's end, read by the test.
    pub kept: OwnedFd,
    /// The end handed to the daemon (Apache's accepted connection).
    pub handed: OwnedFd,
}

impl ClientPair {
    /// An AF_UNIX stream socketpair, both ends non-blocking. `recv_buffer` sets `SO_RCVBUF` on
    /// the kept end.
    pub fn unix(recv_buffer: Option<u32>) -> Result<ClientPair, HandoffError> {
        let (kept, handed) = net::socketpair(
            AddressFamily::UNIX,
            net::SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| HandoffError::os("creating a Unix socketpair", e))?;
        if let Some(size) = recv_buffer {
            sockopt::set_socket_recv_buffer_size(&kept, size as usize)
                .map_err(|e| HandoffError::os("setting SO_RCVBUF", e))?;
        }
        Ok(ClientPair { kept, handed })
    }
}

/// The kept end of a loopback connection whose accepted end has not been collected yet.
#[derive(Debug)]
pub struct PendingPair {
    /// The browser's end (connected, or completing its handshake).
    pub kept: OwnedFd,
    /// Its local port, which the accepted end sees as its peer port.
    pub port: u16,
}

/// An accepted loopback connection, to be matched with its [`PendingPair`] by port.
#[derive(Debug)]
pub struct Accepted {
    /// The handed end, with `O_NONBLOCK`, `TCP_NODELAY` and `SO_KEEPALIVE`.
    pub handed: OwnedFd,
    /// The peer's (kept end's) port.
    pub peer_port: u16,
}

/// Makes loopback TCP pairs from one reusable 127.0.0.1 listener, without blocking.
#[derive(Debug)]
pub struct TcpPairFactory {
    listener: OwnedFd,
    addr: SocketAddrV4,
}

impl TcpPairFactory {
    /// Opens the listener on 127.0.0.1 with an ephemeral port.
    pub fn new() -> Result<TcpPairFactory, HandoffError> {
        let listener = net::socket_with(
            AddressFamily::INET,
            net::SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| HandoffError::os("opening the loopback listener", e))?;
        // Accepted sockets inherit both options: Apache's browser socket has them set.
        sockopt::set_tcp_nodelay(&listener, true)
            .map_err(|e| HandoffError::os("setting TCP_NODELAY on the loopback listener", e))?;
        sockopt::set_socket_keepalive(&listener, true)
            .map_err(|e| HandoffError::os("setting SO_KEEPALIVE on the loopback listener", e))?;
        net::bind(&listener, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| HandoffError::os("binding the loopback listener", e))?;
        // The kernel caps the backlog at net.core.somaxconn; pairs are accepted at once anyway.
        net::listen(&listener, 4096)
            .map_err(|e| HandoffError::os("listening on the loopback listener", e))?;
        let addr = net::getsockname(&listener)
            .ok()
            .and_then(|a| SocketAddrV4::try_from(a).ok())
            .ok_or(HandoffError::Os {
                what: "reading the loopback listener's address",
                errno: Errno::INVAL,
            })?;
        Ok(TcpPairFactory { listener, addr })
    }

    /// The listener, for waiting until it is readable.
    pub fn listener(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// The listener's address.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// Starts a connection to the listener. `recv_buffer` sets `SO_RCVBUF` on the kept end
    /// before connecting, so the TCP window is sized from it.
    pub fn connect(&self, recv_buffer: Option<u32>) -> Result<PendingPair, HandoffError> {
        let kept = net::socket_with(
            AddressFamily::INET,
            net::SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| HandoffError::os("opening the client's loopback socket", e))?;
        if let Some(size) = recv_buffer {
            sockopt::set_socket_recv_buffer_size(&kept, size as usize)
                .map_err(|e| HandoffError::os("setting SO_RCVBUF", e))?;
        }
        match net::connect(&kept, &self.addr) {
            Ok(()) | Err(Errno::INPROGRESS) => {}
            Err(e) => return Err(HandoffError::os("connecting the loopback pair", e)),
        }
        let port = net::getsockname(&kept)
            .ok()
            .and_then(|a| SocketAddrV4::try_from(a).ok())
            .map(|a| a.port())
            .ok_or(HandoffError::Os {
                what: "reading the client socket's address",
                errno: Errno::INVAL,
            })?;
        Ok(PendingPair { kept, port })
    }

    /// Accepts one completed connection, if any (`Ok(None)` when none is ready).
    pub fn accept(&self) -> Result<Option<Accepted>, HandoffError> {
        loop {
            match net::acceptfrom_with(&self.listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)
            {
                Ok((handed, peer)) => {
                    let peer_port = peer
                        .and_then(|a| SocketAddrV4::try_from(a).ok())
                        .map_or(0, |a| a.port());
                    return Ok(Some(Accepted { handed, peer_port }));
                }
                Err(Errno::AGAIN) => return Ok(None),
                // A connection reset before it was accepted, or a signal: try the next one.
                Err(Errno::CONNABORTED | Errno::INTR) => continue,
                Err(e) => return Err(HandoffError::os("accepting a loopback connection", e)),
            }
        }
    }

    /// Makes one pair, waiting (with `poll`, at most `timeout`) if the handshake has not
    /// completed. For callers outside the ring; connections accepted for other ports are closed.
    pub fn pair_blocking(
        &self,
        recv_buffer: Option<u32>,
        timeout: Duration,
    ) -> Result<ClientPair, HandoffError> {
        let pending = self.connect(recv_buffer)?;
        let deadline = crate::clock::monotonic_ns().saturating_add(duration_ns(timeout));
        loop {
            while let Some(accepted) = self.accept()? {
                if accepted.peer_port == pending.port {
                    return Ok(ClientPair {
                        kept: pending.kept,
                        handed: accepted.handed,
                    });
                }
            }
            let now = crate::clock::monotonic_ns();
            if now >= deadline {
                return Err(HandoffError::Os {
                    what: "waiting for the loopback handshake",
                    errno: Errno::TIMEDOUT,
                });
            }
            let left = rustix::time::Timespec {
                tv_sec: ((deadline - now) / 1_000_000_000) as _,
                tv_nsec: ((deadline - now) % 1_000_000_000) as _,
            };
            let mut fds = [rustix::event::PollFd::new(
                &self.listener,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, Some(&left)) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(HandoffError::os("polling the loopback listener", e)),
            }
        }
    }
}

pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_data_becomes_one_nul_byte() {
        assert_eq!(message_bytes(b""), b"\0");
        assert_eq!(message_bytes(b"{}"), b"{}");
        assert_eq!(message_bytes(b"\0"), b"\0");
    }

    #[test]
    fn apache_policy_retries_after_10_then_20_ms_only_on_enoent_and_econnrefused() {
        let p = ConnectPolicy::default();
        assert_eq!(p, ConnectPolicy::APACHE);
        assert_eq!(p.retries, 2);
        assert_eq!(p.delay_before_retry(1), Duration::from_millis(10));
        assert_eq!(p.delay_before_retry(2), Duration::from_millis(20));
        assert!(ConnectPolicy::retries_on(Errno::NOENT));
        assert!(ConnectPolicy::retries_on(Errno::CONNREFUSED));
        assert!(!ConnectPolicy::retries_on(Errno::ACCESS));
        assert!(!ConnectPolicy::retries_on(Errno::PROTOTYPE));
    }

    #[test]
    fn connect_errors_name_cause_and_fix() {
        let p = Path::new("/run/d.sock");
        let e = HandoffError::from_connect(p, Errno::NOENT, 3);
        assert!(matches!(e, HandoffError::SocketMissing { .. }));
        assert!(e.to_string().contains("is the daemon running"), "{e}");
        assert!(e.to_string().contains("3 attempts"), "{e}");
        let e = HandoffError::from_connect(p, Errno::ACCESS, 1);
        assert!(e.to_string().contains("--socket-mode 0666"), "{e}");
        let e = HandoffError::from_connect(p, Errno::CONNREFUSED, 1);
        assert!(e.to_string().contains("stale"), "{e}");
        let e = HandoffError::from_connect(p, Errno::PROTOTYPE, 1);
        assert!(e.is_wrong_socket_type());
        assert!(e.to_string().contains("SOCK_SEQPACKET"), "{e}");
        let e = HandoffError::from_connect(p, Errno::AGAIN, 1);
        assert!(matches!(e, HandoffError::BacklogFull { .. }));
        assert!(e.to_string().contains("backlog"), "{e}");
        let e = HandoffError::MessageTooLarge {
            size: 300_000,
            limit: 212_960,
        };
        assert!(e.to_string().contains("300000 bytes") && e.to_string().contains("212960"));
    }

    #[test]
    fn seqpacket_limit_is_send_buffer_minus_32() {
        assert_eq!(seqpacket_limit(212_992), 212_960);
        assert_eq!(seqpacket_limit(0), 0);
    }

    #[test]
    fn sockaddr_rejects_paths_that_do_not_fit() {
        let long = "/tmp/".to_string() + &"x".repeat(103);
        assert_eq!(long.len(), 108);
        assert!(matches!(
            unix_sockaddr(Path::new(&long)),
            Err(HandoffError::PathTooLong { len: 108, .. })
        ));
        let (addr, len) = unix_sockaddr(Path::new(&long[..107])).unwrap();
        assert_eq!(addr.sun_path[106], b'x' as libc::c_char);
        assert_eq!(addr.sun_path[107], 0);
        assert_eq!(
            len as usize,
            std::mem::offset_of!(libc::sockaddr_un, sun_path) + 108
        );
    }

    #[test]
    fn tcp_pair_has_apaches_options_on_the_handed_end() {
        let factory = TcpPairFactory::new().unwrap();
        let pair = factory
            .pair_blocking(None, Duration::from_secs(10))
            .unwrap();
        assert!(sockopt::tcp_nodelay(&pair.handed).unwrap());
        assert!(sockopt::socket_keepalive(&pair.handed).unwrap());
        let fl = rustix::fs::fcntl_getfl(&pair.handed).unwrap();
        assert!(fl.contains(rustix::fs::OFlags::NONBLOCK));
        assert_eq!(
            sockopt::socket_domain(&pair.handed).unwrap(),
            AddressFamily::INET
        );
        // The two ends are connected to each other.
        net::send(&pair.kept, b"ping", net::SendFlags::empty()).unwrap();
        let mut buf = [0u8; 8];
        let fds = &mut [rustix::event::PollFd::new(
            &pair.handed,
            rustix::event::PollFlags::IN,
        )];
        rustix::event::poll(fds, None).unwrap();
        let (n, _) = net::recv(&pair.handed, &mut buf, net::RecvFlags::empty()).unwrap();
        assert_eq!(&buf[..n], b"ping");
    }

    #[test]
    fn recv_buffer_is_set_on_the_kept_end_only() {
        let factory = TcpPairFactory::new().unwrap();
        let pair = factory
            .pair_blocking(Some(4096), Duration::from_secs(10))
            .unwrap();
        // Linux doubles the value for bookkeeping overhead.
        assert_eq!(sockopt::socket_recv_buffer_size(&pair.kept).unwrap(), 8192);
        assert!(sockopt::socket_recv_buffer_size(&pair.handed).unwrap() > 8192);
        let pair = ClientPair::unix(Some(4096)).unwrap();
        assert_eq!(sockopt::socket_recv_buffer_size(&pair.kept).unwrap(), 8192);
    }

    #[test]
    fn foreign_connections_to_the_listener_are_not_mistaken_for_a_pair() {
        let factory = TcpPairFactory::new().unwrap();
        let stranger = std::net::TcpStream::connect(factory.local_addr()).unwrap();
        let pair = factory
            .pair_blocking(None, Duration::from_secs(10))
            .unwrap();
        let kept_port = SocketAddrV4::try_from(net::getsockname(&pair.kept).unwrap()).unwrap();
        let handed_peer = net::getpeername(&pair.handed).unwrap().unwrap();
        assert_eq!(SocketAddrV4::try_from(handed_peer).unwrap(), kept_port);
        assert_ne!(stranger.local_addr().unwrap().port(), kept_port.port());
    }
}
