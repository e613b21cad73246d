//! Many streams on one ring: per-connection integrity, a tiny ring under pressure (full SQ,
//! empty buffer ring), many threads sharing one ring thread, and teardown with streams in flight.

mod ring_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ring_support::{Daemon, HANG_GUARD, Step, raise_fd_limit};
use rustix::net::SocketType;
use streamcheck::ring::{
    ClientBehaviour, ConnId, EndReason, HandoffSpec, RecvMode, Ring, RingConfig, RingEvent,
    RingThread,
};

/// The response a daemon writes for handoff data `tag`, in three pieces.
fn response_for(tag: &[u8]) -> Vec<Vec<u8>> {
    let tag = String::from_utf8_lossy(tag);
    (0..3)
        .map(|k| {
            format!("data: {{\"conn\":\"{tag}\",\"piece\":{k}}}\n\n")
                .repeat(k + 1)
                .into_bytes()
        })
        .collect()
}

fn echo_daemon() -> Daemon {
    Daemon::scripted(SocketType::SEQPACKET, |h| {
        let mut steps = Vec::new();
        for piece in response_for(&h.data) {
            steps.push(Step::Write(piece));
            steps.push(Step::Sleep(Duration::from_millis(2)));
        }
        steps
    })
}

#[derive(Default)]
struct Got {
    handed_off: bool,
    bytes: Vec<u8>,
    last_ts: u64,
    end: Option<EndReason>,
}

/// Drives `ring` until every stream in `expected` ended; checks order and timestamps.
fn drive(ring: &mut Ring, expected: &HashMap<ConnId, Vec<u8>>) -> HashMap<ConnId, Got> {
    let mut got: HashMap<ConnId, Got> = HashMap::new();
    let t0 = Instant::now();
    while ring.active() > 0 || got.values().filter(|g| g.end.is_some()).count() < expected.len() {
        ring.run_once(Some(Duration::from_millis(100)), |ev, _| match ev {
            RingEvent::HandedOff { conn, timings } => {
                let g = got.entry(conn).or_default();
                assert!(!g.handed_off && g.bytes.is_empty() && g.end.is_none());
                g.handed_off = true;
                g.last_ts = timings.sent_ns;
            }
            RingEvent::Data { conn, ts, bytes } => {
                let g = got.entry(conn).or_default();
                assert!(g.handed_off && g.end.is_none());
                assert!(ts >= g.last_ts);
                g.last_ts = ts;
                g.bytes.extend_from_slice(bytes);
            }
            RingEvent::End {
                conn, ts, reason, ..
            } => {
                let g = got.entry(conn).or_default();
                assert!(g.end.is_none(), "two ends for {conn}");
                assert!(ts >= g.last_ts);
                g.end = Some(reason);
            }
        })
        .unwrap();
        assert!(t0.elapsed() < HANG_GUARD * 3, "hang");
    }
    got
}

fn start_many(ring: &mut Ring, d: &Daemon, n: usize) -> HashMap<ConnId, Vec<u8>> {
    let mut expected = HashMap::new();
    for i in 0..n {
        let tag = format!("c{i:04}").into_bytes();
        let id = ring.start(HandoffSpec::new(d.path(), tag.clone())).unwrap();
        expected.insert(id, response_for(&tag).concat());
    }
    expected
}

fn check(expected: &HashMap<ConnId, Vec<u8>>, got: &HashMap<ConnId, Got>) {
    assert_eq!(got.len(), expected.len());
    for (id, want) in expected {
        let g = &got[id];
        assert_eq!(g.end, Some(EndReason::PeerClosed), "{id}");
        assert!(
            g.bytes == *want,
            "{id}: {:?}",
            String::from_utf8_lossy(&g.bytes)
        );
    }
}

#[test]
fn five_hundred_concurrent_handoffs_keep_their_own_bytes() {
    raise_fd_limit();
    let d = echo_daemon();
    let mut ring = Ring::new(RingConfig::default()).unwrap();
    let expected = start_many(&mut ring, &d, 500);
    let got = drive(&mut ring, &expected);
    check(&expected, &got);
    let stats = ring.stats();
    assert_eq!(stats.started, 500);
    assert_eq!(stats.handed_off, 500);
}

#[test]
fn a_tiny_ring_with_four_small_buffers_still_delivers_everything() {
    raise_fd_limit();
    let d = echo_daemon();
    let config = RingConfig {
        sq_entries: 4,
        cq_entries: 8,
        buffers: 4,
        buffer_size: 64,
        ..RingConfig::default()
    };
    let mut ring = Ring::new(config).unwrap();
    let expected = start_many(&mut ring, &d, 200);
    let got = drive(&mut ring, &expected);
    check(&expected, &got);
}

#[test]
fn a_ring_with_a_batch_window_delivers_everything() {
    let d = echo_daemon();
    let config = RingConfig {
        batch_window: Duration::from_millis(1),
        ..RingConfig::default()
    };
    let mut ring = Ring::new(config).unwrap();
    let expected = start_many(&mut ring, &d, 200);
    let got = drive(&mut ring, &expected);
    check(&expected, &got);
}

#[test]
fn single_shot_receives_deliver_the_same_bytes() {
    let d = echo_daemon();
    let config = RingConfig {
        recv: RecvMode::Single,
        buffer_size: 64,
        ..RingConfig::default()
    };
    let mut ring = Ring::new(config).unwrap();
    let expected = start_many(&mut ring, &d, 50);
    let got = drive(&mut ring, &expected);
    check(&expected, &got);
    assert!(ring.stats().recv_submissions > 50);
}

#[test]
fn an_empty_buffer_ring_ends_a_receive_that_is_rearmed_without_losing_bytes() {
    // One 64-byte buffer; the client pauses first, so by the time it reads, the socket holds
    // more than one buffer's worth: the multishot receive fills the buffer, finds the ring
    // empty and ends with ENOBUFS; the ring re-arms it after recycling.
    let size = 4096;
    let d = Daemon::scripted(SocketType::SEQPACKET, |_| {
        vec![Step::Write((0..4096).map(|i| (i % 253) as u8).collect())]
    });
    let config = RingConfig {
        buffers: 1,
        buffer_size: 64,
        ..RingConfig::default()
    };
    let mut ring = Ring::new(config).unwrap();
    let behaviour = ClientBehaviour {
        pause: Some(streamcheck::ring::Pause {
            after_bytes: 0,
            duration: Duration::from_millis(100),
        }),
        ..ClientBehaviour::default()
    };
    let id = ring
        .start(HandoffSpec::new(d.path(), b"{}".to_vec()).behaviour(behaviour))
        .unwrap();
    let expected = HashMap::from([(id, (0..size).map(|i| (i % 253) as u8).collect::<Vec<u8>>())]);
    let got = drive(&mut ring, &expected);
    check(&expected, &got);
    assert!(ring.stats().enobufs > 0, "{:?}", ring.stats());
}

#[test]
fn many_threads_share_one_ring_thread() {
    let d = echo_daemon();
    let ring = RingThread::spawn(RingConfig::default()).unwrap();
    let threads: Vec<_> = (0..5)
        .map(|t| {
            let ring = ring.clone();
            let path = d.path();
            std::thread::spawn(move || {
                let streams: Vec<_> = (0..10)
                    .map(|i| {
                        let tag = format!("t{t}s{i}").into_bytes();
                        (tag.clone(), ring.start(HandoffSpec::new(path.clone(), tag)))
                    })
                    .collect();
                for (tag, s) in streams {
                    let raw = s.wait().unwrap();
                    assert_eq!(raw.end, EndReason::PeerClosed);
                    assert_eq!(raw.bytes(), response_for(&tag).concat());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn close_from_the_callback_stops_delivery_at_once() {
    let d = Daemon::scripted(SocketType::SEQPACKET, |_| {
        (0..20)
            .flat_map(|i| {
                [
                    Step::Write(format!("data: {i}\n\n").into_bytes()),
                    Step::Sleep(Duration::from_millis(2)),
                ]
            })
            .collect()
    });
    let mut ring = Ring::new(RingConfig::default()).unwrap();
    let id = ring
        .start(HandoffSpec::new(d.path(), b"{}".to_vec()))
        .unwrap();
    let mut events = 0;
    let mut after_close = 0;
    let mut end = None;
    let t0 = Instant::now();
    while end.is_none() {
        ring.run_once(Some(Duration::from_millis(100)), |ev, cmds| match ev {
            RingEvent::Data { conn, bytes, .. } => {
                if events >= 3 {
                    after_close += 1;
                }
                events += bytes.iter().filter(|&&b| b == b'\n').count() / 2;
                if events >= 3 {
                    cmds.close(conn);
                }
            }
            RingEvent::End { reason, .. } => end = Some(reason),
            RingEvent::HandedOff { .. } => {}
        })
        .unwrap();
        assert!(t0.elapsed() < HANG_GUARD);
    }
    assert_eq!(end, Some(EndReason::ClosedByClient));
    assert_eq!(after_close, 0);
    assert!(!ring.close(id), "already ended");
}
