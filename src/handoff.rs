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
//! Making a pair costs four non-blocking syscalls (`socket`, `connect`, `getsockname`, `accept4`;
//! two more, `setsockopt` and `bind`, from a source address other than 127.0.0.1);
//! on loopback the handshake completes inside `connect`, so the accept normally succeeds at once,
//! and when it does not, the ring waits for the listener to become readable. `TCP_NODELAY` and
//! `SO_KEEPALIVE` are set once on the listener: Linux copies both to every accepted socket. Each
//! stream holds three fds during its handoff (kept end, handed end, daemon connection) and one
//! afterwards (two until its first byte when the handoff is diagnosed: see [`diagnose`]), and
//! one ephemeral port (`net.ipv4.ip_local_port_range`, 28,232 by default) while it is open. One
//! source address can hold one range of pairs; a factory made [`TcpPairFactory::with_spread`]
//! binds its kept ends to as many addresses of 127.0.0.0/8 as the concurrency needs, so that
//! only the open-file limit bounds it ([`spread`]).

#![deny(missing_docs)]

mod diag;
mod error;
mod pair;
pub mod spread;

use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketFlags, sockopt};

pub use diag::{HandoffFate, diagnose, peer_accepted, shut_write, unconsumed_bytes};
pub use error::HandoffError;
pub use pair::{Accepted, ClientPair, PendingPair, TcpPairFactory};
pub use spread::{PairSpread, PortRange};

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
}
