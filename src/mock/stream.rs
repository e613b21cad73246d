//! The response body: plays an [`UpstreamPlan`] write by write, stamps and logs every write, and
//! notices when the client goes away.
//!
//! Each write is its own frame and is followed by one yield (the body wakes itself and returns
//! `Pending`), so hyper flushes it before the next one is produced: on HTTP/1.1 every write is
//! its own chunk and its own socket write, on HTTP/2 its own DATA frame.
//!
//! Each write is stamped twice: when it is produced (handed to hyper) and when it can go out.
//! On HTTP/1.1 that is the same instant. On HTTP/2 hyper polls the body for more only once h2
//! has given the last write send capacity, which the client's flow-control window can hold
//! back for as long as it stays closed: the next poll stamps the last write as sent.
//!
//! Cancellation: hyper drops the body when the client closes the connection (HTTP/1.1: hyper
//! reads EOF while the response is in progress) or resets the stream (HTTP/2: RST_STREAM). The
//! `Drop` impl records the request as cancelled at the first write not yet handed over.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::Shared;
use super::log::{RequestEnd, WriteRecord};
use super::server::ConnControl;
use crate::clock::monotonic_ns;
use crate::pattern::{Ending, UpstreamPlan};

/// On HTTP/2, how long a reset waits after the last write: h2 discards the DATA frames of a
/// reset stream that its connection task has not yet taken, and the plan promises they go out.
/// The body cannot see that task, so it gives it time: with no wait about 1% of resets lost
/// their last DATA frame with the machine loaded; with 25 ms none of 400 did; 50 ms is margin.
const H2_RESET_GRACE: Duration = Duration::from_millis(50);

/// The error a body returns to make hyper tear the stream down.
#[derive(Debug, thiserror::Error)]
#[error("the mock's plan ends this response with a reset")]
pub(crate) struct PlannedReset;

/// A response body: a fixed buffer (mock's own JSON answers) or a plan being played.
pub(crate) enum MockBody {
    Full(Option<Bytes>),
    Plan(Box<PlanBody>),
}

impl MockBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> MockBody {
        MockBody::Full(Some(bytes.into()))
    }
}

/// How the planned reset reaches the wire.
pub(crate) enum ResetVia {
    /// HTTP/1.1: once the last write has been flushed to the socket, set the connection's flag
    /// (SO_LINGER 0 on drop) and fail the body; hyper then drops the connection.
    Connection(Arc<ConnControl>),
    /// HTTP/2: fail the body; hyper sends RST_STREAM(INTERNAL_ERROR).
    Stream,
}

pub(crate) struct PlanBody {
    plan: UpstreamPlan,
    next: usize,
    handed: usize,
    offset: u64,
    /// When the previous write was handed over (or the response head was returned); delays run
    /// from here, so a slow reader does not add to the following delay.
    base: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    yield_next: bool,
    /// HTTP/2: the index of the latest write, until it is stamped as sent (the next poll).
    unsent: Option<usize>,
    finished: bool,
    reset_via: ResetVia,
    /// HTTP/1.1: the connection's flush count when the latest write was handed over; a later
    /// flush carried it (hyper encodes a frame into its buffer before it next flushes).
    flushes_at_handover: u64,
    shared: Arc<Shared>,
    id: u64,
}

impl PlanBody {
    pub(crate) fn new(
        plan: UpstreamPlan,
        reset_via: ResetVia,
        shared: Arc<Shared>,
        id: u64,
    ) -> Self {
        let flushes_at_handover = match &reset_via {
            ResetVia::Connection(control) => control.flushes(),
            ResetVia::Stream => 0,
        };
        PlanBody {
            flushes_at_handover,
            plan,
            next: 0,
            handed: 0,
            offset: 0,
            base: Instant::now(),
            sleep: None,
            yield_next: false,
            unsent: None,
            finished: false,
            reset_via,
            shared,
            id,
        }
    }

    fn finish(&mut self, end: RequestEnd) {
        self.finished = true;
        self.shared.finish(self.id, end);
    }

    /// Polls a sleep until `base + delay`; `Ready` once it has passed.
    fn wait(&mut self, delay: Duration, cx: &mut Context<'_>) -> Poll<()> {
        if delay.is_zero() {
            return Poll::Ready(());
        }
        // A delay past tokio's clock range (only an in-process script can ask for one) is a
        // stall of some thirty years.
        let far = Duration::from_secs(30 * 365 * 86_400);
        let deadline = self
            .base
            .checked_add(delay)
            .unwrap_or_else(|| self.base + far);
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.sleep = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = PlannedReset;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, PlannedReset>>> {
        match self.get_mut() {
            MockBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Plan(plan) => plan.poll(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, MockBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Plan(_) => SizeHint::default(),
        }
    }
}

impl PlanBody {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, PlannedReset>>> {
        if let Some(index) = self.unsent.take() {
            // hyper (1.x, HTTP/2) polls the body again only once the write it last took has
            // been given send capacity by h2 and queued as DATA.
            self.shared.log.record_sent(self.id, index, monotonic_ns());
        }
        if self.finished {
            return Poll::Ready(None);
        }
        if self.yield_next {
            // Let hyper flush the previous write before this body produces the next.
            self.yield_next = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        while let Some(write) = self.plan.writes.get(self.next) {
            let (delay, bytes) = (write.delay_before, write.bytes.clone());
            if self.wait(delay, cx).is_pending() {
                return Poll::Pending;
            }
            self.next += 1;
            self.base = Instant::now();
            if bytes.is_empty() {
                continue; // a pure delay
            }
            let start = self.offset;
            self.offset += bytes.len() as u64;
            self.handed += 1;
            if let ResetVia::Connection(control) = &self.reset_via {
                self.flushes_at_handover = control.flushes();
            }
            let ts_ns = monotonic_ns();
            let sent_ns = match &self.reset_via {
                ResetVia::Connection(_) => Some(ts_ns),
                ResetVia::Stream => {
                    self.unsent = Some(self.handed - 1);
                    None
                }
            };
            self.shared.log.record_write(
                self.id,
                WriteRecord {
                    ts_ns,
                    sent_ns,
                    start,
                    end: self.offset,
                },
            );
            self.yield_next = true;
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        match self.plan.ending {
            Ending::Close => {
                self.finish(RequestEnd::Completed);
                Poll::Ready(None)
            }
            Ending::Reset => {
                match &self.reset_via {
                    ResetVia::Stream => {
                        if self.wait(H2_RESET_GRACE, cx).is_pending() {
                            return Poll::Pending;
                        }
                    }
                    ResetVia::Connection(control) => {
                        // Closing with RST drops whatever is still queued, in hyper or in the
                        // kernel: wait at least for the flush that hands the last write to the
                        // kernel (on loopback it passes on at once unless the peer's receive
                        // buffer is full).
                        if control
                            .poll_flushed_after(self.flushes_at_handover, cx)
                            .is_pending()
                        {
                            return Poll::Pending;
                        }
                        control.reset.store(true, Ordering::SeqCst);
                    }
                }
                self.finish(RequestEnd::Reset);
                Poll::Ready(Some(Err(PlannedReset)))
            }
            // No waker is registered: nothing will ever wake this body. hyper still watches the
            // connection and drops the body when the client leaves.
            Ending::Stall => Poll::Pending,
        }
    }
}

impl Drop for PlanBody {
    fn drop(&mut self) {
        if !self.finished {
            let all_handed = self.next >= self.plan.writes.len();
            let end = if all_handed && self.plan.ending == Ending::Close {
                // hyper stops polling a body whose Content-Length has been written: it is
                // complete even though it never returned its end.
                RequestEnd::Completed
            } else if self.shared.shutting_down.load(Ordering::SeqCst) {
                RequestEnd::ShutDown
            } else {
                RequestEnd::Cancelled {
                    at_write: self.handed,
                }
            };
            self.finish(end);
        }
    }
}
