//! A [`Ring`] on its own thread, for scenario code running on ordinary threads.
//!
//! Commands go into a shared queue and an eventfd write wakes the ring thread (it always has a
//! read of that eventfd posted); events come back over one channel per stream, with owned data.
//! The thread ends when the last [`RingHandle`] and [`StreamHandle`] are gone.
//!
//! A daemon can send faster than a stream's reader takes the data in, and a reader may look at
//! one stream while others run. So each stream's channel holds at most about
//! [`BACKLOG_HIGH`] bytes: past it the ring stops reading that stream (the daemon's writes then
//! block, as a browser's would), and the reader restarts it once it has caught up to
//! [`BACKLOG_LOW`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::driver::{Ring, Waker};
use super::spec::HandoffSpec;
use super::{ConnId, EndReason, HandoffTimings, RingConfig, RingEvent};
use crate::clock::monotonic_ns;
use crate::handoff::{HandoffError, HandoffFate};

/// Bytes waiting in one stream's channel past which the ring stops reading it.
const BACKLOG_HIGH: u64 = 256 << 10;
/// Bytes waiting below which a stopped stream is read again.
const BACKLOG_LOW: u64 = 64 << 10;

/// What one stream's channel holds, shared by the ring thread and the stream's reader.
#[derive(Debug, Default)]
struct Backlog {
    bytes: AtomicU64,
    throttled: AtomicBool,
}

/// Bytes read in one completion, with their arrival time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// When the completion was reaped ([`crate::clock::monotonic_ns`]).
    pub ts_ns: u64,
    /// The bytes, in stream order.
    pub bytes: Vec<u8>,
}

/// One stream event, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The daemon has the client socket.
    HandedOff(HandoffTimings),
    /// Bytes read from the kept end.
    Data(Chunk),
    /// The stream is over; nothing follows.
    End {
        /// When the end was seen ([`crate::clock::monotonic_ns`]).
        ts_ns: u64,
        /// Why the stream ended.
        reason: EndReason,
        /// What the daemon did with a handoff that got no byte ([`RingEvent::End`]'s `fate`).
        fate: Option<HandoffFate>,
    },
}

/// Everything one stream recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawStream {
    /// The handoff's timings (`None` if it never completed).
    pub handoff: Option<HandoffTimings>,
    /// Every read, in order.
    pub chunks: Vec<Chunk>,
    /// How it ended.
    pub end: EndReason,
    /// What the daemon did with a handoff that got no byte, when known.
    pub fate: Option<HandoffFate>,
    /// When it ended.
    pub end_ns: u64,
}

impl RawStream {
    /// All bytes received, concatenated.
    pub fn bytes(&self) -> Vec<u8> {
        self.chunks
            .iter()
            .flat_map(|c| c.bytes.iter().copied())
            .collect()
    }
}

enum Cmd {
    Start {
        token: u64,
        spec: Box<HandoffSpec>,
        events: Sender<StreamEvent>,
        backlog: Arc<Backlog>,
    },
    Close(u64),
    Pause(u64, Duration),
    Resume(u64),
    HalfClose(u64),
    Unthrottle(u64),
    Shutdown,
}

struct Queue {
    cmds: Vec<Cmd>,
    stopped: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    next_token: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Inner {
    shared: Arc<Shared>,
    waker: Waker,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Inner {
    /// Queues `cmd` and wakes the ring; gives it back if the ring thread has stopped.
    fn send(&self, cmd: Cmd) -> Result<(), Cmd> {
        let mut queue = self.shared.lock();
        if queue.stopped {
            return Err(cmd);
        }
        queue.cmds.push(cmd);
        drop(queue);
        self.waker.wake();
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.send(Cmd::Shutdown);
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// Starts ring threads.
pub struct RingThread;

impl RingThread {
    /// Spawns a thread running a [`Ring`] with `config`; fails if the ring cannot be set up.
    pub fn spawn(config: RingConfig) -> Result<RingHandle, HandoffError> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                cmds: Vec::new(),
                stopped: false,
            }),
            next_token: AtomicU64::new(0),
        });
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("streamcheck-ring".into())
            .spawn(move || run(config, &thread_shared, ready_tx))
            .map_err(|e| HandoffError::Os {
                what: "spawning the ring thread",
                errno: rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::AGAIN),
            })?;
        let waker = match ready_rx.recv() {
            Ok(Ok(waker)) => waker,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(HandoffError::RingStopped);
            }
        };
        Ok(RingHandle {
            inner: Arc::new(Inner {
                shared,
                waker,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }
}

/// A handle to a ring thread; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct RingHandle {
    inner: Arc<Inner>,
}

impl RingHandle {
    /// Starts a stream on the ring thread.
    pub fn start(&self, spec: HandoffSpec) -> StreamHandle {
        let token = self.inner.shared.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        let backlog = Arc::new(Backlog::default());
        if let Err(Cmd::Start { events, .. }) = self.inner.send(Cmd::Start {
            token,
            spec: Box::new(spec),
            events: tx,
            backlog: backlog.clone(),
        }) {
            let _ = events.send(StreamEvent::End {
                ts_ns: monotonic_ns(),
                reason: EndReason::Error(HandoffError::RingStopped),
                fate: None,
            });
        }
        StreamHandle {
            token,
            events: rx,
            backlog,
            ring: self.clone(),
            ended: false,
        }
    }

    /// Closes every stream and stops the ring thread (e.g. when the run is interrupted): each
    /// stream ends at once, and streams started later fail with [`HandoffError::RingStopped`].
    pub fn shut_down(&self) {
        let _ = self.inner.send(Cmd::Shutdown);
    }

    /// Runs one stream to its end. `Err` when the handoff itself failed (e.g.
    /// [`HandoffError::WrongSocketType`]); errors after the handoff are in [`RawStream::end`].
    pub fn run_to_end(&self, spec: HandoffSpec) -> Result<RawStream, HandoffError> {
        self.start(spec).wait()
    }
}

/// One stream on a ring thread: its events, and commands for it. Dropping it before the stream
/// ended closes the stream.
pub struct StreamHandle {
    token: u64,
    events: Receiver<StreamEvent>,
    backlog: Arc<Backlog>,
    ring: RingHandle,
    ended: bool,
}

impl StreamHandle {
    /// The next event, waiting as long as it takes (the stream's deadline bounds it). `None`
    /// after the end.
    pub fn recv(&mut self) -> Option<StreamEvent> {
        let ev = self.events.recv().ok();
        self.note(ev.as_ref());
        ev
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<StreamEvent, RecvTimeoutError> {
        let ev = self.events.recv_timeout(timeout);
        self.note(ev.as_ref().ok());
        ev
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Result<StreamEvent, TryRecvError> {
        let ev = self.events.try_recv();
        self.note(ev.as_ref().ok());
        ev
    }

    fn note(&mut self, ev: Option<&StreamEvent>) {
        match ev {
            Some(StreamEvent::End { .. }) | None => self.ended = true,
            Some(StreamEvent::Data(chunk)) => {
                let left = self
                    .backlog
                    .bytes
                    .fetch_sub(chunk.bytes.len() as u64, Ordering::AcqRel)
                    .saturating_sub(chunk.bytes.len() as u64);
                if left <= BACKLOG_LOW && self.backlog.throttled.swap(false, Ordering::AcqRel) {
                    let _ = self.ring.inner.send(Cmd::Unthrottle(self.token));
                }
            }
            Some(StreamEvent::HandedOff(_)) => {}
        }
    }

    /// Closes the connection (the stream ends as [`EndReason::ClosedByClient`]).
    pub fn close(&self) {
        let _ = self.ring.inner.send(Cmd::Close(self.token));
    }

    /// Stops reading for `duration`.
    pub fn pause(&self, duration: Duration) {
        let _ = self.ring.inner.send(Cmd::Pause(self.token, duration));
    }

    /// Resumes reading now.
    pub fn resume(&self) {
        let _ = self.ring.inner.send(Cmd::Resume(self.token));
    }

    /// Shuts down the write side (the daemon reads EOF).
    pub fn half_close(&self) {
        let _ = self.ring.inner.send(Cmd::HalfClose(self.token));
    }

    /// Collects the remaining events until the end. `Err` when the handoff failed.
    pub fn wait(mut self) -> Result<RawStream, HandoffError> {
        let mut handoff = None;
        let mut chunks = Vec::new();
        loop {
            match self.recv() {
                Some(StreamEvent::HandedOff(t)) => handoff = Some(t),
                Some(StreamEvent::Data(c)) => chunks.push(c),
                Some(StreamEvent::End {
                    ts_ns,
                    reason,
                    fate,
                }) => {
                    if handoff.is_none()
                        && let EndReason::Error(e) = reason
                    {
                        return Err(e);
                    }
                    return Ok(RawStream {
                        handoff,
                        chunks,
                        end: reason,
                        fate,
                        end_ns: ts_ns,
                    });
                }
                None => return Err(HandoffError::RingStopped),
            }
        }
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        if !self.ended {
            self.close();
        }
    }
}

fn run(config: RingConfig, shared: &Shared, ready: mpsc::SyncSender<Result<Waker, HandoffError>>) {
    let mut ring = match Ring::new(config) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    match ring.waker() {
        Ok(w) => {
            let _ = ready.send(Ok(w));
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    }
    let mut by_token: HashMap<u64, ConnId> = HashMap::new();
    let mut streams: HashMap<ConnId, (u64, Sender<StreamEvent>, Arc<Backlog>)> = HashMap::new();
    let mut shutting_down = false;
    let failure = loop {
        let cmds = std::mem::take(&mut shared.lock().cmds);
        for cmd in cmds {
            let with = |t: u64| by_token.get(&t).copied();
            match cmd {
                Cmd::Start {
                    token,
                    spec,
                    events,
                    backlog,
                } => match ring.start(*spec) {
                    Ok(id) => {
                        by_token.insert(token, id);
                        streams.insert(id, (token, events, backlog));
                    }
                    Err(e) => {
                        let _ = events.send(StreamEvent::End {
                            ts_ns: monotonic_ns(),
                            reason: EndReason::Error(e),
                            fate: None,
                        });
                    }
                },
                Cmd::Close(t) => {
                    with(t).map(|id| ring.close(id));
                }
                Cmd::Pause(t, d) => {
                    with(t).map(|id| ring.pause(id, d));
                }
                Cmd::Resume(t) => {
                    with(t).map(|id| ring.resume(id));
                }
                Cmd::HalfClose(t) => {
                    with(t).map(|id| ring.half_close(id));
                }
                Cmd::Unthrottle(t) => {
                    with(t).map(|id| ring.throttle(id, false));
                }
                Cmd::Shutdown => shutting_down = true,
            }
        }
        if shutting_down {
            for id in by_token.values() {
                ring.close(*id);
            }
            if ring.active() == 0 {
                break None;
            }
        }
        let step = ring.run_once(None, |ev, cmds| match ev {
            RingEvent::HandedOff { conn, timings } => {
                if let Some((_, tx, _)) = streams.get(&conn) {
                    let _ = tx.send(StreamEvent::HandedOff(timings));
                }
            }
            RingEvent::Data { conn, ts, bytes } => {
                if let Some((_, tx, backlog)) = streams.get(&conn) {
                    let queued = backlog
                        .bytes
                        .fetch_add(bytes.len() as u64, Ordering::AcqRel)
                        .saturating_add(bytes.len() as u64);
                    if queued > BACKLOG_HIGH && !backlog.throttled.swap(true, Ordering::AcqRel) {
                        cmds.throttle(conn, true);
                    }
                    let _ = tx.send(StreamEvent::Data(Chunk {
                        ts_ns: ts,
                        bytes: bytes.to_vec(),
                    }));
                }
            }
            RingEvent::End {
                conn,
                ts,
                reason,
                fate,
            } => {
                if let Some((token, tx, _)) = streams.remove(&conn) {
                    by_token.remove(&token);
                    let _ = tx.send(StreamEvent::End {
                        ts_ns: ts,
                        reason,
                        fate,
                    });
                }
            }
        });
        if let Err(e) = step {
            break Some(e);
        }
    };
    // No command can arrive after this: fail whatever is queued or running.
    let leftover = {
        let mut queue = shared.lock();
        queue.stopped = true;
        std::mem::take(&mut queue.cmds)
    };
    let reason = EndReason::Error(failure.unwrap_or(HandoffError::RingStopped));
    let ts_ns = monotonic_ns();
    for cmd in leftover {
        if let Cmd::Start { events, .. } = cmd {
            let _ = events.send(StreamEvent::End {
                ts_ns,
                reason: reason.clone(),
                fate: None,
            });
        }
    }
    for (_, (_, tx, _)) in streams {
        let _ = tx.send(StreamEvent::End {
            ts_ns,
            reason: reason.clone(),
            fate: None,
        });
    }
}
