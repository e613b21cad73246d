//! Teardown: dropping a ring with streams in flight cancels everything and closes every fd.
//! Alone in its own test binary, because it counts the process's open fds.

mod ring_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring_support::{Daemon, HANG_GUARD, Step, play, raise_fd_limit};
use rustix::net::SocketType;
use streamcheck::ring::{HandoffSpec, Ring, RingConfig, RingEvent, RingThread};

/// The tests count the process's fds, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn dropping_a_ring_with_streams_in_flight_returns_every_fd() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    raise_fd_limit();
    let held = Arc::new(Mutex::new(Vec::new()));
    let held2 = held.clone();
    let d = Daemon::start(SocketType::SEQPACKET, move |h| {
        play(h.fd(), &[Step::Write(b"x".to_vec())]);
        held2.lock().unwrap().push(h);
    });
    let before = ring_support::open_fds();
    {
        let mut ring = Ring::new(RingConfig::default()).unwrap();
        for _ in 0..100 {
            ring.start(HandoffSpec::new(d.path(), b"{}".to_vec()))
                .unwrap();
        }
        let t0 = Instant::now();
        let mut data = 0;
        while data < 100 {
            ring.run_once(Some(Duration::from_millis(100)), |ev, _| {
                if let RingEvent::Data { .. } = ev {
                    data += 1;
                }
            })
            .unwrap();
            assert!(t0.elapsed() < HANG_GUARD);
        }
        assert_eq!(ring.active(), 100);
        // Dropped here with 100 receives and deadlines in flight.
    }
    // The daemon still holds its 100 handed ends; everything of the client's is gone.
    assert_eq!(ring_support::open_fds(), before + 100);
    held.lock().unwrap().clear();
    assert_eq!(ring_support::open_fds(), before);
}

#[test]
fn dropping_the_last_ring_handle_stops_the_ring_thread_and_closes_its_streams() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let held = Arc::new(Mutex::new(Vec::new()));
    let held2 = held.clone();
    let d = Daemon::start(SocketType::SEQPACKET, move |h| {
        held2.lock().unwrap().push(h)
    });
    let before = ring_support::open_fds();
    let ring = RingThread::spawn(RingConfig::default()).unwrap();
    let streams: Vec<_> = (0..10)
        .map(|_| ring.start(HandoffSpec::new(d.path(), b"{}".to_vec())))
        .collect();
    let t0 = Instant::now();
    while held.lock().unwrap().len() < 10 {
        std::thread::sleep(Duration::from_millis(5));
        assert!(t0.elapsed() < HANG_GUARD);
    }
    // Dropping the handles closes the streams; dropping the last one joins the ring thread.
    drop(streams);
    drop(ring);
    held.lock().unwrap().clear();
    assert_eq!(ring_support::open_fds(), before);
}
