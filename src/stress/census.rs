//! Which client sockets a daemon still holds: its sockets whose local address is one of the
//! client's pair listeners. Every socket handed off over a TCP pair is an accepted end of such
//! a listener, whichever source address the pair's other end came from, so these are exactly
//! the handed sockets the daemon has not closed, open or already shut down by both sides.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

use super::resources::unreadable;

/// How many client sockets `pid` still holds: its sockets whose local address is one of the
/// client's pair `listeners`, i.e. handed client sockets, open or already shut down by both
/// sides.
///
/// Each of the daemon's socket fds is duplicated into this process with `pidfd_getfd` and asked
/// for its address: a few system calls per fd. Where that is not allowed (another user's
/// daemon, a seccomp profile), the sockets are looked up in `/proc/PID/net` instead
/// ([`census`]), which costs as much as formatting every TCP socket of the network namespace,
/// TIME_WAIT included: tens of milliseconds after a run of 10,000 streams.
pub fn client_sockets(pid: u32, listeners: &[SocketAddrV4]) -> Result<u64, String> {
    match held_by_address(pid, listeners) {
        Ok(n) => Ok(n),
        Err(_) => census(pid, listeners).map(|c| c.on_listeners + c.unlisted.len() as u64),
    }
}

/// [`client_sockets`] through `pidfd_getfd` and `getsockname`.
fn held_by_address(pid: u32, listeners: &[SocketAddrV4]) -> Result<u64, String> {
    use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};
    let target = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| format!("{pid} is not a process id"))?;
    let pidfd = pidfd_open(target, PidfdFlags::empty()).map_err(|e| format!("pidfd_open: {e}"))?;
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).map_err(|e| unreadable(&dir, e))?;
    let mut held = 0;
    for entry in entries.flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|t| t.to_string_lossy().starts_with("socket:["));
        let Some(n) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if !is_socket {
            continue;
        }
        let fd = match pidfd_getfd(&pidfd, n, PidfdGetfdFlags::empty()) {
            Ok(fd) => fd,
            // Closed since the directory was read.
            Err(rustix::io::Errno::BADF) => continue,
            Err(e) => return Err(format!("pidfd_getfd: {e}")),
        };
        let local = rustix::net::getsockname(&fd)
            .ok()
            .and_then(|a| std::net::SocketAddrV4::try_from(a).ok());
        let listening = rustix::net::sockopt::socket_acceptconn(&fd).unwrap_or(false);
        if !listening && local.is_some_and(|a| listeners.contains(&a)) {
            held += 1;
        }
    }
    Ok(held)
}

/// `pid`'s sockets: on one of the client's pair listeners, and in no table.
#[derive(Debug, Default)]
pub struct Census {
    /// Sockets, not listening, whose local address is one of the listeners.
    pub on_listeners: u64,
    /// Inodes of sockets found in no table.
    pub unlisted: HashSet<u64>,
}

/// `pid`'s sockets from `/proc/PID/net`: those whose local address is one of `listeners` (not
/// listening), and those in no table at all (a TCP socket both sides have shut down is taken
/// out of the tables while its fd stays open, which is what a daemon that never closes its
/// client fds leaves).
pub fn census(pid: u32, listeners: &[SocketAddrV4]) -> Result<Census, String> {
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).map_err(|e| unreadable(&dir, e))?;
    let mut inodes: HashSet<u64> = entries
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    let mut on_listeners = 0;
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let Some((inode, local, listening)) = tcp_entry(line) else {
                continue;
            };
            if inodes.remove(&inode) && !listening && local.is_some_and(|a| listeners.contains(&a))
            {
                on_listeners += 1;
            }
        }
    }
    // Every other kind of socket, by the inode column of its table.
    for (table, column) in [
        ("udp", 9),
        ("udp6", 9),
        ("raw", 9),
        ("raw6", 9),
        ("unix", 6),
        ("netlink", 8),
        ("packet", 8),
    ] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            if let Some(inode) = line
                .split_whitespace()
                .nth(column)
                .and_then(|v| v.parse().ok())
            {
                inodes.remove(&inode);
            }
        }
    }
    Ok(Census {
        on_listeners,
        unlisted: inodes,
    })
}

/// A `/proc/net/tcp{,6}` line (`sl local rem st tx:rx tr:when retrnsmt uid timeout inode …`):
/// its inode, its local IPv4 address (`None` for IPv6 other than IPv4-mapped), and whether it
/// is listening (state 0A).
fn tcp_entry(line: &str) -> Option<(u64, Option<SocketAddrV4>, bool)> {
    let fields: Vec<&str> = line.split_whitespace().take(10).collect();
    let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
    let (ip, port) = local.rsplit_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some((
        inode.parse().ok()?,
        proc_ipv4(ip).map(|ip| SocketAddrV4::new(ip, port)),
        *state == "0A",
    ))
}

/// An address as `/proc/net/tcp{,6}` prints it: each 32-bit word of the network-order bytes in
/// hex, as loaded in host order (127.0.0.1 is `0100007F` on x86).
fn proc_ipv4(hex: &str) -> Option<Ipv4Addr> {
    let mut bytes = Vec::with_capacity(16);
    for i in (0..hex.len()).step_by(8) {
        let word = u32::from_str_radix(hex.get(i..i + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    match bytes.len() {
        4 => Some(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        16 => Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_ipv4_mapped(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways_of_finding_held_sockets_agree() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (at, port) = listener_at(&listener);
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (open, _) = listener.accept().unwrap();
        let client2 = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (shut, _) = listener.accept().unwrap();
        // One open, one shut down by both sides but still an fd.
        shut.shutdown(std::net::Shutdown::Write).unwrap();
        drop(client2);
        let me = std::process::id();
        let inode = socket_inode(&shut);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !census(me, &[at]).unwrap().unlisted.contains(&inode) {
            assert!(std::time::Instant::now() < until, "never left the table");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(held_by_address(me, &[at]).unwrap(), 2);
        assert_eq!(census(me, &[at]).unwrap().on_listeners, 1);
        drop((open, shut, client));
        assert_eq!(held_by_address(me, &[at]).unwrap(), 0);
    }

    fn listener_at(listener: &std::net::TcpListener) -> (SocketAddrV4, u16) {
        match listener.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => (a, a.port()),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn client_sockets_are_found_by_the_pair_listeners_address() {
        // Two listeners on one port, on two loopback addresses: only the given one counts.
        let (listener, other) = loop {
            let first = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
            let port = first.local_addr().unwrap().port();
            if let Ok(second) = std::net::TcpListener::bind(("127.0.0.3", port)) {
                break (first, second);
            }
        };
        let (at, port) = listener_at(&listener);
        let _client = std::net::TcpStream::connect(("127.0.0.2", port)).unwrap();
        let _stranger = std::net::TcpStream::connect(("127.0.0.3", port)).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let (_elsewhere, _) = other.accept().unwrap();
        let me = std::process::id();
        // Other tests of this process open sockets too: count only this listener's.
        assert_eq!(
            census(me, &[at]).unwrap().on_listeners,
            1,
            "the accepted end"
        );
        assert_eq!(held_by_address(me, &[at]).unwrap(), 1);
        let both = [at, listener_at(&other).0];
        assert_eq!(census(me, &both).unwrap().on_listeners, 2);
        assert_eq!(client_sockets(me, &both).unwrap(), 2);
        drop(accepted);
        assert_eq!(census(me, &[at]).unwrap().on_listeners, 0);
    }

    #[test]
    fn proc_net_tcp_lines_are_read() {
        // As printed on a little-endian machine: 127.0.0.2 is 0200007F.
        let word = |ip: Ipv4Addr| format!("{:08X}", u32::from_ne_bytes(ip.octets()));
        let two = word(Ipv4Addr::new(127, 0, 0, 2));
        let held = format!("0: {two}:2382 0100007F:B000 01 0:0 0:0 0 0 0 100 1");
        let listen = format!("1: {two}:2382 00000000:0000 0A 0:0 0:0 0 0 0 200 1");
        let at = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 0x2382);
        assert_eq!(tcp_entry(&held), Some((100, Some(at), false)));
        assert_eq!(tcp_entry(&listen), Some((200, Some(at), true)));
        let mapped = format!(
            "0000000000000000{}{two}",
            word(Ipv4Addr::new(0, 0, 255, 255))
        );
        let v6 = format!(
            "2: {mapped}:2382 00000000000000000000000000000000:0000 01 0:0 0:0 0 0 0 300 1"
        );
        assert_eq!(tcp_entry(&v6), Some((300, Some(at), false)));
        let native = "3: 00000000000000000000000001000000:2382 0:0 01 0:0 0:0 0 0 0 400 1";
        assert_eq!(tcp_entry(native), Some((400, None, false)));
        assert_eq!(tcp_entry("garbage"), None);
    }

    #[test]
    fn a_socket_kept_after_both_sides_closed_counts_as_held() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (at, port) = listener_at(&listener);
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let me = std::process::id();
        // Shut down both ways, as a daemon that shuts down writing and never closes, after its
        // client closed: out of the tables, but still an fd.
        accepted.shutdown(std::net::Shutdown::Write).unwrap();
        drop(client);
        let inode = socket_inode(&accepted);
        // The kernel moves it out of the table when the peer's FIN arrives: wait for that
        // (generously; a hang is the only failure this guards against).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let c = census(me, &[at]).unwrap();
            if c.unlisted.contains(&inode) {
                assert_eq!(c.on_listeners, 0);
                break;
            }
            assert!(std::time::Instant::now() < until, "never left the table");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(accepted);
        assert!(!census(me, &[at]).unwrap().unlisted.contains(&inode));
    }

    fn socket_inode(s: &impl std::os::fd::AsRawFd) -> u64 {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", s.as_raw_fd())).unwrap();
        let text = link.to_string_lossy().into_owned();
        text.trim_start_matches("socket:[")
            .trim_end_matches(']')
            .parse()
            .unwrap()
    }
}
