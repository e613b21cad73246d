//! The stream state machine: what each completion means, and what to submit next.
//!
//! Every completion for a connection ends in [`Ring::advance`], which submits whatever the
//! connection is waiting for once the operations that share its memory are done: a retry's
//! connect waits for the previous attempt's linked timeout, the rest of a stream-socket message
//! for the previous send's linked timeout, a receive for the previous receive.

use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types};
use rustix::io::Errno;

use super::bufring::GROUP;
use super::conn::Phase;
use super::driver::{Queued, Ring, abs_timespec};
use super::sq::{self, Op};
use super::{Commands, ConnId, EndReason, RecvMode, RingEvent};
use crate::clock::monotonic_ns;
use crate::handoff::{self, ConnectPolicy, HandoffError};

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Ring {
    /// Handles one completion; returns the number of events delivered.
    pub(super) fn dispatch<F>(&mut self, cqe: &cqueue::Entry, f: &mut F) -> usize
    where
        F: FnMut(RingEvent<'_>, &mut Commands),
    {
        self.stats.completions += 1;
        let now = monotonic_ns();
        let res = cqe.result();
        let flags = cqe.flags();
        let Some((op, slot, gen24)) = sq::decode(cqe.user_data()) else {
            return 0;
        };
        match op {
            Op::Aux => return 0,
            Op::Wake => {
                self.on_wake();
                return 0;
            }
            Op::Listener => {
                self.on_listener();
                return 0;
            }
            _ => {}
        }
        let Some(id) = self.slab.id_for(slot, gen24) else {
            // A slot is never freed while it has an operation in flight, so this cannot
            // happen; a buffer it carries still goes back.
            if let Some(bid) = cqueue::buffer_select(flags) {
                self.bufs.recycle(bid);
                self.bufs.publish();
            }
            return 0;
        };
        let mut delivered = 0;
        match op {
            Op::Recv => delivered = self.on_recv(id, res, flags, now, f),
            Op::Connect => self.on_connect(id, res, now),
            Op::Send => self.on_send(id, res, now),
            Op::Deadline => {
                self.done(id, op);
                if res == -libc::ETIME {
                    self.finish(id, EndReason::Timeout);
                }
            }
            Op::RetryTimer => {
                self.done(id, op);
                if res == -libc::ETIME
                    && let Some((conn, _)) = self.slab.get_mut(id)
                {
                    conn.want_connect = true;
                }
            }
            Op::ResumeTimer => {
                self.done(id, op);
                if res == -libc::ETIME {
                    self.on_resume_timer(id, now);
                }
            }
            Op::ConnectTimeout | Op::SendTimeout | Op::Shutdown => self.done(id, op),
            Op::Aux | Op::Wake | Op::Listener => {}
        }
        self.advance(id);
        delivered
    }

    /// Marks `op` of `id` complete.
    fn done(&mut self, id: ConnId, op: Op) {
        if let Some((conn, _)) = self.slab.get_mut(id)
            && conn.busy(op)
        {
            conn.clear(op);
            self.ops -= 1;
        }
    }

    /// Submits what `id` waits for, or frees it once ended and idle.
    pub(super) fn advance(&mut self, id: ConnId) {
        let Some((conn, _)) = self.slab.get_mut(id) else {
            return;
        };
        if conn.ended {
            self.slab.release_if_done(id);
            return;
        }
        match conn.phase {
            Phase::Pairing => {}
            Phase::Connecting => {
                if conn.want_connect
                    && !conn.busy(Op::Connect)
                    && !conn.busy(Op::ConnectTimeout)
                    && !conn.busy(Op::RetryTimer)
                {
                    self.connect_now(id);
                }
            }
            Phase::Sending => {
                if conn.want_send && !conn.busy(Op::Send) && !conn.busy(Op::SendTimeout) {
                    self.send_now(id);
                }
            }
            Phase::Receiving => {
                if !conn.paused && !conn.throttled && !conn.busy(Op::Recv) {
                    self.recv_now(id);
                }
            }
        }
    }

    fn connect_now(&mut self, id: ConnId) {
        let Some((conn, _)) = self.slab.get_mut(id) else {
            return;
        };
        let socket = match handoff::daemon_socket(conn.socket_type) {
            Ok(s) => s,
            Err(e) => return self.finish(id, EndReason::Error(e)),
        };
        let Some((conn, io)) = self.slab.get_mut(id) else {
            return;
        };
        conn.want_connect = false;
        conn.attempts = conn.attempts.saturating_add(1);
        conn.timings.attempts = conn.attempts;
        if conn.attempts == 1 {
            conn.timings.connect_start_ns = monotonic_ns();
        }
        io.ts_connect = conn.policy.connect_timeout.into();
        let fd = types::Fd(socket.as_raw_fd());
        conn.daemon = Some(socket);
        let addr = (&io.addr as *const libc::sockaddr_un).cast::<libc::sockaddr>();
        // A Unix-socket connect finishes in the call (success, or EAGAIN on a full backlog):
        // its result is handled as its completion would be, and the send follows at once.
        // SAFETY: `addr` points at the slot's sockaddr_un, `addr_len` bytes of it are set.
        let rc = unsafe { libc::connect(fd.0, addr, io.addr_len) };
        let res = if rc == 0 { 0 } else { -last_errno() };
        if res != -libc::EINPROGRESS {
            self.on_connect(id, res, monotonic_ns());
            return self.advance(id);
        }
        // Still in progress: the ring waits for it, within the policy's connect timeout.
        let connect = opcode::Connect::new(fd, addr, io.addr_len)
            .build()
            .flags(squeue::Flags::IO_LINK)
            .user_data(sq::user_data(Op::Connect, id.slot, id.gen_));
        let timeout = opcode::LinkTimeout::new(&io.ts_connect)
            .build()
            .user_data(sq::user_data(Op::ConnectTimeout, id.slot, id.gen_));
        // SAFETY: the address and timespec are in the slot's ConnIo, unchanged until both
        // completions arrive (a retry waits for them in `advance`).
        unsafe { self.begin(id, &[Op::Connect, Op::ConnectTimeout], &[connect, timeout]) };
    }

    fn on_connect(&mut self, id: ConnId, res: i32, now: u64) {
        self.done(id, Op::Connect);
        let Some((conn, io)) = self.slab.get_mut(id) else {
            return;
        };
        if conn.ended {
            return;
        }
        if res >= 0 {
            conn.timings.connected_ns = now;
            conn.phase = Phase::Sending;
            conn.want_send = true;
            return;
        }
        let errno = Errno::from_raw_os_error(-res);
        // Nothing queued names the failed socket any more.
        conn.daemon = None;
        // The linked timeout cancels a connect waiting on poll (ECANCELED) or interrupts one
        // blocked in an io-wq worker (EINTR).
        if errno == Errno::CANCELED || errno == Errno::INTR {
            let e = HandoffError::ConnectTimeout {
                path: conn.path.to_path_buf(),
                timeout_ms: ms(conn.policy.connect_timeout),
            };
            return self.finish(id, EndReason::Error(e));
        }
        if ConnectPolicy::retries_on(errno) && conn.attempts <= conn.policy.retries {
            io.ts_retry = conn.policy.delay_before_retry(conn.attempts).into();
            conn.want_connect = true;
            let timer = opcode::Timeout::new(&io.ts_retry)
                .build()
                .user_data(sq::user_data(Op::RetryTimer, id.slot, id.gen_));
            // SAFETY: the timespec is in the slot's ConnIo until the timer completes.
            unsafe { self.begin(id, &[Op::RetryTimer], &[timer]) };
            return;
        }
        let e = HandoffError::from_connect(&conn.path, errno, conn.attempts);
        self.finish(id, EndReason::Error(e));
    }

    fn send_now(&mut self, id: ConnId) {
        let Some((conn, io)) = self.slab.get_mut(id) else {
            return;
        };
        let (Some(daemon), Some(handed)) = (&conn.daemon, &conn.handed) else {
            let e = HandoffError::Os {
                what: "sending the handoff (socket missing)",
                errno: Errno::BADF,
            };
            return self.finish(id, EndReason::Error(e));
        };
        conn.want_send = false;
        let daemon = types::Fd(daemon.as_raw_fd());
        let handed = handed.as_raw_fd();
        io.ts_send = conn.policy.send_timeout.into();
        let payload = handoff::message_bytes(&conn.data);
        let send = if conn.sent == 0 {
            let msg = io.msg.prepare(payload, handed);
            // Tried at once; only a socket whose buffer is full makes the ring wait (with the
            // policy's send timeout) for the message or its rest.
            // SAFETY: the msghdr, its iovec and control message are in the slot's ConnIo and
            // point at the connection's data; the call reads them before it returns.
            let rc =
                unsafe { libc::sendmsg(daemon.0, msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
            let res = if rc >= 0 { rc as i32 } else { -last_errno() };
            if res != -libc::EAGAIN {
                self.on_send(id, res, monotonic_ns());
                return self.advance(id);
            }
            opcode::SendMsg::new(daemon, msg)
                .flags(libc::MSG_NOSIGNAL as u32)
                .build()
        } else {
            // A stream socket took only part of the message; the fd went with the first part.
            let rest = payload.get(conn.sent..).unwrap_or_default();
            let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
            opcode::Send::new(daemon, rest.as_ptr(), len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        };
        let send =
            send.flags(squeue::Flags::IO_LINK)
                .user_data(sq::user_data(Op::Send, id.slot, id.gen_));
        let timeout = opcode::LinkTimeout::new(&io.ts_send)
            .build()
            .user_data(sq::user_data(Op::SendTimeout, id.slot, id.gen_));
        // SAFETY: the msghdr, iovec, control message and timespec are in the slot's ConnIo and
        // the payload is the connection's data (or a static NUL byte); none changes or is freed
        // until both completions arrive (the next piece waits for them in `advance`).
        unsafe { self.begin(id, &[Op::Send, Op::SendTimeout], &[send, timeout]) };
    }

    /// A send's result (`res`: bytes sent, or `-errno`), from its completion or from the
    /// system call made at once.
    fn on_send(&mut self, id: ConnId, res: i32, now: u64) {
        self.done(id, Op::Send);
        let Some((conn, _)) = self.slab.get_mut(id) else {
            return;
        };
        if conn.ended {
            return;
        }
        let total = handoff::message_bytes(&conn.data).len();
        if res < 0 {
            let errno = Errno::from_raw_os_error(-res);
            let e = match errno {
                Errno::MSGSIZE => HandoffError::MessageTooLarge {
                    size: total,
                    limit: conn.daemon.as_ref().map_or(0, |fd| {
                        handoff::seqpacket_limit_of(std::os::fd::AsFd::as_fd(fd))
                    }),
                },
                Errno::CANCELED | Errno::INTR => HandoffError::SendTimeout {
                    path: conn.path.to_path_buf(),
                    timeout_ms: ms(conn.policy.send_timeout),
                },
                errno => HandoffError::Send {
                    path: conn.path.to_path_buf(),
                    errno,
                },
            };
            return self.finish(id, EndReason::Error(e));
        }
        conn.sent += res as usize;
        if conn.sent < total {
            conn.want_send = true;
            return;
        }
        conn.timings.sent_ns = now;
        // The daemon has the client now. Nothing queued names these fds any more.
        conn.handed = None;
        match &conn.daemon {
            // Kept for the diagnosis; the daemon reads the message's end as if it were closed.
            Some(daemon) if conn.diagnose => handoff::shut_write(daemon),
            _ => conn.daemon = None,
        }
        conn.data = Vec::new();
        conn.phase = Phase::Receiving;
        self.handing_off -= 1;
        let timings = conn.timings;
        let behaviour = conn.behaviour;
        let pause_now = behaviour.pause.filter(|p| p.after_bytes == 0);
        if pause_now.is_some() {
            conn.pause_done = true;
        }
        self.stats.handed_off += 1;
        self.queued.push_back(Queued::HandedOff(id, timings));
        if behaviour.close_after_bytes == Some(0) {
            return self.finish(id, EndReason::ClosedByClient);
        }
        if behaviour.half_close {
            self.shutdown_write(id);
        }
        if let Some(p) = pause_now {
            self.pause_for(id, p.duration);
        }
    }

    fn recv_now(&mut self, id: ConnId) {
        let Some((conn, _)) = self.slab.get_mut(id) else {
            return;
        };
        let Some(kept) = &conn.kept else {
            return;
        };
        let fd = types::Fd(kept.as_raw_fd());
        let entry = match self.config.recv {
            RecvMode::Multishot => opcode::RecvMulti::new(fd, GROUP).build(),
            RecvMode::Single => opcode::Recv::new(fd, std::ptr::null_mut(), self.bufs.buf_size())
                .buf_group(GROUP)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT),
        }
        .user_data(sq::user_data(Op::Recv, id.slot, id.gen_));
        self.stats.recv_submissions += 1;
        // SAFETY: the receive writes only into buffers of the shared buffer ring, which lives
        // as long as the ring.
        unsafe { self.begin(id, &[Op::Recv], &[entry]) };
    }

    fn on_recv<F>(&mut self, id: ConnId, res: i32, flags: u32, now: u64, f: &mut F) -> usize
    where
        F: FnMut(RingEvent<'_>, &mut Commands),
    {
        if !cqueue::more(flags) {
            self.done(id, Op::Recv);
        }
        let bid = cqueue::buffer_select(flags);
        if res > 0 {
            let Some(bid) = bid else { return 0 };
            let delivered = self.deliver_data(id, bid, res as usize, now, f);
            self.bufs.recycle(bid);
            self.bufs.publish();
            return delivered;
        }
        if let Some(bid) = bid {
            self.bufs.recycle(bid);
            self.bufs.publish();
        }
        match self.slab.get_mut(id) {
            Some((conn, _)) if !conn.ended => {}
            _ => return 0,
        }
        if res == 0 {
            self.finish(id, EndReason::PeerClosed);
            return 0;
        }
        match Errno::from_raw_os_error(-res) {
            // The buffer ring ran dry; `advance` re-arms once buffers are back.
            Errno::NOBUFS => self.stats.enobufs += 1,
            // A pause (or the end) cancelled it; `advance` re-arms if reading should go on.
            Errno::CANCELED => {}
            // A kernel without multishot receive: read one completion at a time instead.
            Errno::INVAL if self.config.recv == RecvMode::Multishot => {
                self.config.recv = RecvMode::Single;
            }
            errno => self.finish(id, EndReason::Error(HandoffError::Receive { errno })),
        }
        0
    }

    fn deliver_data<F>(&mut self, id: ConnId, bid: u16, len: usize, now: u64, f: &mut F) -> usize
    where
        F: FnMut(RingEvent<'_>, &mut Commands),
    {
        let Some((conn, _)) = self.slab.get_mut(id) else {
            return 0;
        };
        if conn.ended || conn.phase != Phase::Receiving {
            return 0;
        }
        let mut take = len as u64;
        if let Some(limit) = conn.behaviour.close_after_bytes {
            take = take.min(limit.saturating_sub(conn.received));
        }
        conn.received += take;
        if take > 0 {
            // A byte came: the daemon took the handoff; the diagnosis is not needed.
            conn.daemon = None;
        }
        let received = conn.received;
        let close = conn
            .behaviour
            .close_after_bytes
            .is_some_and(|l| received >= l);
        let pause = match conn.behaviour.pause {
            Some(p) if !conn.pause_done && received >= p.after_bytes => {
                conn.pause_done = true;
                Some(p.duration)
            }
            _ => None,
        };
        let mut delivered = 0;
        if take > 0 {
            // SAFETY: `bid` comes from this receive's completion, so the kernel has filled it
            // and will not touch it before it is recycled, after this slice is gone.
            if let Some(bytes) = unsafe { self.bufs.get(bid, take as usize) } {
                f(
                    RingEvent::Data {
                        conn: id,
                        ts: now,
                        bytes,
                    },
                    &mut self.commands,
                );
                delivered = 1;
            }
            self.apply_commands();
        }
        if close {
            self.finish(id, EndReason::ClosedByClient);
        } else if let Some(d) = pause {
            self.pause_for(id, d);
        }
        delivered
    }

    /// Stops reading `id` until `duration` from now.
    pub(super) fn pause_for(&mut self, id: ConnId, duration: Duration) {
        let Some((conn, io)) = self.slab.get_mut(id) else {
            return;
        };
        if conn.ended {
            return;
        }
        conn.paused = true;
        conn.resume_at = monotonic_ns().saturating_add(handoff::duration_ns(duration));
        io.ts_resume = abs_timespec(conn.resume_at);
        let recv_busy = conn.busy(Op::Recv);
        let timer_busy = conn.busy(Op::ResumeTimer);
        let ts: *const types::Timespec = &io.ts_resume;
        if recv_busy {
            self.aux(opcode::AsyncCancel::new(sq::user_data(Op::Recv, id.slot, id.gen_)).build());
        }
        let timer_ud = sq::user_data(Op::ResumeTimer, id.slot, id.gen_);
        if timer_busy {
            self.aux(
                opcode::TimeoutUpdate::new(timer_ud, ts)
                    .flags(types::TimeoutFlags::ABS)
                    .build(),
            );
        } else {
            self.arm_resume_timer(id);
        }
    }

    fn arm_resume_timer(&mut self, id: ConnId) {
        let Some((_, io)) = self.slab.get_mut(id) else {
            return;
        };
        let timer = opcode::Timeout::new(&io.ts_resume)
            .flags(types::TimeoutFlags::ABS)
            .build()
            .user_data(sq::user_data(Op::ResumeTimer, id.slot, id.gen_));
        // SAFETY: the timespec is in the slot's ConnIo until the timer completes.
        unsafe { self.begin(id, &[Op::ResumeTimer], &[timer]) };
    }

    fn on_resume_timer(&mut self, id: ConnId, now: u64) {
        let Some((conn, _)) = self.slab.get_mut(id) else {
            return;
        };
        if conn.ended || !conn.paused {
            return;
        }
        if now >= conn.resume_at {
            conn.paused = false;
        } else {
            // A later pause moved the resume time after this timer was already due.
            self.arm_resume_timer(id);
        }
    }

    /// Stops or restarts reading `id` for its reader's sake ([`super::Ring::throttle`]).
    pub(super) fn throttle_now(&mut self, id: ConnId, on: bool) {
        let Some((conn, _)) = self.slab.get_mut(id) else {
            return;
        };
        if conn.ended || conn.throttled == on {
            return;
        }
        conn.throttled = on;
        if on && conn.busy(Op::Recv) {
            self.aux(opcode::AsyncCancel::new(sq::user_data(Op::Recv, id.slot, id.gen_)).build());
        } else if !on {
            self.advance(id);
        }
    }

    /// Resumes reading `id` now.
    pub(super) fn resume_now(&mut self, id: ConnId) {
        let Some((conn, _)) = self.slab.get_mut(id) else {
            return;
        };
        if conn.ended || !conn.paused {
            return;
        }
        conn.paused = false;
        if conn.busy(Op::ResumeTimer) {
            self.aux(
                opcode::TimeoutRemove::new(sq::user_data(Op::ResumeTimer, id.slot, id.gen_))
                    .build(),
            );
        }
        self.advance(id);
    }

    /// `shutdown(SHUT_WR)` on the kept end.
    pub(super) fn shutdown_write(&mut self, id: ConnId) {
        let Some((conn, _)) = self.slab.get_mut(id) else {
            return;
        };
        if conn.ended || conn.busy(Op::Shutdown) {
            return;
        }
        let Some(kept) = &conn.kept else {
            return;
        };
        let entry = opcode::Shutdown::new(types::Fd(kept.as_raw_fd()), libc::SHUT_WR)
            .build()
            .user_data(sq::user_data(Op::Shutdown, id.slot, id.gen_));
        // SAFETY: a shutdown carries no pointer; the fd stays open until it completes.
        unsafe { self.begin(id, &[Op::Shutdown], &[entry]) };
    }

    /// Ends `id`: queues its End event, cancels what it has in flight, and frees it once the
    /// kernel has confirmed every cancellation (closing its fds).
    pub(super) fn finish(&mut self, id: ConnId, reason: EndReason) {
        let now = monotonic_ns();
        let Some((conn, _)) = self.slab.get_mut(id) else {
            return;
        };
        if conn.ended {
            return;
        }
        conn.ended = true;
        if conn.phase != Phase::Receiving {
            self.handing_off -= 1;
        }
        // Nothing in flight names the daemon connection once handed off.
        let fate = match conn.phase {
            Phase::Receiving if conn.received == 0 => conn
                .daemon
                .take()
                .and_then(|d| handoff::diagnose(d.as_fd()).ok()),
            _ => None,
        };
        let inflight = conn.inflight;
        let addr = conn.pending_addr.take();
        self.slab.active -= 1;
        self.queued.push_back(Queued::End(id, now, reason, fate));
        if let Some(addr) = addr
            && self.pending_accept.get(&addr) == Some(&id)
        {
            self.pending_accept.remove(&addr);
        }
        for op in [Op::Connect, Op::Send, Op::Recv] {
            if inflight & op.bit() != 0 {
                self.aux(opcode::AsyncCancel::new(sq::user_data(op, id.slot, id.gen_)).build());
            }
        }
        for op in [Op::Deadline, Op::RetryTimer, Op::ResumeTimer] {
            if inflight & op.bit() != 0 {
                self.aux(opcode::TimeoutRemove::new(sq::user_data(op, id.slot, id.gen_)).build());
            }
        }
        self.slab.release_if_done(id);
    }
}

/// The errno of the system call that just failed.
fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
