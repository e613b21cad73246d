//! [`HandoffError`]: every way a handoff (or the stream after it) can fail, each message naming
//! the cause and the fix.

use std::path::{Path, PathBuf};

use rustix::io::Errno;

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
    SocketMissing {
        /// The daemon's socket path.
        path: PathBuf,
        /// Connect attempts made (the first and the retries).
        attempts: u8,
    },
    /// `connect()` failed with `EACCES`.
    #[error(
        "permission denied connecting to {} (EACCES): the socket's mode (or a parent directory's) \
         does not let this user connect; start the daemon with a wider socket mode, e.g. \
         --socket-mode 0666",
        path.display()
    )]
    PermissionDenied {
        /// The daemon's socket path.
        path: PathBuf,
    },
    /// `connect()` failed with `ECONNREFUSED`.
    #[error(
        "connection refused by {} (ECONNREFUSED, {attempts} attempts): the socket file exists \
         but nothing listens on it, most likely a stale file left by a daemon that exited; \
         restart the daemon",
        path.display()
    )]
    ConnectionRefused {
        /// The daemon's socket path.
        path: PathBuf,
        /// Connect attempts made (the first and the retries).
        attempts: u8,
    },
    /// `connect()` with `SOCK_SEQPACKET` failed with `EPROTOTYPE`: the daemon listens as
    /// `SOCK_STREAM`. A conformance failure; the rest can still be tested over `SOCK_STREAM`.
    #[error(
        "{} is a SOCK_STREAM socket, but Apache's mod_socket_handoff connects with SOCK_SEQPACKET \
         (EPROTOTYPE), so every handoff through Apache fails with a 503; make the daemon listen \
         with SOCK_SEQPACKET (--socket-type stream tests everything else meanwhile)",
        path.display()
    )]
    WrongSocketType {
        /// The daemon's socket path.
        path: PathBuf,
    },
    /// `connect()` failed with `EAGAIN`: the daemon's accept backlog is full.
    #[error(
        "the accept backlog of {} is full (EAGAIN): Apache fails such a handoff at once with a \
         503; the daemon is not accepting connections fast enough (accept faster, or raise its \
         listen backlog and net.core.somaxconn)",
        path.display()
    )]
    BacklogFull {
        /// The daemon's socket path.
        path: PathBuf,
    },
    /// The connect attempt was still pending when the connect timeout expired.
    #[error(
        "connecting to {} did not complete within {timeout_ms} ms (Apache's connect timeout): \
         the daemon is not accepting connections (accept backlog full, or its loop is blocked)",
        path.display()
    )]
    ConnectTimeout {
        /// The daemon's socket path.
        path: PathBuf,
        /// The connect timeout that expired.
        timeout_ms: u64,
    },
    /// Any other `connect()` failure.
    #[error("connecting to {} failed: {errno}{}", path.display(), connect_hint(*errno))]
    Connect {
        /// The daemon's socket path.
        path: PathBuf,
        /// What `connect()` returned.
        errno: Errno,
    },
    /// `sendmsg()` failed with `EMSGSIZE`: the message does not fit the socket's send buffer.
    #[error(
        "the handoff message is {size} bytes, larger than the socket's limit of {limit} bytes \
         (EMSGSIZE); Apache answers such a request with a 500: send at most {limit} bytes of data, \
         or raise net.core.wmem_default"
    )]
    MessageTooLarge {
        /// Bytes in the handoff message.
        size: usize,
        /// The most the socket accepts ([`super::seqpacket_limit`]).
        limit: usize,
    },
    /// The `sendmsg()` was still pending when the send timeout expired.
    #[error(
        "sending the handoff to {} did not complete within {timeout_ms} ms (Apache's send \
         timeout): the daemon is not reading its socket",
        path.display()
    )]
    SendTimeout {
        /// The daemon's socket path.
        path: PathBuf,
        /// The send timeout that expired.
        timeout_ms: u64,
    },
    /// Any other `sendmsg()` failure.
    #[error("sending the handoff to {} failed: {errno}{}", path.display(), send_hint(*errno))]
    Send {
        /// The daemon's socket path.
        path: PathBuf,
        /// What `sendmsg()` returned.
        errno: Errno,
    },
    /// Reading the daemon's response from the kept end failed.
    #[error("reading the daemon's response failed: {errno}{}", receive_hint(*errno))]
    Receive {
        /// What the read returned.
        errno: Errno,
    },
    /// `io_uring_setup` failed.
    #[error(
        "io_uring is unavailable ({errno}): check /proc/sys/kernel/io_uring_disabled (0 allows \
         everyone, 1 only members of kernel.io_uring_group, 2 no one) and, in a container, that \
         the seccomp profile allows io_uring_setup, io_uring_enter and io_uring_register"
    )]
    RingUnavailable {
        /// What `io_uring_setup` returned.
        errno: Errno,
    },
    /// The kernel's io_uring lacks an operation or feature the ring needs.
    #[error(
        "this kernel's io_uring does not support {feature}: streamcheck needs Linux 6.0 or later"
    )]
    RingUnsupported {
        /// The missing operation or feature, by its kernel name.
        feature: &'static str,
    },
    /// `EMFILE`/`ENFILE` while opening a socket.
    #[error(
        "out of file descriptors while {what} ({errno}): raise the open-file limit (ulimit -n, up \
         to the hard limit) or run fewer concurrent streams; each stream holds 3 fds during its \
         handoff and 1 afterwards"
    )]
    FdLimit {
        /// What was being opened.
        what: &'static str,
        /// `EMFILE` (this process's limit) or `ENFILE` (the system's).
        errno: Errno,
    },
    /// `EADDRNOTAVAIL` from every source address while connecting a loopback pair.
    #[error(
        "no local port left for another loopback pair (EADDRNOTAVAIL): from each of its {addresses} \
         source address(es) the client holds at most one connection per port of \
         net.ipv4.ip_local_port_range{}, and all are taken, by this run's streams or by ports \
         other programs hold; widen the range (sysctl -w net.ipv4.ip_local_port_range='1024 \
         65535') or run fewer concurrent streams",
        range.map_or(String::new(), |r| format!(" ({r}, {} ports)", r.ports()))
    )]
    PortsExhausted {
        /// Source addresses the pairs were spread over.
        addresses: u32,
        /// The machine's port range (or, if it cannot be read, the one the spread was planned
        /// with).
        range: Option<super::PortRange>,
    },
    /// The daemon socket path does not fit in `sockaddr_un`.
    #[error(
        "socket path {} is {len} bytes, but a Unix socket path must be at most 107 bytes: use a \
         shorter path",
        path.display()
    )]
    PathTooLong {
        /// The daemon's socket path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// Any other system call failure.
    #[error("{what} failed: {errno}")]
    Os {
        /// The operation, in words.
        what: &'static str,
        /// What the system call returned.
        errno: Errno,
    },
    /// The io_uring lost completions (the kernel could not buffer an overflowing completion
    /// queue). Streams may then never end: drop the ring.
    #[error(
        "the io_uring completion queue overflowed and {lost} completions were lost: run fewer \
         concurrent streams or raise the ring's cq_entries"
    )]
    CompletionsLost {
        /// How many completions the kernel dropped.
        lost: u32,
    },
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
    /// [`SocketType::Stream`](super::SocketType::Stream) to test the rest).
    pub fn is_wrong_socket_type(&self) -> bool {
        matches!(self, HandoffError::WrongSocketType { .. })
    }

    pub(crate) fn os(what: &'static str, errno: Errno) -> HandoffError {
        match errno {
            Errno::MFILE | Errno::NFILE => HandoffError::FdLimit { what, errno },
            _ => HandoffError::Os { what, errno },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn running_out_of_ports_names_the_range_and_the_fix() {
        let e = HandoffError::PortsExhausted {
            addresses: 4,
            range: super::super::PortRange::parse("40000 40999"),
        };
        let m = e.to_string();
        assert!(
            m.contains("EADDRNOTAVAIL") && m.contains("4 source address"),
            "{m}"
        );
        assert!(m.contains("(40000-40999, 1000 ports)"), "{m}");
        assert!(m.contains("sysctl -w net.ipv4.ip_local_port_range"), "{m}");
    }
}
