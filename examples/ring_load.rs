//! Measures what the ring costs the client: CPU seconds and peak RSS for many concurrent streams.
//!
//! ```text
//! cargo run --release --example ring_load -- --streams 10000 --events 18 --interval-ms 50
//! ```
//!
//! The example re-runs itself as a daemon in a child process (so the daemon's CPU and memory are
//! not counted): a SEQPACKET listener whose accept thread receives each handoff and gives the fd
//! to a tokio runtime, which writes a response head and `--events` SSE events `--interval-ms`
//! apart, then closes. The client starts `--streams` streams spread over `--ramp-ms` on one
//! [`Ring`], checks every stream's bytes against what the daemon must have sent for its tag, and
//! prints its own CPU time (getrusage) and peak RSS (VmHWM).
//!
//! Options: `--recv multishot|single`, `--buffers N`, `--buffer-size N`, `--pair tcp|unix`,
//! `--hold-ms N` (idle streams: no events, the daemon holds the connection N ms, then closes).

use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::net::{self, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use streamcheck::handoff::PairKind;
use streamcheck::ring::{EndReason, HandoffSpec, RecvMode, Ring, RingConfig, RingEvent};

#[derive(Debug, Clone)]
struct Opts {
    streams: usize,
    events: usize,
    interval_ms: u64,
    hold_ms: u64,
    ramp_ms: u64,
    pairs_only: bool,
    recv: RecvMode,
    buffers: u16,
    buffer_size: u32,
    pair: PairKind,
}

fn parse() -> (Option<PathBuf>, Opts) {
    let mut o = Opts {
        streams: 10_000,
        events: 18,
        interval_ms: 50,
        hold_ms: 0,
        ramp_ms: 1000,
        pairs_only: false,
        recv: RecvMode::Multishot,
        buffers: 1024,
        buffer_size: 4096,
        pair: PairKind::Tcp,
    };
    let mut daemon = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--daemon" => daemon = Some(PathBuf::from(v())),
            "--streams" => o.streams = v().parse().unwrap(),
            "--events" => o.events = v().parse().unwrap(),
            "--interval-ms" => o.interval_ms = v().parse().unwrap(),
            "--hold-ms" => o.hold_ms = v().parse().unwrap(),
            "--pairs-only" => o.pairs_only = true,
            "--ramp-ms" => o.ramp_ms = v().parse().unwrap(),
            "--recv" => {
                o.recv = match v().as_str() {
                    "single" => RecvMode::Single,
                    _ => RecvMode::Multishot,
                }
            }
            "--buffers" => o.buffers = v().parse().unwrap(),
            "--buffer-size" => o.buffer_size = v().parse().unwrap(),
            "--pair" => {
                o.pair = match v().as_str() {
                    "unix" => PairKind::Unix,
                    _ => PairKind::Tcp,
                }
            }
            other => panic!("unknown option {other}"),
        }
    }
    (daemon, o)
}

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";

fn event(tag: &str, i: usize) -> String {
    format!("data: {{\"content\":\"{tag} event {i}\"}}\n\n")
}

fn expected(tag: &str, events: usize) -> Vec<u8> {
    let mut v = HEAD.to_vec();
    for i in 0..events {
        v.extend_from_slice(event(tag, i).as_bytes());
    }
    v.extend_from_slice(b"data: [DONE]\n\n");
    v
}

const FNV_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, continued from `h`: a running checksum of a stream's bytes.
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn raise_nofile() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = lim.maximum;
    let _ = setrlimit(Resource::Nofile, lim);
}

fn run_daemon(path: &Path, o: &Opts) {
    raise_nofile();
    let listener = net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let _ = std::fs::remove_file(path);
    net::bind(&listener, &SocketAddrUnix::new(path).unwrap()).unwrap();
    net::listen(&listener, 65535).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let o = o.clone();
    loop {
        let conn = match net::accept(&listener) {
            Ok(c) => c,
            Err(_) => continue,
        };
        let mut data = [0u8; 4096];
        let mut space = [MaybeUninit::<u8>::uninit(); 64];
        let mut anc = net::RecvAncillaryBuffer::new(&mut space);
        let Ok(msg) = net::recvmsg(
            &conn,
            &mut [std::io::IoSliceMut::new(&mut data)],
            &mut anc,
            net::RecvFlags::CMSG_CLOEXEC,
        ) else {
            continue;
        };
        let fd: Option<OwnedFd> = anc.drain().find_map(|m| match m {
            net::RecvAncillaryMessage::ScmRights(mut r) => r.next(),
            _ => None,
        });
        let Some(fd) = fd else { continue };
        let tag = String::from_utf8_lossy(&data[..msg.bytes]).into_owned();
        let o = o.clone();
        handle.spawn(async move {
            use tokio::io::AsyncWriteExt;
            let Ok(mut s) = tokio::net::TcpStream::from_std(std::net::TcpStream::from(fd)) else {
                return;
            };
            if o.hold_ms > 0 {
                tokio::time::sleep(Duration::from_millis(o.hold_ms)).await;
            }
            if s.write_all(HEAD).await.is_err() {
                return;
            }
            for i in 0..o.events {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(o.interval_ms)).await;
                }
                if s.write_all(event(&tag, i).as_bytes()).await.is_err() {
                    return;
                }
            }
            let _ = s.write_all(b"data: [DONE]\n\n").await;
        });
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let u = unsafe {
        let mut u = MaybeUninit::<libc::rusage>::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr());
        u.assume_init()
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The cost of making (and closing) `--streams` loopback pairs, 1000 open at a time, with the
/// non-blocking `socket`/`connect`/`getsockname`/`accept4` the ring uses. The handed end closes
/// first, as when a daemon ends a stream.
fn pairs_only(o: &Opts) {
    let factory = streamcheck::handoff::TcpPairFactory::new().unwrap();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut open = Vec::with_capacity(1000);
    let mut waited = 0;
    for _ in 0..o.streams {
        let pending = factory.connect(None).unwrap();
        match factory.accept().unwrap() {
            Some(a) if a.peer == pending.local => open.push((pending.kept, a.handed)),
            _ => {
                waited += 1;
                open.push(
                    factory
                        .pair_blocking(None, Duration::from_secs(5))
                        .map(|p| (p.kept, p.handed))
                        .unwrap(),
                );
            }
        }
        if open.len() == 1000 {
            // The daemon closes first, as at the end of a normal stream; then the client.
            for (kept, handed) in open.drain(..) {
                drop(handed);
                drop(kept);
            }
        }
    }
    drop(open);
    let cpu = cpu_seconds() - cpu0;
    println!(
        "{} loopback pairs: {:.3} CPU-s, {:.1} µs per pair (create + close both ends), {:.2} s wall, {} accepts not ready at once",
        o.streams,
        cpu,
        cpu * 1e6 / o.streams as f64,
        t0.elapsed().as_secs_f64(),
        waited
    );
}

fn main() {
    let (daemon, o) = parse();
    if let Some(path) = daemon {
        run_daemon(&path, &o);
        return;
    }
    raise_nofile();
    if o.pairs_only {
        return pairs_only(&o);
    }
    let dir = std::env::temp_dir().join(format!("ring-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("d.sock");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(std::env::args().skip(1))
        .arg("--daemon")
        .arg(&sock)
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !sock.exists() {
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "daemon did not start"
        );
    }
    let path: Arc<Path> = Arc::from(sock.as_path());

    let config = RingConfig {
        recv: o.recv,
        buffers: o.buffers,
        buffer_size: o.buffer_size,
        ..RingConfig::default()
    };
    let mut ring = Ring::new(config).unwrap();
    let rss_base = status_kib("VmRSS:");
    let cpu_base = cpu_seconds();
    let start = Instant::now();

    // Per open stream: its expected length and hash, and what arrived so far (indexed by slot).
    #[derive(Clone, Copy, Default)]
    struct Check {
        want_len: usize,
        want_hash: u64,
        got_len: usize,
        got_hash: u64,
    }
    let mut checks: Vec<Check> = Vec::new();
    let mut started = 0;
    let (mut ok, mut bad, mut errors, mut timeouts, mut events) =
        (0usize, 0usize, 0usize, 0usize, 0u64);
    let mut first_error = None;
    let mut peak_active = 0;
    let mut peak_rss_active = 0;
    while started < o.streams || ring.active() > 0 {
        // Start what the ramp allows by now.
        let due = (start.elapsed().as_millis() as u64 * o.streams as u64)
            .checked_div(o.ramp_ms)
            .map_or(o.streams, |n| n.min(o.streams as u64) as usize);
        while started < due {
            let tag = format!("s{started:05}");
            let want = expected(&tag, o.events);
            // A load measurement: one fd per stream after the handoff, as in `stress`.
            let spec = HandoffSpec::new(path.clone(), tag.into_bytes())
                .pair(o.pair)
                .deadline(Duration::from_secs(60))
                .diagnose_handoff(false);
            match ring.start(spec) {
                Ok(id) => {
                    if checks.len() <= id.slot() {
                        checks.resize(id.slot() + 1, Check::default());
                    }
                    checks[id.slot()] = Check {
                        want_len: want.len(),
                        want_hash: fnv(FNV_SEED, &want),
                        got_len: 0,
                        got_hash: FNV_SEED,
                    };
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e.to_string());
                }
            }
            started += 1;
        }
        if ring.active() > peak_active {
            peak_active = ring.active();
            peak_rss_active = status_kib("VmRSS:");
        }
        let wait = if started < o.streams {
            Some(Duration::from_millis(1))
        } else {
            Some(Duration::from_millis(100))
        };
        ring.run_once(wait, |ev, _| match ev {
            RingEvent::HandedOff { .. } => {}
            RingEvent::Data { conn, bytes, .. } => {
                events += 1;
                let c = &mut checks[conn.slot()];
                c.got_len += bytes.len();
                c.got_hash = fnv(c.got_hash, bytes);
            }
            RingEvent::End { conn, reason, .. } => {
                let c = checks[conn.slot()];
                match reason {
                    EndReason::PeerClosed
                        if c.got_len == c.want_len && c.got_hash == c.want_hash =>
                    {
                        ok += 1
                    }
                    EndReason::PeerClosed | EndReason::ClosedByClient => bad += 1,
                    EndReason::Timeout => timeouts += 1,
                    EndReason::Error(e) => {
                        errors += 1;
                        first_error.get_or_insert(e.to_string());
                    }
                }
            }
        })
        .unwrap();
    }
    let wall = start.elapsed();
    let cpu = cpu_seconds() - cpu_base;
    let hwm = status_kib("VmHWM:");
    let stats = ring.stats();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "streams {} × {} events, {} ms apart, ramp {} ms, recv {:?}, {} × {} B buffers, pair {:?}",
        o.streams, o.events, o.interval_ms, o.ramp_ms, o.recv, o.buffers, o.buffer_size, o.pair
    );
    println!(
        "integrity: {ok} exact, {bad} wrong, {timeouts} timeouts, {errors} errors{}",
        first_error
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "wall {:.2} s, client CPU {:.3} s ({:.1} µs per stream, {:.2} µs per data completion)",
        wall.as_secs_f64(),
        cpu,
        cpu * 1e6 / o.streams as f64,
        cpu * 1e6 / events.max(1) as f64
    );
    println!(
        "peak RSS {:.1} MiB (baseline {:.1} MiB); {} streams open at once, RSS then {:.1} MiB → {:.2} KiB per open stream",
        hwm as f64 / 1024.0,
        rss_base as f64 / 1024.0,
        peak_active,
        peak_rss_active as f64 / 1024.0,
        (peak_rss_active.saturating_sub(rss_base)) as f64 / peak_active.max(1) as f64
    );
    println!("ring: {stats:?}");
}
