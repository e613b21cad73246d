//! The handoff as the daemon sees it: exact data and fd, the handed socket's options, the socket
//! types, and every error a handoff can end in.

mod ring_support;

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use ring_support::{Daemon, HANG_GUARD, Handoff, Step, TempDir, listen};
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketType, sockopt};
use streamcheck::handoff::{self, HandoffError, PairKind, SocketType as HandoffSocketType};
use streamcheck::ring::{
    EndReason, HandoffSpec, Ring, RingConfig, RingEvent, RingHandle, RingThread,
};

fn ring() -> RingHandle {
    RingThread::spawn(RingConfig::default()).expect("io_uring ring")
}

/// What the daemon saw of one handoff, taken before it answers "ok" and closes.
#[derive(Debug)]
struct Seen {
    data: Vec<u8>,
    fds: usize,
    truncated: bool,
    ctrunc: bool,
    domain: AddressFamily,
    ty: SocketType,
    nodelay: Option<bool>,
    keepalive: bool,
    nonblock: bool,
    linger: Option<Duration>,
    timeouts: (Option<Duration>, Option<Duration>),
    peer: Option<std::net::SocketAddrV4>,
    unread: Result<usize, Errno>,
}

fn inspect(h: &Handoff) -> Seen {
    let fd = h.fd();
    let mut b = [0u8; 16];
    Seen {
        data: h.data.clone(),
        fds: h.fds.len(),
        truncated: h.truncated,
        ctrunc: h.ctrunc,
        domain: sockopt::socket_domain(fd).unwrap(),
        ty: sockopt::socket_type(fd).unwrap(),
        nodelay: sockopt::tcp_nodelay(fd).ok(),
        keepalive: sockopt::socket_keepalive(fd).unwrap(),
        nonblock: rustix::fs::fcntl_getfl(fd)
            .unwrap()
            .contains(rustix::fs::OFlags::NONBLOCK),
        linger: sockopt::socket_linger(fd).unwrap(),
        timeouts: (
            sockopt::socket_timeout(fd, sockopt::Timeout::Recv).unwrap(),
            sockopt::socket_timeout(fd, sockopt::Timeout::Send).unwrap(),
        ),
        peer: net::getpeername(fd)
            .ok()
            .flatten()
            .and_then(|a| std::net::SocketAddrV4::try_from(a).ok()),
        unread: net::recv(fd, &mut b, net::RecvFlags::PEEK | net::RecvFlags::DONTWAIT)
            .map(|(n, _)| n),
    }
}

/// A daemon that inspects each handoff, answers "ok" and closes.
fn recording_daemon(ty: SocketType) -> (Daemon, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let d = Daemon::start(ty, move |h| {
        let seen = inspect(&h);
        let _ = ring_support::write_all(h.fd(), b"ok");
        drop(h);
        let _ = tx.lock().unwrap().send(seen);
    });
    (d, rx)
}

#[test]
fn data_and_one_fd_arrive_exactly() {
    let (d, rx) = recording_daemon(SocketType::SEQPACKET);
    let data = br#"{"prompt":"test prompt","user_id":1}"#.to_vec();
    let s = ring()
        .run_to_end(HandoffSpec::new(d.path(), data.clone()))
        .unwrap();
    let h = rx.recv_timeout(HANG_GUARD).unwrap();
    assert_eq!(h.data, data);
    assert_eq!(h.fds, 1);
    assert!(!h.truncated && !h.ctrunc);
    assert_eq!(s.bytes(), b"ok");
    assert_eq!(s.end, EndReason::PeerClosed);
}

#[test]
fn empty_data_is_one_nul_byte() {
    let (d, rx) = recording_daemon(SocketType::SEQPACKET);
    ring()
        .run_to_end(HandoffSpec::new(d.path(), Vec::new()))
        .unwrap();
    let h = rx.recv_timeout(HANG_GUARD).unwrap();
    assert_eq!(h.data, b"\0");
    assert_eq!(h.fds, 1);
}

#[test]
fn a_150_kib_payload_arrives_whole_in_one_message() {
    let (d, rx) = recording_daemon(SocketType::SEQPACKET);
    let data: Vec<u8> = (0..150 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    ring()
        .run_to_end(HandoffSpec::new(d.path(), data.clone()))
        .unwrap();
    let h = rx.recv_timeout(HANG_GUARD).unwrap();
    assert!(!h.truncated);
    assert_eq!(h.data.len(), data.len());
    assert!(h.data == data);
}

/// The send limit of a fresh SEQPACKET socket on this machine.
fn seqpacket_limit() -> usize {
    let (a, _b) = net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        net::SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    handoff::seqpacket_limit(sockopt::socket_send_buffer_size(&a).unwrap())
}

#[test]
fn a_message_at_the_limit_passes_and_one_byte_more_is_emsgsize() {
    let (d, rx) = recording_daemon(SocketType::SEQPACKET);
    let ring = ring();
    let limit = seqpacket_limit();
    let at_limit = vec![b'x'; limit];
    let s = ring
        .run_to_end(HandoffSpec::new(d.path(), at_limit))
        .unwrap();
    assert_eq!(s.bytes(), b"ok");
    assert_eq!(rx.recv_timeout(HANG_GUARD).unwrap().data.len(), limit);

    let over = vec![b'x'; limit + 1];
    let err = ring
        .run_to_end(HandoffSpec::new(d.path(), over))
        .unwrap_err();
    assert_eq!(
        err,
        HandoffError::MessageTooLarge {
            size: limit + 1,
            limit
        }
    );
    assert!(
        err.to_string().contains(&format!("limit of {limit} bytes")),
        "{err}"
    );
}

#[test]
fn the_handed_tcp_socket_is_as_apache_leaves_it() {
    let (d, rx) = recording_daemon(SocketType::SEQPACKET);
    let s = ring()
        .run_to_end(HandoffSpec::new(d.path(), b"{}".to_vec()))
        .unwrap();
    let h = rx.recv_timeout(HANG_GUARD).unwrap();
    assert_eq!(h.domain, AddressFamily::INET);
    assert_eq!(h.ty, SocketType::STREAM);
    assert_eq!(h.nodelay, Some(true), "TCP_NODELAY");
    assert!(h.keepalive, "SO_KEEPALIVE");
    assert!(h.nonblock, "O_NONBLOCK");
    assert_eq!(h.linger, None);
    assert_eq!(h.timeouts, (None, None));
    assert_eq!(h.unread, Err(Errno::AGAIN), "no unread bytes");
    assert_eq!(h.peer.map(|p| *p.ip()), Some(std::net::Ipv4Addr::LOCALHOST));
    // The daemon wrote "ok" through it and the client got it.
    assert_eq!(s.bytes(), b"ok");
    let handoff = s.handoff.unwrap();
    assert!(handoff.start_ns <= handoff.connect_start_ns);
    assert!(handoff.connect_start_ns <= handoff.connected_ns);
    assert!(handoff.connected_ns <= handoff.sent_ns);
    assert_eq!(handoff.attempts, 1);
}

#[test]
fn a_unix_pair_hands_off_an_af_unix_stream_socket() {
    let (d, rx) = recording_daemon(SocketType::SEQPACKET);
    let spec = HandoffSpec::new(d.path(), b"{}".to_vec()).pair(PairKind::Unix);
    let s = ring().run_to_end(spec).unwrap();
    let h = rx.recv_timeout(HANG_GUARD).unwrap();
    assert_eq!(h.domain, AddressFamily::UNIX);
    assert_eq!(h.ty, SocketType::STREAM);
    assert!(h.nonblock);
    assert_eq!(h.nodelay, None, "TCP options fail on AF_UNIX");
    assert_eq!(h.unread, Err(Errno::AGAIN));
    assert_eq!(s.bytes(), b"ok");
}

#[test]
fn stream_socket_type_reaches_a_stream_listener() {
    let (d, rx) = recording_daemon(SocketType::STREAM);
    let spec = HandoffSpec::new(d.path(), b"hello".to_vec()).socket_type(HandoffSocketType::Stream);
    let s = ring().run_to_end(spec).unwrap();
    let h = rx.recv_timeout(HANG_GUARD).unwrap();
    assert_eq!(h.data, b"hello");
    assert_eq!(h.fds, 1);
    assert_eq!(s.bytes(), b"ok");
}

#[test]
fn seqpacket_against_a_stream_listener_is_wrong_socket_type_and_stream_then_works() {
    let (d, rx) = recording_daemon(SocketType::STREAM);
    let ring = ring();
    let err = ring
        .run_to_end(HandoffSpec::new(d.path(), b"{}".to_vec()))
        .unwrap_err();
    assert!(err.is_wrong_socket_type(), "{err}");
    assert!(matches!(err, HandoffError::WrongSocketType { .. }));
    // What the runner does next: the rest over SOCK_STREAM.
    let spec = HandoffSpec::new(d.path(), b"{}".to_vec()).socket_type(HandoffSocketType::Stream);
    assert_eq!(ring.run_to_end(spec).unwrap().bytes(), b"ok");
    assert_eq!(rx.recv_timeout(HANG_GUARD).unwrap().data, b"{}");
}

#[test]
fn a_missing_socket_fails_after_apaches_two_retries() {
    let dir = TempDir::new("missing");
    let path: Arc<Path> = Arc::from(dir.path("nobody-home.sock").as_path());
    let t0 = Instant::now();
    let err = ring()
        .run_to_end(HandoffSpec::new(path.clone(), b"{}".to_vec()))
        .unwrap_err();
    assert_eq!(
        err,
        HandoffError::SocketMissing {
            path: path.to_path_buf(),
            attempts: 3
        }
    );
    // Retries wait 10 ms then 20 ms; timers never fire early.
    assert!(t0.elapsed() >= Duration::from_millis(30));
}

#[test]
fn a_stale_socket_file_is_connection_refused_after_retries() {
    let dir = TempDir::new("stale");
    let path = dir.path("stale.sock");
    drop(listen(&path, SocketType::SEQPACKET, 1));
    assert!(path.exists());
    let err = ring()
        .run_to_end(HandoffSpec::new(Arc::from(path.as_path()), b"{}".to_vec()))
        .unwrap_err();
    assert!(
        matches!(err, HandoffError::ConnectionRefused { attempts: 3, .. }),
        "{err}"
    );
}

#[test]
fn a_socket_that_appears_between_retries_is_reached() {
    let dir = TempDir::new("late");
    let path = dir.path("late.sock");
    let mut ring = Ring::new(RingConfig::default()).unwrap();
    let policy = handoff::ConnectPolicy {
        retry_delay: Duration::from_millis(300),
        ..handoff::ConnectPolicy::APACHE
    };
    let id = ring
        .start(HandoffSpec::new(Arc::from(path.as_path()), b"late".to_vec()).policy(policy))
        .unwrap();
    // The first attempt has failed when `start` returns (a Unix-socket connect never waits):
    // the daemon appears before the retry.
    let t0 = Instant::now();
    let listener = listen(&path, SocketType::SEQPACKET, 4);
    let daemon = std::thread::spawn(move || {
        let conn = net::accept(&listener).unwrap();
        let h = ring_support::recv_handoff(&conn);
        ring_support::play(h.fd(), &[Step::Write(b"fine".to_vec())]);
        h.data
    });
    let mut got = Vec::new();
    let mut attempts = 0;
    let mut end = None;
    while end.is_none() {
        ring.run_once(Some(Duration::from_millis(50)), |ev, _| match ev {
            RingEvent::HandedOff { timings, .. } => attempts = timings.attempts,
            RingEvent::Data { bytes, .. } => got.extend_from_slice(bytes),
            RingEvent::End { conn, reason, .. } => {
                assert_eq!(conn, id);
                end = Some(reason);
            }
        })
        .unwrap();
        assert!(t0.elapsed() < HANG_GUARD);
    }
    assert_eq!(daemon.join().unwrap(), b"late");
    // Normally the first retry finds the socket; on a loaded machine the listener may come
    // after it, and the second retry must find it then.
    assert!((2..=3).contains(&attempts), "{attempts} attempts");
    assert_eq!(got, b"fine");
    assert_eq!(end, Some(EndReason::PeerClosed));
}

#[test]
fn a_socket_the_user_may_not_open_is_permission_denied() {
    let dir = TempDir::new("eacces");
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = dir.path("locked.sock");
    let _listener = listen(&path, SocketType::SEQPACKET, 4);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let spec = HandoffSpec::new(Arc::from(path.as_path()), b"{}".to_vec());
    let result = if rustix::process::geteuid().is_root() {
        // Root ignores file modes, so drop privileges, for this thread only (the raw syscall
        // changes just the calling thread's credentials), and drive a ring from it.
        std::thread::spawn(move || {
            // SAFETY: setresuid has no memory-safety preconditions.
            let r = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
            if r != 0 {
                return None;
            }
            let ring = RingThread::spawn(RingConfig::default()).ok()?;
            Some(ring.run_to_end(spec))
        })
        .join()
        .unwrap()
    } else {
        Some(ring().run_to_end(spec))
    };
    let Some(result) = result else {
        eprintln!(
            "skipped: running as root without CAP_SETUID, cannot become an unprivileged user"
        );
        return;
    };
    let err = result.unwrap_err();
    assert_eq!(err, HandoffError::PermissionDenied { path: path.clone() });
    assert!(err.to_string().contains("--socket-mode 0666"));
}

#[test]
fn a_daemon_whose_backlog_is_full_fails_at_once_as_apache_does() {
    let dir = TempDir::new("backlog");
    let path = dir.path("full.sock");
    let listener = listen(&path, SocketType::SEQPACKET, 0);
    // Fill the accept backlog.
    let mut fillers = Vec::new();
    loop {
        let s = net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            net::SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        match net::connect(&s, &net::SocketAddrUnix::new(&path).unwrap()) {
            Ok(()) => fillers.push(s),
            Err(Errno::AGAIN) => break,
            Err(e) => panic!("filling the backlog: {e}"),
        }
        assert!(fillers.len() < 64, "backlog never filled");
    }
    let err = ring()
        .run_to_end(HandoffSpec::new(Arc::from(path.as_path()), b"{}".to_vec()))
        .unwrap_err();
    assert_eq!(err, HandoffError::BacklogFull { path: path.clone() });
    assert!(err.to_string().contains("503"));
    drop(listener);
}

#[test]
fn a_stream_daemon_that_never_reads_hits_the_send_timeout() {
    let (accepted_tx, accepted_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let dir = TempDir::new("noread");
    let path = dir.path("noread.sock");
    let listener = listen(&path, SocketType::STREAM, 4);
    let holder = std::thread::spawn(move || {
        let conn = net::accept(&listener).unwrap();
        // Hold the connection without reading until the test is done.
        let _ = accepted_tx.send(());
        let _ = done_rx.recv_timeout(HANG_GUARD);
        drop(conn);
    });
    let data = vec![b'z'; 8 << 20];
    let spec =
        HandoffSpec::new(Arc::from(path.as_path()), data).socket_type(HandoffSocketType::Stream);
    let err = ring().run_to_end(spec).unwrap_err();
    assert!(
        matches!(
            err,
            HandoffError::SendTimeout {
                timeout_ms: 200,
                ..
            }
        ),
        "{err}"
    );
    accepted_rx.recv_timeout(HANG_GUARD).unwrap();
    done_tx.send(()).unwrap();
    holder.join().unwrap();
}

#[test]
fn a_socket_path_too_long_for_sockaddr_un_fails_at_once() {
    let long = format!("/tmp/{}", "p".repeat(120));
    let err = ring()
        .run_to_end(HandoffSpec::new(
            Arc::from(Path::new(&long)),
            b"{}".to_vec(),
        ))
        .unwrap_err();
    assert!(
        matches!(err, HandoffError::PathTooLong { len: 125, .. }),
        "{err}"
    );
}

#[test]
fn a_daemon_that_closes_before_reading_fails_the_send_or_the_stream() {
    // The daemon accepts and closes at once: the client sees either a failed send or an
    // immediate end with no bytes, never a hang.
    let dir = TempDir::new("rude");
    let path = dir.path("rude.sock");
    let listener = listen(&path, SocketType::SEQPACKET, 4);
    let t = std::thread::spawn(move || drop(net::accept(&listener).unwrap()));
    let r = ring().run_to_end(HandoffSpec::new(Arc::from(path.as_path()), b"{}".to_vec()));
    t.join().unwrap();
    match r {
        Err(HandoffError::Send { errno, .. }) => {
            assert!(errno == Errno::PIPE || errno == Errno::CONNRESET)
        }
        Ok(s) => {
            // The message went into the socket before the close; the handed end was dropped
            // unread with it, so the client sees EOF.
            assert!(s.bytes().is_empty());
            assert_eq!(s.end, EndReason::PeerClosed);
        }
        Err(e) => panic!("unexpected: {e}"),
    }
}

#[test]
fn io_uring_blocked_by_seccomp_is_ring_unavailable_with_the_fix() {
    // Block io_uring_setup with EPERM for one thread, as a container's seccomp profile does.
    let result = std::thread::spawn(|| {
        let filter = [
            // Load the syscall number (offset 0 of struct seccomp_data).
            libc::sock_filter {
                code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
                jt: 0,
                jf: 0,
                k: 0,
            },
            libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                jt: 0,
                jf: 1,
                k: libc::SYS_io_uring_setup as u32,
            },
            libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
            },
            libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_ALLOW,
            },
        ];
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prctl reads `prog` (and the filter it points to) during the call only; the
        // filter applies to this thread alone, which ends after the check.
        let installed = unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                && libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) == 0
        };
        installed.then(|| Ring::new(RingConfig::default()).err())
    })
    .join()
    .unwrap();
    let Some(err) = result else {
        eprintln!("skipped: this kernel refused a seccomp filter");
        return;
    };
    let err = err.expect("io_uring_setup must fail under the filter");
    assert_eq!(err, HandoffError::RingUnavailable { errno: Errno::PERM });
    let msg = err.to_string();
    assert!(msg.contains("/proc/sys/kernel/io_uring_disabled"), "{msg}");
    assert!(msg.contains("seccomp"), "{msg}");
}

#[test]
fn a_stream_socket_takes_a_large_message_in_pieces_with_the_fd_in_the_first() {
    let dir = TempDir::new("pieces");
    let path = dir.path("pieces.sock");
    let listener = listen(&path, SocketType::STREAM, 4);
    let size = 4 << 20;
    let daemon = std::thread::spawn(move || {
        let conn = net::accept(&listener).unwrap();
        let h = ring_support::recv_handoff(&conn);
        let mut data = h.data.clone();
        let mut buf = vec![0u8; 1 << 16];
        while data.len() < size {
            let n = ring_support::read_blocking(conn.as_fd(), &mut buf).unwrap();
            assert!(n > 0, "daemon connection closed early");
            data.extend_from_slice(&buf[..n]);
        }
        ring_support::play(h.fd(), &[Step::Write(b"got it".to_vec())]);
        (data, h.fds.len())
    });
    let payload: Vec<u8> = (0..size).map(|i| (i % 241) as u8).collect();
    let spec = HandoffSpec::new(Arc::from(path.as_path()), payload.clone())
        .socket_type(HandoffSocketType::Stream);
    let s = ring().run_to_end(spec).unwrap();
    let (data, fds) = daemon.join().unwrap();
    assert_eq!(fds, 1);
    assert!(data == payload);
    assert_eq!(s.bytes(), b"got it");
}
