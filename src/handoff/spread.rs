//! How loopback pairs get past one address's port range: [`PortRange`] and [`PairSpread`].
//!
//! Linux picks a `connect()`'s local port so that the connection's 4-tuple (source address,
//! source port, destination address, destination port) is unique (`__inet_hash_connect`). Every
//! pair connects to the same listener, so from one source address the pairs can hold one
//! connection per port of `net.ipv4.ip_local_port_range` (28,232 by default) and the next
//! `connect()` fails with `EADDRNOTAVAIL`, whatever the open-file limit. The whole of 127.0.0.0/8
//! is local on Linux's loopback, so the client's end is bound to 127.0.0.2, 127.0.0.3, …: each
//! source address brings a port range of its own. The bind sets `IP_BIND_ADDRESS_NO_PORT`, which
//! leaves the port to `connect()` and its 4-tuple rule; a plain bind to port 0 would reserve a
//! port for that address alone, and fails with `EADDRINUSE` once connects have taken the range.
//!
//! [`PairSpread::for_pairs`] sizes the spread from the pairs wanted at once and the port range.
//! Each address is planned to hold at most three quarters of the range: room for ports other
//! programs have bound, and a short search for a free port inside `connect()`. Pairs take the
//! addresses in turn. The first, 127.0.0.1, is left unbound (what the kernel picks for a
//! loopback destination), so a run that needs one address costs no extra system call.

use std::fmt;
use std::net::Ipv4Addr;

/// Where Linux keeps the range of local ports it gives to `connect()`.
pub const PORT_RANGE_PATH: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// The local ports `connect()` chooses from (`net.ipv4.ip_local_port_range`), both ends
/// included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The lowest port.
    pub low: u16,
    /// The highest port.
    pub high: u16,
}

impl PortRange {
    /// The machine's range, from [`PORT_RANGE_PATH`] (`None` if it cannot be read).
    pub fn system() -> Option<PortRange> {
        PortRange::parse(&std::fs::read_to_string(PORT_RANGE_PATH).ok()?)
    }

    /// Two port numbers, separated by white space (as in `/proc`) or a `-`: `32768 60999`,
    /// `40000-40999`. `None` unless 1 ≤ low ≤ high ≤ 65535.
    pub fn parse(text: &str) -> Option<PortRange> {
        let mut numbers = text
            .split(|c: char| c.is_whitespace() || c == '-')
            .filter(|s| !s.is_empty());
        let low: u16 = numbers.next()?.parse().ok()?;
        let high: u16 = numbers.next()?.parse().ok()?;
        if numbers.next().is_some() || low == 0 || low > high {
            return None;
        }
        Some(PortRange { low, high })
    }

    /// How many ports it holds.
    pub fn ports(self) -> u32 {
        u32::from(self.high) - u32::from(self.low) + 1
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

/// Source addresses 127.0.0.1 up to 127.255.255.254 (the broadcast address excluded).
const MAX_ADDRESSES: u64 = (1 << 24) - 2;

/// Over how many loopback source addresses the pairs of one factory are spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairSpread {
    addresses: u32,
    range: Option<PortRange>,
}

impl PairSpread {
    /// One source address (127.0.0.1), the port range not read: up to one range of pairs.
    pub const ONE_ADDRESS: PairSpread = PairSpread {
        addresses: 1,
        range: None,
    };

    /// Enough source addresses for `pairs` open at once with `range`, each holding at most
    /// three quarters of the range.
    pub fn for_pairs(pairs: u64, range: PortRange) -> PairSpread {
        let per_address = (u64::from(range.ports()) * 3 / 4).max(1);
        let addresses = pairs.div_ceil(per_address).clamp(1, MAX_ADDRESSES);
        PairSpread {
            addresses: addresses as u32,
            range: Some(range),
        }
    }

    /// How many source addresses: 127.0.0.1 and the ones after it.
    pub fn addresses(self) -> u32 {
        self.addresses
    }

    /// The port range the spread was planned with.
    pub fn range(self) -> Option<PortRange> {
        self.range
    }

    /// Source address number `k` (from 0): 127.0.0.1 + `k`.
    pub fn source(self, k: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(Ipv4Addr::LOCALHOST) + k)
    }

    /// The most pairs it can hold at once: one per port of the range from each address.
    pub fn capacity(self) -> Option<u64> {
        self.range
            .map(|r| u64::from(r.ports()) * u64::from(self.addresses))
    }
}

impl Default for PairSpread {
    fn default() -> Self {
        PairSpread::ONE_ADDRESS
    }
}

impl fmt::Display for PairSpread {
    /// `127.0.0.1`, or `127.0.0.1-127.0.0.4 (4 addresses)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addresses {
            1 => write!(f, "{}", self.source(0)),
            n => write!(
                f,
                "{}-{} ({n} addresses)",
                self.source(0),
                self.source(n - 1)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_are_read_as_proc_writes_them_or_with_a_dash() {
        let r = PortRange::parse("32768\t60999\n").unwrap();
        assert_eq!((r.low, r.high, r.ports()), (32768, 60999, 28232));
        assert_eq!(PortRange::parse("40000-40999").unwrap().ports(), 1000);
        assert_eq!(PortRange::parse("5 5").unwrap().ports(), 1);
        for bad in ["", "40000", "2 1", "0 10", "1 70000", "1 2 3", "a-b"] {
            assert_eq!(PortRange::parse(bad), None, "{bad:?}");
        }
        assert!(PortRange::system().is_some_and(|r| r.ports() > 0));
    }

    #[test]
    fn the_spread_grows_with_the_pairs_at_three_quarters_of_the_range_each() {
        let range = PortRange::parse("40000 40999").unwrap();
        assert_eq!(PairSpread::for_pairs(1, range).addresses(), 1);
        assert_eq!(PairSpread::for_pairs(750, range).addresses(), 1);
        assert_eq!(PairSpread::for_pairs(751, range).addresses(), 2);
        let s = PairSpread::for_pairs(3000, range);
        assert_eq!(s.addresses(), 4);
        assert_eq!(s.capacity(), Some(4000));
        assert_eq!(s.to_string(), "127.0.0.1-127.0.0.4 (4 addresses)");
        // 80,000 streams with Linux's default range.
        let linux = PortRange::parse("32768 60999").unwrap();
        assert_eq!(PairSpread::for_pairs(80_000, linux).addresses(), 4);
        // Past 127.0.0.255 the addresses go on into 127.0.1.0/24.
        let tiny = PortRange::parse("5 5").unwrap();
        let wide = PairSpread::for_pairs(300, tiny);
        assert_eq!(wide.source(299), Ipv4Addr::new(127, 0, 1, 44));
        assert_eq!(PairSpread::ONE_ADDRESS.to_string(), "127.0.0.1");
    }
}
