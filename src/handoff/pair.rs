//! Client socket pairs: a loopback TCP pair with Apache's options, or an AF_UNIX socketpair.

use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketFlags, sockopt};

use super::spread::{PairSpread, PortRange};
use super::{HandoffError, duration_ns};

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
        set_recv_buffer(&kept, recv_buffer)?;
        Ok(ClientPair { kept, handed })
    }
}

/// Sets `SO_RCVBUF` on `fd` when a size is given.
fn set_recv_buffer(fd: &OwnedFd, size: Option<u32>) -> Result<(), HandoffError> {
    match size {
        Some(size) => sockopt::set_socket_recv_buffer_size(fd, size as usize)
            .map_err(|e| HandoffError::os("setting SO_RCVBUF", e)),
        None => Ok(()),
    }
}

/// Binds `fd` to `source` with `IP_BIND_ADDRESS_NO_PORT`: the port is left to `connect()`,
/// which may reuse one that connections from other addresses hold.
fn bind_source(fd: &OwnedFd, source: Ipv4Addr) -> Result<(), HandoffError> {
    let what = "binding the client's loopback socket to its source address";
    let on: libc::c_int = 1;
    // SAFETY: `fd` is an open socket; the option value is a c_int that lives across the call,
    // and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(HandoffError::Os {
            what: "setting IP_BIND_ADDRESS_NO_PORT on the client's loopback socket",
            errno: Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL),
        });
    }
    net::bind(fd, &SocketAddrV4::new(source, 0)).map_err(|errno| match errno {
        Errno::ADDRNOTAVAIL => HandoffError::Os {
            what: "binding the client's loopback socket to a source address of 127.0.0.0/8 \
                   (the address is not local here: lo must carry 127.0.0.1/8)",
            errno,
        },
        _ => HandoffError::os(what, errno),
    })
}

/// The IPv4 address a socket is bound to.
fn local_v4(fd: &OwnedFd) -> Option<SocketAddrV4> {
    net::getsockname(fd)
        .ok()
        .and_then(|a| SocketAddrV4::try_from(a).ok())
}

/// The kept end of a loopback connection whose accepted end has not been collected yet.
#[derive(Debug)]
pub struct PendingPair {
    /// The browser's end (connected, or completing its handshake).
    pub kept: OwnedFd,
    /// Its local address, which the accepted end sees as its peer address.
    pub local: SocketAddrV4,
}

/// An accepted loopback connection, to be matched with its [`PendingPair`] by address.
#[derive(Debug)]
pub struct Accepted {
    /// The handed end, with `O_NONBLOCK`, `TCP_NODELAY` and `SO_KEEPALIVE`.
    pub handed: OwnedFd,
    /// The peer's (kept end's) address; 0.0.0.0:0 if the kernel did not say.
    pub peer: SocketAddrV4,
}

/// Makes loopback TCP pairs from one reusable 127.0.0.1 listener, without blocking, with the
/// kept ends spread over as many source addresses as its [`PairSpread`] says (see
/// [`super::spread`]).
#[derive(Debug)]
pub struct TcpPairFactory {
    listener: OwnedFd,
    addr: SocketAddrV4,
    spread: PairSpread,
    /// The source address the next pair starts from.
    next_source: Cell<u32>,
}

impl TcpPairFactory {
    /// Opens the listener on 127.0.0.1 with an ephemeral port; every pair comes from
    /// 127.0.0.1.
    pub fn new() -> Result<TcpPairFactory, HandoffError> {
        TcpPairFactory::with_spread(PairSpread::ONE_ADDRESS)
    }

    /// Opens the listener on 127.0.0.1 with an ephemeral port; pairs take the source
    /// addresses of `spread` in turn.
    pub fn with_spread(spread: PairSpread) -> Result<TcpPairFactory, HandoffError> {
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
        let addr = local_v4(&listener).ok_or(HandoffError::Os {
            what: "reading the loopback listener's address",
            errno: Errno::INVAL,
        })?;
        Ok(TcpPairFactory {
            listener,
            addr,
            spread,
            next_source: Cell::new(0),
        })
    }

    /// The listener, for waiting until it is readable.
    pub fn listener(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// The listener's address: the local address of every handed end.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// The source addresses pairs come from.
    pub fn spread(&self) -> PairSpread {
        self.spread
    }

    /// Starts a connection to the listener from the next source address. `recv_buffer` sets
    /// `SO_RCVBUF` on the kept end before connecting, so the TCP window is sized from it. A
    /// source address out of ports is skipped for the next; when all are, the error is
    /// [`HandoffError::PortsExhausted`].
    pub fn connect(&self, recv_buffer: Option<u32>) -> Result<PendingPair, HandoffError> {
        let addresses = self.spread.addresses();
        let first = self.next_source.get();
        self.next_source.set((first + 1) % addresses);
        for step in 0..addresses {
            let source = (first + step) % addresses;
            if let Some(pending) = self.connect_from(source, recv_buffer)? {
                return Ok(pending);
            }
        }
        // The kernel's range is the one that ran out, whatever the spread was planned with.
        Err(HandoffError::PortsExhausted {
            addresses,
            range: PortRange::system().or(self.spread.range()),
        })
    }

    /// Connects from source address number `source`; `None` when it has no port left.
    fn connect_from(
        &self,
        source: u32,
        recv_buffer: Option<u32>,
    ) -> Result<Option<PendingPair>, HandoffError> {
        let kept = net::socket_with(
            AddressFamily::INET,
            net::SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| HandoffError::os("opening the client's loopback socket", e))?;
        set_recv_buffer(&kept, recv_buffer)?;
        if source > 0 {
            bind_source(&kept, self.spread.source(source))?;
        }
        match net::connect(&kept, &self.addr) {
            Ok(()) | Err(Errno::INPROGRESS) => {}
            Err(Errno::ADDRNOTAVAIL) => return Ok(None),
            Err(e) => return Err(HandoffError::os("connecting the loopback pair", e)),
        }
        let local = local_v4(&kept).ok_or(HandoffError::Os {
            what: "reading the client socket's address",
            errno: Errno::INVAL,
        })?;
        Ok(Some(PendingPair { kept, local }))
    }

    /// Accepts one completed connection, if any (`Ok(None)` when none is ready).
    pub fn accept(&self) -> Result<Option<Accepted>, HandoffError> {
        loop {
            match net::acceptfrom_with(&self.listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)
            {
                Ok((handed, peer)) => {
                    let peer = peer
                        .and_then(|a| SocketAddrV4::try_from(a).ok())
                        .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
                    return Ok(Some(Accepted { handed, peer }));
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
                if accepted.peer == pending.local {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn pairs_past_one_addresss_port_range_are_spread_and_held_at_once() {
        // 3,000 pairs hold 6,000 fds here: raise the soft limit to the hard one.
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
        let range = PortRange::parse("40000 40999").unwrap();
        let factory = TcpPairFactory::with_spread(PairSpread::for_pairs(3000, range)).unwrap();
        let mut per_source = std::collections::BTreeMap::<Ipv4Addr, u32>::new();
        let pairs: Vec<ClientPair> = (0..3000)
            .map(|_| {
                let pair = factory
                    .pair_blocking(None, Duration::from_secs(10))
                    .unwrap();
                let kept = local_v4(&pair.kept).unwrap();
                let peer = net::getpeername(&pair.handed).unwrap().unwrap();
                assert_eq!(SocketAddrV4::try_from(peer).unwrap(), kept);
                *per_source.entry(*kept.ip()).or_default() += 1;
                pair
            })
            .collect();
        assert!(per_source.len() >= 3, "{per_source:?}");
        // No address holds more than the range allows it, and the listener is the same one.
        assert!(per_source.values().all(|&n| n <= 1000), "{per_source:?}");
        assert!(
            per_source.keys().all(|ip| ip.is_loopback()),
            "{per_source:?}"
        );
        for pair in &pairs {
            assert_eq!(local_v4(&pair.handed), Some(factory.local_addr()));
        }
        assert_eq!(pairs.len(), 3000);
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
