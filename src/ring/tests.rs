//! Unit tests for the parts integration tests cannot steer: the deferred accept path, the
//! submission backlog, and the in-flight bookkeeping that decides when memory may be reused.

use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{IoUring, opcode};
use rustix::net::{self, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::sq::{Op, Sq, user_data};
use super::*;

const GUARD: Duration = Duration::from_secs(20);

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A SEQPACKET daemon answering `count` handoffs with "<data>!" and closing.
fn daemon(tag: &str, count: usize) -> (Dir, Arc<Path>, std::thread::JoinHandle<()>) {
    let dir = std::env::temp_dir().join(format!("sc-ring-unit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("d.sock");
    let listener = net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    net::bind(&listener, &SocketAddrUnix::new(&path).unwrap()).unwrap();
    net::listen(&listener, 1024).unwrap();
    let t = std::thread::spawn(move || {
        for _ in 0..count {
            let conn = net::accept(&listener).unwrap();
            let mut data = [0u8; 256];
            let mut space = [MaybeUninit::<u8>::uninit(); 64];
            let mut anc = net::RecvAncillaryBuffer::new(&mut space);
            let msg = net::recvmsg(
                &conn,
                &mut [std::io::IoSliceMut::new(&mut data)],
                &mut anc,
                net::RecvFlags::empty(),
            )
            .unwrap();
            let fds: Vec<OwnedFd> = anc
                .drain()
                .flat_map(|m| match m {
                    net::RecvAncillaryMessage::ScmRights(r) => r.collect::<Vec<_>>(),
                    _ => Vec::new(),
                })
                .collect();
            let mut reply = data[..msg.bytes].to_vec();
            reply.push(b'!');
            rustix::io::write(&fds[0], &reply).unwrap();
        }
    });
    (Dir(dir), Arc::from(path.as_path()), t)
}

/// Runs until every stream ended; returns what each received.
fn drive(ring: &mut Ring, n: usize) -> Vec<(ConnId, Vec<u8>, EndReason)> {
    let mut data: std::collections::HashMap<ConnId, Vec<u8>> = Default::default();
    let mut ends = Vec::new();
    let t0 = Instant::now();
    while ends.len() < n {
        ring.run_once(Some(Duration::from_millis(100)), |ev, _| match ev {
            RingEvent::Data { conn, bytes, .. } => {
                data.entry(conn).or_default().extend_from_slice(bytes)
            }
            RingEvent::End { conn, reason, .. } => {
                ends.push((conn, data.remove(&conn).unwrap_or_default(), reason))
            }
            RingEvent::HandedOff { .. } => {}
        })
        .unwrap();
        assert!(t0.elapsed() < GUARD, "hang");
    }
    ends
}

/// After everything ended and settled, nothing is in flight and every slot is free.
fn assert_settled(ring: &mut Ring) {
    let t0 = Instant::now();
    while ring.slab.inflight_ops() > 0 {
        ring.run_once(Some(Duration::from_millis(10)), |_, _| {})
            .unwrap();
        assert!(t0.elapsed() < GUARD, "operations never completed");
    }
    let global = usize::from(ring.wake_reading) + usize::from(ring.listener_polling);
    assert_eq!(ring.ops, global);
    assert!(ring.slab.slots.iter().all(|s| s.conn.is_none()));
    assert_eq!(ring.active(), 0);
    assert_eq!(ring.handoffs_in_progress(), 0);
}

#[test]
fn pairs_whose_accept_waits_for_the_listener_are_matched_by_port() {
    let (_dir, path, t) = daemon("defer", 20);
    let mut ring = Ring::new(RingConfig::default()).unwrap();
    ring.defer_accepts = true;
    for i in 0..20 {
        ring.start(HandoffSpec::new(path.clone(), format!("s{i}")))
            .unwrap();
    }
    let ends = drive(&mut ring, 20);
    t.join().unwrap();
    let mut bodies: Vec<String> = ends
        .iter()
        .map(|(_, d, r)| {
            assert_eq!(*r, EndReason::PeerClosed);
            String::from_utf8(d.clone()).unwrap()
        })
        .collect();
    bodies.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("s{i}!")).collect();
    want.sort();
    assert_eq!(bodies, want);
    assert_settled(&mut ring);
}

#[test]
fn a_stranger_on_the_loopback_listener_is_closed_not_handed_off() {
    let (_dir, path, t) = daemon("stranger", 2);
    let mut ring = Ring::new(RingConfig::default()).unwrap();
    ring.start(HandoffSpec::new(path.clone(), "a")).unwrap();
    let addr = ring.pairs.as_ref().unwrap().local_addr();
    let stranger = std::net::TcpStream::connect(addr).unwrap();
    ring.start(HandoffSpec::new(path, "b")).unwrap();
    let ends = drive(&mut ring, 2);
    t.join().unwrap();
    assert!(ends.iter().all(|(_, _, r)| *r == EndReason::PeerClosed));
    assert_eq!(ring.stats().foreign_accepts, 1);
    drop(stranger);
    assert_settled(&mut ring);
}

#[test]
fn ended_streams_free_their_slots_once_the_kernel_is_done() {
    let (_dir, path, t) = daemon("settle", 30);
    let mut ring = Ring::new(RingConfig::default()).unwrap();
    ring.waker().unwrap();
    for i in 0..30 {
        let spec = HandoffSpec::new(path.clone(), format!("{i}"));
        let spec = if i % 3 == 0 {
            spec.behaviour(ClientBehaviour::close_after_bytes(1))
        } else if i % 3 == 1 {
            spec.behaviour(ClientBehaviour::slow_reader(
                0,
                Duration::from_millis(20),
                4096,
            ))
        } else {
            spec
        };
        ring.start(spec).unwrap();
    }
    drive(&mut ring, 30);
    t.join().unwrap();
    assert_settled(&mut ring);
    // Slots are reused: the next stream takes a freed slot.
    let (_dir2, path2, t2) = daemon("settle2", 1);
    let id = ring.start(HandoffSpec::new(path2, "again")).unwrap();
    assert!(id.slot() < 30);
    drive(&mut ring, 1);
    t2.join().unwrap();
}

#[test]
fn the_backlog_keeps_entries_in_order_until_the_kernel_takes_them() {
    // A disabled ring refuses submissions, so entries pile up in the backlog.
    let mut ring: IoUring = IoUring::builder().setup_r_disabled().build(2).unwrap();
    let mut sq = Sq::default();
    for i in 0..6u32 {
        let nop = opcode::Nop::new()
            .build()
            .user_data(user_data(Op::Aux, i, 0));
        // SAFETY: a nop carries no pointer.
        unsafe { sq.push(&mut ring, &[nop]) };
    }
    assert!(sq.has_backlog());
    assert!(sq.full >= 4);
    ring.submitter().register_enable_rings().unwrap();
    let mut seen = Vec::new();
    let t0 = Instant::now();
    while seen.len() < 6 {
        sq.flush(&mut ring);
        ring.submit_and_wait(1).unwrap();
        seen.extend(ring.completion().map(|c| c.user_data() as u32));
        assert!(t0.elapsed() < GUARD);
    }
    assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
    assert!(!sq.has_backlog());
}

#[test]
fn a_waker_returns_a_blocked_run_once() {
    let mut ring = Ring::new(RingConfig::default()).unwrap();
    let waker = ring.waker().unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        waker.wake();
    });
    // Would block forever without the wake.
    assert_eq!(ring.run_once(None, |_, _| {}).unwrap(), 0);
    t.join().unwrap();
    assert!(ring.wake_reading, "the eventfd read is re-armed");
}

#[test]
fn run_once_returns_at_once_when_nothing_can_complete() {
    let mut ring = Ring::new(RingConfig::default()).unwrap();
    assert_eq!(ring.run_once(None, |_, _| {}).unwrap(), 0);
}

#[test]
fn commands_for_unknown_or_ended_streams_are_refused() {
    let mut ring = Ring::new(RingConfig::default()).unwrap();
    let ghost = ConnId { slot: 7, gen_: 3 };
    assert!(!ring.close(ghost));
    assert!(!ring.pause(ghost, Duration::from_millis(1)));
    assert!(!ring.resume(ghost));
    assert!(!ring.half_close(ghost));
    let (_dir, path, t) = daemon("ended", 1);
    let id = ring.start(HandoffSpec::new(path, "x")).unwrap();
    assert_eq!(drive(&mut ring, 1)[0].0, id);
    t.join().unwrap();
    assert!(!ring.close(id));
    assert!(!ring.pause(id, Duration::from_millis(1)));
    assert!(!ring.resume(id));
    assert!(!ring.half_close(id));
}

#[test]
fn buffer_counts_must_be_powers_of_two() {
    let config = RingConfig {
        buffers: 3,
        ..RingConfig::default()
    };
    assert!(matches!(
        Ring::new(config),
        Err(crate::handoff::HandoffError::Os { .. })
    ));
}
