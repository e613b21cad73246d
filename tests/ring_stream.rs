//! Reading the daemon's response: byte order and timestamps, deadlines, and the client's
//! behaviours (close after N bytes, slow reader, half-close, commands).

mod ring_support;

use std::sync::{Mutex, mpsc};
use std::time::Duration;

use ring_support::{Daemon, HANG_GUARD, Step, read_blocking, write_all};
use rustix::io::Errno;
use rustix::net::{SocketType, sockopt};
use streamcheck::handoff::{HandoffError, PairKind};
use streamcheck::ring::{
    ClientBehaviour, EndReason, HandoffSpec, RingConfig, RingHandle, RingThread, StreamEvent,
    StreamHandle,
};

fn ring() -> RingHandle {
    RingThread::spawn(RingConfig::default()).expect("io_uring ring")
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// A daemon that writes `first`, waits until the test sends on the returned channel, then
/// writes `second` and closes.
fn gated_daemon(first: &'static [u8], second: &'static [u8]) -> (Daemon, mpsc::Sender<()>) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let d = Daemon::start(SocketType::SEQPACKET, move |h| {
        let _ = write_all(h.fd(), first);
        let _ = go_rx.lock().unwrap().recv_timeout(HANG_GUARD);
        let _ = write_all(h.fd(), second);
    });
    (d, go_tx)
}

/// Returns once the ring thread has applied every command sent before the call. It applies
/// commands in order and submits what they queue (a pause's receive cancellation) in order, so
/// a stream started now, to a socket that does not exist, fails only after all of that.
fn commands_applied(ring: &RingHandle) {
    let dir = ring_support::TempDir::new("barrier");
    let policy = streamcheck::handoff::ConnectPolicy {
        retries: 0,
        ..streamcheck::handoff::ConnectPolicy::APACHE
    };
    let spec = HandoffSpec::new(dir.path("nobody.sock"), b"{}".to_vec()).policy(policy);
    let err = ring.run_to_end(spec).unwrap_err();
    assert!(matches!(err, HandoffError::SocketMissing { .. }), "{err}");
}

/// The stream's first events: the handoff, then a read of exactly `bytes`.
fn expect_handoff_then_data(s: &mut StreamHandle, bytes: &[u8]) {
    assert!(matches!(
        s.recv_timeout(HANG_GUARD),
        Ok(StreamEvent::HandedOff(_))
    ));
    match s.recv_timeout(HANG_GUARD) {
        Ok(StreamEvent::Data(c)) => assert_eq!(c.bytes, bytes),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_byte_arrives_in_order_with_monotonic_timestamps() {
    let d = Daemon::scripted(SocketType::SEQPACKET, |_| {
        let body = pattern(64 * 1024 + 17);
        let mut steps = Vec::new();
        for piece in body.chunks(1777) {
            steps.push(Step::Write(piece.to_vec()));
            steps.push(Step::Sleep(Duration::from_millis(1)));
        }
        steps
    });
    let s = ring()
        .run_to_end(HandoffSpec::new(d.path(), b"{}".to_vec()))
        .unwrap();
    assert_eq!(s.end, EndReason::PeerClosed);
    assert!(s.bytes() == pattern(64 * 1024 + 17));
    let h = s.handoff.unwrap();
    let mut last = h.sent_ns;
    for c in &s.chunks {
        assert!(!c.bytes.is_empty());
        assert!(c.ts_ns >= last, "timestamps go backwards");
        last = c.ts_ns;
    }
    assert!(s.end_ns >= last);
}

#[test]
fn a_daemon_that_never_closes_ends_at_the_deadline_with_what_it_sent() {
    let d = Daemon::scripted(SocketType::SEQPACKET, |_| {
        vec![
            Step::Write(b"partial".to_vec()),
            Step::Hold(Duration::from_secs(3)),
        ]
    });
    let deadline = Duration::from_millis(300);
    let spec = HandoffSpec::new(d.path(), b"{}".to_vec()).deadline(deadline);
    let s = ring().run_to_end(spec).unwrap();
    assert_eq!(s.end, EndReason::Timeout);
    assert_eq!(s.bytes(), b"partial");
    let start = s.handoff.unwrap().start_ns;
    assert!(s.end_ns - start >= deadline.as_nanos() as u64);
}

#[test]
fn a_daemon_that_sends_nothing_ends_at_the_deadline_with_nothing() {
    let d = Daemon::scripted(SocketType::SEQPACKET, |_| {
        vec![Step::Hold(Duration::from_secs(3))]
    });
    let spec = HandoffSpec::new(d.path(), b"{}".to_vec()).deadline(Duration::from_millis(200));
    let s = ring().run_to_end(spec).unwrap();
    assert_eq!(s.end, EndReason::Timeout);
    assert!(s.chunks.is_empty());
    assert!(s.handoff.is_some());
}

#[test]
fn a_deadline_before_the_handoff_completes_is_a_timeout_without_handoff() {
    // Retries far apart: the deadline passes while the client waits to retry.
    let dir = ring_support::TempDir::new("nodaemon");
    let path = dir.path("none.sock");
    let policy = streamcheck::handoff::ConnectPolicy {
        retry_delay: Duration::from_secs(10),
        ..streamcheck::handoff::ConnectPolicy::APACHE
    };
    let spec = HandoffSpec::new(std::sync::Arc::from(path.as_path()), b"{}".to_vec())
        .policy(policy)
        .deadline(Duration::from_millis(100));
    let s = ring().run_to_end(spec).unwrap();
    assert_eq!(s.end, EndReason::Timeout);
    assert_eq!(s.handoff, None);
}

/// A daemon that writes `n` bytes, then reports what reading its fd returns.
fn observed_close_daemon(n: usize) -> (Daemon, mpsc::Receiver<Result<usize, Errno>>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let d = Daemon::start(SocketType::SEQPACKET, move |h| {
        let tx = tx.lock().unwrap().clone();
        std::thread::spawn(move || {
            let _ = write_all(h.fd(), &pattern(n));
            let mut b = [0u8; 64];
            let _ = tx.send(read_blocking(h.fd(), &mut b));
        });
    });
    (d, rx)
}

#[test]
fn close_after_n_bytes_delivers_exactly_n_and_the_daemon_sees_the_close() {
    let (d, rx) = observed_close_daemon(10_000);
    let spec = HandoffSpec::new(d.path(), b"{}".to_vec())
        .behaviour(ClientBehaviour::close_after_bytes(1234));
    let s = ring().run_to_end(spec).unwrap();
    assert_eq!(s.end, EndReason::ClosedByClient);
    assert!(s.bytes() == pattern(10_000)[..1234]);
    // EOF, or a reset because unread bytes were discarded: either way the daemon knows.
    let seen = rx.recv_timeout(HANG_GUARD).unwrap();
    assert!(matches!(seen, Ok(0) | Err(Errno::CONNRESET)), "{seen:?}");
}

#[test]
fn close_after_zero_bytes_closes_right_after_the_handoff() {
    let (d, rx) = observed_close_daemon(0);
    let spec =
        HandoffSpec::new(d.path(), b"{}".to_vec()).behaviour(ClientBehaviour::close_after_bytes(0));
    let s = ring().run_to_end(spec).unwrap();
    assert_eq!(s.end, EndReason::ClosedByClient);
    assert!(s.chunks.is_empty());
    assert!(matches!(
        rx.recv_timeout(HANG_GUARD).unwrap(),
        Ok(0) | Err(Errno::CONNRESET)
    ));
}

#[test]
fn a_slow_reader_pauses_then_reads_everything_in_order() {
    let size = 1 << 20;
    let d = Daemon::scripted(SocketType::SEQPACKET, |_| {
        vec![Step::Write(pattern(1 << 20))]
    });
    let pause = Duration::from_millis(300);
    let spec = HandoffSpec::new(d.path(), b"{}".to_vec())
        .behaviour(ClientBehaviour::slow_reader(1, pause, 4096));
    let s = ring().run_to_end(spec).unwrap();
    assert_eq!(s.end, EndReason::PeerClosed);
    assert_eq!(s.bytes().len(), size);
    assert!(s.bytes() == pattern(size));
    // The pause shows as a gap between two reads; timers never fire early.
    let gap = s
        .chunks
        .windows(2)
        .map(|w| w[1].ts_ns - w[0].ts_ns)
        .max()
        .unwrap();
    assert!(gap >= pause.as_nanos() as u64, "largest gap {gap} ns");
}

#[test]
fn pause_and_resume_commands_hold_back_reads() {
    let (d, go) = gated_daemon(b"first", b"second");
    let ring = ring();
    let mut s = ring.start(HandoffSpec::new(d.path(), b"{}".to_vec()));
    expect_handoff_then_data(&mut s, b"first");
    s.pause(Duration::from_secs(600));
    commands_applied(&ring);
    go.send(()).unwrap();
    // Nothing arrives while paused. A broken pause may deliver later than the 200 ms watched
    // here, so this can pass wrongly, but it cannot fail wrongly.
    assert!(s.recv_timeout(Duration::from_millis(200)).is_err());
    s.resume();
    let mut rest = Vec::new();
    loop {
        match s.recv_timeout(HANG_GUARD).unwrap() {
            StreamEvent::Data(c) => rest.extend(c.bytes),
            StreamEvent::End { reason, .. } => {
                assert_eq!(reason, EndReason::PeerClosed);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(rest, b"second");
}

#[test]
fn half_close_lets_the_daemon_read_eof_and_still_write() {
    let d = Daemon::start(SocketType::SEQPACKET, |h| {
        std::thread::spawn(move || {
            let mut b = [0u8; 16];
            let r = read_blocking(h.fd(), &mut b);
            let msg = format!("read returned {r:?}");
            let _ = write_all(h.fd(), msg.as_bytes());
        });
    });
    let spec = HandoffSpec::new(d.path(), b"{}".to_vec()).behaviour(ClientBehaviour::half_close());
    let s = ring().run_to_end(spec).unwrap();
    assert_eq!(String::from_utf8(s.bytes()).unwrap(), "read returned Ok(0)");
    assert_eq!(s.end, EndReason::PeerClosed);
}

#[test]
fn half_close_command_mid_stream() {
    let d = Daemon::start(SocketType::SEQPACKET, |h| {
        std::thread::spawn(move || {
            let _ = write_all(h.fd(), b"hello ");
            let mut b = [0u8; 16];
            let r = read_blocking(h.fd(), &mut b);
            let _ = write_all(h.fd(), format!("{r:?}").as_bytes());
        });
    });
    let ring = ring();
    let mut s = ring.start(HandoffSpec::new(d.path(), b"{}".to_vec()));
    let mut got = Vec::new();
    loop {
        match s.recv_timeout(HANG_GUARD).unwrap() {
            StreamEvent::HandedOff(_) => {}
            StreamEvent::Data(c) => {
                got.extend(c.bytes);
                if got == b"hello " {
                    s.half_close();
                }
            }
            StreamEvent::End { reason, .. } => {
                assert_eq!(reason, EndReason::PeerClosed);
                break;
            }
        }
    }
    assert_eq!(got, b"hello Ok(0)");
}

#[test]
fn close_command_ends_the_stream_and_the_daemon_sees_it() {
    let (d, rx) = observed_close_daemon(100);
    let ring = ring();
    let mut s = ring.start(HandoffSpec::new(d.path(), b"{}".to_vec()));
    let mut got = 0;
    loop {
        match s.recv_timeout(HANG_GUARD).unwrap() {
            StreamEvent::HandedOff(_) => {}
            StreamEvent::Data(c) => {
                got += c.bytes.len();
                if got == 100 {
                    s.close();
                }
            }
            StreamEvent::End { reason, .. } => {
                assert_eq!(reason, EndReason::ClosedByClient);
                break;
            }
        }
    }
    assert!(matches!(
        rx.recv_timeout(HANG_GUARD).unwrap(),
        Ok(0) | Err(Errno::CONNRESET)
    ));
}

#[test]
fn dropping_a_stream_handle_closes_the_connection() {
    let (d, rx) = observed_close_daemon(10);
    let ring = ring();
    let mut s = ring.start(HandoffSpec::new(d.path(), b"{}".to_vec()));
    assert!(matches!(
        s.recv_timeout(HANG_GUARD),
        Ok(StreamEvent::HandedOff(_))
    ));
    drop(s);
    assert!(matches!(
        rx.recv_timeout(HANG_GUARD).unwrap(),
        Ok(0) | Err(Errno::CONNRESET)
    ));
}

#[test]
fn a_reset_from_the_daemon_is_a_receive_error() {
    let d = Daemon::start(SocketType::SEQPACKET, |h| {
        // Linger 0: close sends RST instead of FIN.
        sockopt::set_socket_linger(h.fd(), Some(Duration::ZERO)).unwrap();
    });
    let s = ring()
        .run_to_end(HandoffSpec::new(d.path(), b"{}".to_vec()))
        .unwrap();
    assert_eq!(
        s.end,
        EndReason::Error(HandoffError::Receive {
            errno: Errno::CONNRESET
        })
    );
    assert!(s.end.to_string().contains("reset"));
}

#[test]
fn a_unix_pair_streams_too() {
    let d = Daemon::scripted(SocketType::SEQPACKET, |_| {
        vec![
            Step::Write(b"data: a\n\n".to_vec()),
            Step::Sleep(Duration::from_millis(5)),
            Step::Write(b"data: b\n\n".to_vec()),
        ]
    });
    let spec = HandoffSpec::new(d.path(), b"{}".to_vec()).pair(PairKind::Unix);
    let s = ring().run_to_end(spec).unwrap();
    assert_eq!(s.bytes(), b"data: a\n\ndata: b\n\n");
    assert_eq!(s.end, EndReason::PeerClosed);
}

#[test]
fn a_second_pause_replaces_the_first() {
    let (d, go) = gated_daemon(b"a", b"b");
    let ring = ring();
    let mut s = ring.start(HandoffSpec::new(d.path(), b"{}".to_vec()));
    expect_handoff_then_data(&mut s, b"a");
    // Far beyond the hang guard: only the second, short pause lets the test finish.
    s.pause(Duration::from_secs(3600));
    s.pause(Duration::from_millis(50));
    commands_applied(&ring);
    go.send(()).unwrap();
    match s.recv_timeout(HANG_GUARD) {
        Ok(StreamEvent::Data(c)) => assert_eq!(c.bytes, b"b"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.recv_timeout(HANG_GUARD),
        Ok(StreamEvent::End {
            reason: EndReason::PeerClosed,
            ..
        })
    ));
}

#[test]
fn a_stream_that_gets_nothing_says_what_the_daemon_did_with_the_handoff() {
    use streamcheck::handoff::HandoffFate;
    let dir = ring_support::TempDir::new("fate");
    let path = dir.path("d.sock");
    let listener = ring_support::listen(&path, SocketType::SEQPACKET, 8);
    let spec = || {
        HandoffSpec::new(std::sync::Arc::from(path.as_path()), b"{}".to_vec())
            .deadline(Duration::from_millis(200))
    };
    let ring = ring();

    let waiting = ring.run_to_end(spec()).unwrap();
    assert_eq!(waiting.end, EndReason::Timeout);
    assert_eq!(waiting.fate, Some(HandoffFate::NeverAccepted));

    // Accepted (the one still queued from above comes first, then ours), never read.
    let mut held = Vec::new();
    let s = ring.start(spec());
    std::thread::sleep(Duration::from_millis(50));
    while let Ok(conn) = rustix::net::accept(&listener) {
        held.push(conn);
        if held.len() == 2 {
            break;
        }
    }
    let unread = s.wait().unwrap();
    assert_eq!(unread.fate, Some(HandoffFate::NotRead));

    // Read, then silence: the handoff was taken.
    let s = ring.start(spec());
    let conn = rustix::net::accept(&listener).unwrap();
    let _handoff = ring_support::recv_handoff(&conn);
    let read = s.wait().unwrap();
    assert_eq!(read.end, EndReason::Timeout);
    assert_eq!(read.fate, Some(HandoffFate::Read));

    // Not asked for: nothing kept, nothing said.
    let s = ring.start(spec().diagnose_handoff(false));
    let conn = rustix::net::accept(&listener).unwrap();
    assert_eq!(s.wait().unwrap().fate, None);
    drop((conn, held));
}
