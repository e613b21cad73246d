//! How many streams the client can hold open at once, and which of its limits says so.
//!
//! Each open stream holds one of the client's fds (RLIMIT_NOFILE, raised to the hard limit),
//! each handoff in flight two more (at most 1,024 at a time) and each
//! diagnosed stream one more until its first byte. Each TCP pair also holds one local port: one
//! source address holds at most one pair per port of `net.ipv4.ip_local_port_range`, so the
//! pairs are spread over as many addresses as the run needs ([`PairSpread`]) and the ports stop
//! bounding the run; the open-file limit is what is left. The run's [`Ceiling`] is the lower of
//! the two, named, so that a run which asked for more is known to be bounded by the client.
//! The addresses are sized for the concurrency asked (with a quarter to spare), so the ports
//! set the ceiling only when the open-file limit would allow more than was asked.
//!
//! `STREAMCHECK_PORT_RANGE=LOW-HIGH` makes the run plan with that range instead of the
//! machine's, to test the spreading on a machine whose open-file limit is below one range of
//! pairs; the kernel still hands out ports from its own range.

use serde::Serialize;

use super::driver::{DIAGNOSED_STREAMS, MAX_HANDOFFS_IN_FLIGHT};
use super::{StressConfig, StressError};
use crate::handoff::{PairKind, PairSpread, PortRange};

/// The environment variable that replaces the machine's port range in the run's plan.
pub const PORT_RANGE_ENV: &str = "STREAMCHECK_PORT_RANGE";

/// The port range a run plans its pairs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortRangeInfo {
    /// The lowest port.
    pub low: u16,
    /// The highest port.
    pub high: u16,
    /// How many ports.
    pub ports: u32,
    /// `system` (`/proc/sys/net/ipv4/ip_local_port_range`) or `STREAMCHECK_PORT_RANGE`.
    pub from: &'static str,
}

impl PortRangeInfo {
    fn new(range: PortRange, from: &'static str) -> PortRangeInfo {
        PortRangeInfo {
            low: range.low,
            high: range.high,
            ports: range.ports(),
            from,
        }
    }

    fn range(&self) -> PortRange {
        PortRange {
            low: self.low,
            high: self.high,
        }
    }
}

/// The range to plan with: `STREAMCHECK_PORT_RANGE` if set, else the machine's (`None` when
/// `/proc` cannot be read).
pub fn port_range() -> Result<Option<PortRangeInfo>, StressError> {
    match std::env::var(PORT_RANGE_ENV) {
        Ok(text) => match PortRange::parse(&text) {
            Some(range) => Ok(Some(PortRangeInfo::new(range, PORT_RANGE_ENV))),
            None => Err(StressError::Usage(format!(
                "{PORT_RANGE_ENV} must be two port numbers LOW-HIGH with 1 <= LOW <= HIGH <= \
                 65535, e.g. 40000-40999 (it was {text:?}); unset it to use the machine's range"
            ))),
        },
        Err(_) => Ok(PortRange::system().map(|r| PortRangeInfo::new(r, "system"))),
    }
}

/// Which limit sets the ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CeilingKind {
    /// The client's open-file limit.
    Fds,
    /// The loopback pairs' source addresses × the port range.
    EphemeralPorts,
}

/// The most streams the client could hold open at once in this run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ceiling {
    /// Streams.
    pub streams: u64,
    /// The limit that sets it.
    pub bound_by: CeilingKind,
    /// In words, with the fix.
    pub detail: String,
}

/// How the run holds its streams: the pairs' spread and the ceiling it gives.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The source addresses of the TCP pairs.
    pub spread: PairSpread,
    /// Source addresses used (`None` with AF_UNIX pairs).
    pub pair_addresses: Option<u32>,
    /// The ceiling.
    pub ceiling: Ceiling,
}

/// The most streams `fds` descriptors hold even with every handoff they may have in flight:
/// `n` streams need `n + 2 min(n, 1024) + min(n, 64)` at worst.
fn streams_in_fds(fds: u64) -> u64 {
    let (flight, diagnosed) = (MAX_HANDOFFS_IN_FLIGHT as u64, DIAGNOSED_STREAMS);
    if fds >= 3 * flight + diagnosed {
        fds - 2 * flight - diagnosed
    } else if fds >= 4 * diagnosed {
        (fds - diagnosed) / 3
    } else {
        fds / 4
    }
}

/// Plans a run: `fd_limit` is the client's open-file limit, `fds_open` the fds it holds
/// before the first stream, `range` the port range to plan with.
pub fn plan(
    config: &StressConfig,
    fd_limit: u64,
    fds_open: u64,
    range: Option<PortRangeInfo>,
) -> Plan {
    let fd_room = streams_in_fds(fd_limit.saturating_sub(fds_open));
    let wanted =
        (config.load.max_open() as u64).min(config.planned_connections().unwrap_or(u64::MAX));
    let tcp = config.pair == PairKind::Tcp;
    let spread = match range {
        Some(r) if tcp => PairSpread::for_pairs(wanted.min(fd_room), r.range()),
        _ => PairSpread::ONE_ADDRESS,
    };
    let fds = Ceiling {
        streams: fd_room,
        bound_by: CeilingKind::Fds,
        detail: format!(
            "the open-file limit of {fd_limit} ({fds_open} already open) leaves room for \
             {fd_room} streams: each holds one fd, up to {MAX_HANDOFFS_IN_FLIGHT} handoffs in \
             flight two more each and the first {DIAGNOSED_STREAMS} one more until their first \
             byte; an embedded mock's connections from the daemon count against it too; raise \
             it with ulimit -n (hard limit included)"
        ),
    };
    let ceiling = match (tcp, range, spread.capacity()) {
        (true, Some(r), Some(ports)) if ports < fd_room => Ceiling {
            streams: ports,
            bound_by: CeilingKind::EphemeralPorts,
            detail: format!(
                "TCP pairs from {spread} hold at most one connection per port of the range \
                 {}-{} ({} ports, from {}) each: {ports} streams, the source addresses sized \
                 for the {wanted} asked (a run asking for more gets more of them)",
                r.low, r.high, r.ports, r.from
            ),
        },
        _ => fds,
    };
    Plan {
        spread,
        pair_addresses: tcp.then_some(spread.addresses()),
        ceiling,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress::{DaemonSpec, Upstream};

    fn config(concurrency: usize) -> StressConfig {
        let daemon = DaemonSpec::Running {
            socket: "/run/d.sock".into(),
            pid: None,
        };
        StressConfig::new(daemon, Upstream::None, 1_000_000, concurrency)
    }

    fn range(text: &str) -> Option<PortRangeInfo> {
        PortRange::parse(text).map(|r| PortRangeInfo::new(r, "system"))
    }

    #[test]
    fn the_open_file_limit_bounds_a_run_whose_pairs_fit_one_address() {
        let p = plan(&config(10_000), 20_000, 40, range("32768 60999"));
        assert_eq!(p.pair_addresses, Some(1));
        assert_eq!(p.ceiling.bound_by, CeilingKind::Fds);
        assert_eq!(p.ceiling.streams, 20_000 - 40 - 64 - 2048);
        assert!(
            p.ceiling.detail.contains("ulimit -n"),
            "{}",
            p.ceiling.detail
        );
    }

    #[test]
    fn a_small_open_file_limit_counts_every_handoff_in_flight() {
        assert_eq!(
            streams_in_fds(40),
            10,
            "four fds each while diagnosed and in flight"
        );
        assert_eq!(streams_in_fds(256), 64);
        assert_eq!(streams_in_fds(3136), 1024, "three each while in flight");
        assert_eq!(streams_in_fds(20_000), 20_000 - 2048 - 64);
        assert_eq!(streams_in_fds(0), 0);
        // Each is the most that fits.
        let need = |n: u64| n + 2 * n.min(1024) + n.min(64);
        for fds in [0, 3, 40, 255, 256, 1000, 3135, 3136, 3137, 20_000] {
            let n = streams_in_fds(fds);
            assert!(need(n) <= fds && need(n + 1) > fds, "{fds}: {n}");
        }
    }

    #[test]
    fn a_narrow_range_is_spread_over_addresses_and_may_set_the_ceiling() {
        let p = plan(&config(3000), 20_000, 40, range("40000-40999"));
        assert_eq!(p.pair_addresses, Some(4));
        assert_eq!(p.spread.addresses(), 4);
        assert_eq!(p.ceiling.bound_by, CeilingKind::EphemeralPorts);
        assert_eq!(p.ceiling.streams, 4000);
        assert!(
            p.ceiling.detail.contains("127.0.0.1-127.0.0.4"),
            "{}",
            p.ceiling.detail
        );
    }

    #[test]
    fn eighty_thousand_streams_need_four_addresses_and_the_fds_for_them() {
        let p = plan(&config(80_000), 200_000, 40, range("32768 60999"));
        assert_eq!(p.pair_addresses, Some(4));
        // Sized for what was asked, with room: the ports do not bound the run.
        assert_eq!(p.ceiling.bound_by, CeilingKind::EphemeralPorts);
        assert_eq!(p.ceiling.streams, 4 * 28_232);
        // With 20,000 fds, the spread is sized for what the fds allow, not for what was asked.
        let p = plan(&config(80_000), 20_000, 40, range("32768 60999"));
        assert_eq!(p.pair_addresses, Some(1));
    }

    #[test]
    fn unix_pairs_have_no_ports_to_spread() {
        let mut c = config(3000);
        c.pair = PairKind::Unix;
        let p = plan(&c, 20_000, 40, range("40000 40999"));
        assert_eq!(p.pair_addresses, None);
        assert_eq!(p.ceiling.bound_by, CeilingKind::Fds);
    }
}
