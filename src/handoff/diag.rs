//! What became of a handoff message that got no answer: did the daemon accept the connection,
//! and did it read the message?
//!
//! Both answers come from our own end of the daemon connection, kept open (write side shut, so
//! the daemon still sees the end of the message at once, as from Apache) until the stream's first
//! byte or its end:
//! - `SIOCOUTQ` on an AF_UNIX socket is the bytes we sent that the peer has not consumed yet
//!   (the kernel charges them to our send buffer until the receiver frees them). More than zero:
//!   the message was never read.
//! - `NETLINK_SOCK_DIAG` with `UNIX_DIAG` and `UDIAG_SHOW_PEER` names our peer socket's inode. A
//!   connection still waiting in the listener's accept queue has no inode yet (the kernel gives
//!   the socket one when `accept` attaches it to a file): inode 0 means never accepted.
//!
//! A daemon that closed the connection after reading leaves the queue empty; one that died or
//! closed the connection unread had the queued message freed with it, so "read" also covers a
//! message discarded with its connection (the daemon's death is reported on its own).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::net::{AddressFamily, SendFlags, SocketFlags, SocketType, netlink};

/// What the daemon did with a handoff message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandoffFate {
    /// The connection is still in the listener's accept queue: the daemon never accepted it.
    NeverAccepted,
    /// The daemon accepted the connection but never read the message.
    NotRead,
    /// The message is still unread; whether the connection was accepted is unknown (the kernel
    /// offers no socket diagnosis: `unix_diag` is not available).
    Unread,
    /// The message was consumed: read by the daemon, or discarded with its connection.
    Read,
}

impl HandoffFate {
    /// True when the daemon never took the client socket.
    pub fn not_taken(self) -> bool {
        self != HandoffFate::Read
    }

    /// What happened, as the subject of a sentence: "the daemon never accepted the connection".
    pub fn describe(self) -> &'static str {
        match self {
            HandoffFate::NeverAccepted => "the daemon never accepted the connection",
            HandoffFate::NotRead => "the daemon accepted the connection but never read the handoff",
            HandoffFate::Unread => "the daemon never read the handoff message",
            HandoffFate::Read => "the daemon read the handoff",
        }
    }
}

/// What became of the message sent on `daemon` (our end of the daemon connection).
pub fn diagnose(daemon: BorrowedFd<'_>) -> io::Result<HandoffFate> {
    if unconsumed_bytes(daemon)? == 0 {
        return Ok(HandoffFate::Read);
    }
    Ok(match peer_accepted(daemon) {
        Ok(true) => HandoffFate::NotRead,
        Ok(false) => HandoffFate::NeverAccepted,
        Err(_) => HandoffFate::Unread,
    })
}

/// Bytes sent on the AF_UNIX socket `fd` that its peer has not consumed (`SIOCOUTQ`).
pub fn unconsumed_bytes(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (= TIOCOUTQ) writes one int through the pointer, which points at a live
    // c_int; the fd is borrowed, so it stays open for the call.
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::TIOCOUTQ,
            &mut queued,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(queued).unwrap_or(0))
}

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const UDIAG_SHOW_PEER: u32 = 0x4;
const UNIX_DIAG_PEER: u16 = 2;
const NLMSG_HDR: usize = 16;
const UNIX_DIAG_MSG: usize = 16;

/// Whether the peer of the connected AF_UNIX socket `fd` has been accepted (has an inode).
pub fn peer_accepted(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let inode = rustix::fs::fstat(fd)?.st_ino;
    let inode = u32::try_from(inode).map_err(|_| io::Error::other("socket inode over 32 bits"))?;
    Ok(peer_inode(inode)? != 0)
}

/// The peer inode of the AF_UNIX socket `inode`, by one `UNIX_DIAG` request.
fn peer_inode(inode: u32) -> io::Result<u32> {
    let nl = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )?;
    rustix::net::send(&nl, &request(inode), SendFlags::empty())?;
    let mut buf = [0u8; 4096];
    // The kernel answers inside the send: the reply is queued already.
    let n = rustix::net::recv(&nl, &mut buf, rustix::net::RecvFlags::DONTWAIT)?.0;
    parse_reply(buf.get(..n).unwrap_or_default(), inode)
}

/// `nlmsghdr` + `unix_diag_req` asking for the socket `inode` and its peer.
fn request(inode: u32) -> Vec<u8> {
    let len = (NLMSG_HDR + 24) as u32;
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
    m.push(libc::AF_UNIX as u8); // sdiag_family
    m.push(0); // sdiag_protocol
    m.extend_from_slice(&0u16.to_ne_bytes()); // pad
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_states: any
    m.extend_from_slice(&inode.to_ne_bytes()); // udiag_ino
    m.extend_from_slice(&UDIAG_SHOW_PEER.to_ne_bytes()); // udiag_show
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_cookie: INET_DIAG_NOCOOKIE
    m.extend_from_slice(&u32::MAX.to_ne_bytes());
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The peer inode from the reply (0 when the reply carries no peer attribute).
fn parse_reply(b: &[u8], inode: u32) -> io::Result<u32> {
    let bad = || io::Error::other("malformed sock_diag reply");
    let len = u32_at(b, 0).ok_or_else(bad)? as usize;
    let kind = u16_at(b, 4).ok_or_else(bad)?;
    if kind == NLMSG_ERROR {
        let errno = u32_at(b, NLMSG_HDR).ok_or_else(bad)? as i32;
        return Err(io::Error::from_raw_os_error(-errno));
    }
    if kind != SOCK_DIAG_BY_FAMILY || u32_at(b, NLMSG_HDR + 4) != Some(inode) {
        return Err(bad());
    }
    let end = len.min(b.len());
    let mut at = NLMSG_HDR + UNIX_DIAG_MSG;
    while at + 4 <= end {
        let attr_len = u16_at(b, at).ok_or_else(bad)? as usize;
        if attr_len < 4 {
            return Err(bad());
        }
        if u16_at(b, at + 2) == Some(UNIX_DIAG_PEER) {
            return u32_at(b, at + 4).ok_or_else(bad);
        }
        at += (attr_len + 3) & !3;
    }
    // No peer attribute: the peer is gone (closed), which is not an accepted, reading daemon.
    Ok(0)
}

/// Shuts down the write side of `fd`: the peer reads the end of the message at once, as when
/// Apache closes its end, while our end stays open for [`diagnose`].
pub fn shut_write(fd: impl AsFd) {
    let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn listener(dir: &std::path::Path) -> (rustix::fd::OwnedFd, rustix::net::SocketAddrUnix) {
        let path = dir.join("l.sock");
        let _ = std::fs::remove_file(&path);
        let l = rustix::net::socket(AddressFamily::UNIX, SocketType::SEQPACKET, None).unwrap();
        let addr = rustix::net::SocketAddrUnix::new(&path).unwrap();
        rustix::net::bind(&l, &addr).unwrap();
        rustix::net::listen(&l, 8).unwrap();
        (l, addr)
    }

    fn connected(addr: &rustix::net::SocketAddrUnix) -> rustix::fd::OwnedFd {
        let c = rustix::net::socket(AddressFamily::UNIX, SocketType::SEQPACKET, None).unwrap();
        rustix::net::connect(&c, addr).unwrap();
        rustix::net::send(&c, b"handoff", SendFlags::empty()).unwrap();
        shut_write(&c);
        c
    }

    #[test]
    fn tells_never_accepted_from_accepted_unread_from_read() {
        let dir = std::env::temp_dir().join(format!("streamcheck-diag-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (l, addr) = listener(&dir);

        let waiting = connected(&addr);
        assert!(unconsumed_bytes(waiting.as_fd()).unwrap() > 0);
        let fate = diagnose(waiting.as_fd()).unwrap();
        assert!(
            matches!(fate, HandoffFate::NeverAccepted | HandoffFate::Unread),
            "{fate:?}"
        );
        if fate == HandoffFate::Unread {
            eprintln!("unix_diag unavailable here: accepted-or-not is not told apart");
        }

        let accepted = rustix::net::accept(&l).unwrap();
        let expect_not_read = if fate == HandoffFate::Unread {
            HandoffFate::Unread
        } else {
            HandoffFate::NotRead
        };
        assert_eq!(diagnose(waiting.as_fd()).unwrap(), expect_not_read);

        let mut buf = [0u8; 16];
        rustix::net::recv(&accepted, &mut buf, rustix::net::RecvFlags::empty()).unwrap();
        assert_eq!(diagnose(waiting.as_fd()).unwrap(), HandoffFate::Read);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_reply_without_a_peer_attribute_is_no_peer() {
        let mut reply = vec![0u8; NLMSG_HDR + UNIX_DIAG_MSG];
        let len = reply.len() as u32;
        reply[0..4].copy_from_slice(&len.to_ne_bytes());
        reply[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        reply[NLMSG_HDR + 4..NLMSG_HDR + 8].copy_from_slice(&7u32.to_ne_bytes());
        assert_eq!(parse_reply(&reply, 7).unwrap(), 0);
        assert!(parse_reply(&reply, 8).is_err(), "another socket's reply");
        assert!(parse_reply(&reply[..10], 7).is_err());
    }
}
