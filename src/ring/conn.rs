//! Per-connection state, and the slab that owns it.
//!
//! Everything the kernel reads or writes for a connection (socket address, msghdr, iovec,
//! control message, timespecs) lives in a boxed [`ConnIo`], so its address survives the slab
//! growing. A slot — and its `ConnIo` — is reused only once every operation that refers to it has
//! completed (`inflight == 0`), and the box is kept for the next connection in that slot, so a
//! connection allocates nothing beyond its data.

use std::net::SocketAddrV4;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use io_uring::types::Timespec;

use super::spec::ClientBehaviour;
use super::sq::Op;
use super::{ConnId, HandoffTimings};
use crate::handoff::{ConnectPolicy, HandoffMsg, SocketType};

/// Memory the kernel follows pointers into.
pub(crate) struct ConnIo {
    pub(crate) addr: libc::sockaddr_un,
    pub(crate) addr_len: u32,
    pub(crate) msg: HandoffMsg,
    pub(crate) ts_deadline: Timespec,
    pub(crate) ts_connect: Timespec,
    pub(crate) ts_send: Timespec,
    pub(crate) ts_retry: Timespec,
    pub(crate) ts_resume: Timespec,
}

impl ConnIo {
    fn new() -> ConnIo {
        ConnIo {
            // SAFETY: sockaddr_un is a plain C struct for which all-zero is valid.
            addr: unsafe { std::mem::zeroed() },
            addr_len: 0,
            msg: HandoffMsg::new(),
            ts_deadline: Timespec::new(),
            ts_connect: Timespec::new(),
            ts_send: Timespec::new(),
            ts_retry: Timespec::new(),
            ts_resume: Timespec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for the loopback listener to accept the handed end.
    Pairing,
    /// Connecting to the daemon (or waiting to retry).
    Connecting,
    /// Sending the handoff message.
    Sending,
    /// Handed off: reading the response.
    Receiving,
}

pub(crate) struct Conn {
    pub(crate) path: Arc<Path>,
    pub(crate) socket_type: SocketType,
    pub(crate) policy: ConnectPolicy,
    pub(crate) behaviour: ClientBehaviour,
    /// The handoff data; freed once sent.
    pub(crate) data: Vec<u8>,
    pub(crate) kept: Option<OwnedFd>,
    pub(crate) handed: Option<OwnedFd>,
    pub(crate) daemon: Option<OwnedFd>,
    /// Keep `daemon` after the send, until the first byte or the end, to diagnose the handoff.
    pub(crate) diagnose: bool,
    /// The local address of the kept end while its accepted end is awaited.
    pub(crate) pending_addr: Option<SocketAddrV4>,
    pub(crate) phase: Phase,
    pub(crate) ended: bool,
    /// Its [`super::RingEvent::End`] has been delivered: until then the slot is not reused,
    /// even when nothing is in flight (a stream without a ring deadline can end idle).
    pub(crate) end_delivered: bool,
    /// One bit per operation kind in flight ([`Op::bit`]).
    pub(crate) inflight: u16,
    /// Connect attempts made so far.
    pub(crate) attempts: u8,
    /// A connect (first or retry) is due as soon as the previous attempt's operations are done.
    pub(crate) want_connect: bool,
    /// Bytes of the message sent so far (a stream socket may take it in pieces).
    pub(crate) sent: usize,
    /// More of the message is due as soon as the previous send's operations are done.
    pub(crate) want_send: bool,
    pub(crate) received: u64,
    pub(crate) paused: bool,
    /// Not read while the reader of its data is behind ([`super::Ring::throttle`]).
    pub(crate) throttled: bool,
    /// The behaviour's pause has happened (it happens once).
    pub(crate) pause_done: bool,
    /// While paused: when reading resumes (monotonic ns).
    pub(crate) resume_at: u64,
    pub(crate) timings: HandoffTimings,
}

impl Conn {
    pub(crate) fn busy(&self, op: Op) -> bool {
        self.inflight & op.bit() != 0
    }

    pub(crate) fn set(&mut self, op: Op) {
        self.inflight |= op.bit();
    }

    pub(crate) fn clear(&mut self, op: Op) {
        self.inflight &= !op.bit();
    }
}

pub(crate) struct Slot {
    pub(crate) gen_: u32,
    pub(crate) io: Box<ConnIo>,
    pub(crate) conn: Option<Conn>,
}

#[derive(Default)]
pub(crate) struct Slab {
    pub(crate) slots: Vec<Slot>,
    free: Vec<u32>,
    /// Connections started and not yet ended.
    pub(crate) active: usize,
}

impl Slab {
    /// Stores `conn` in a free slot; returns its id and its kernel-visible memory.
    pub(crate) fn insert(&mut self, conn: Conn) -> (ConnId, &mut ConnIo) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    gen_: 0,
                    io: Box::new(ConnIo::new()),
                    conn: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.active += 1;
        let slot = &mut self.slots[index as usize];
        slot.conn = Some(conn);
        let id = ConnId {
            slot: index,
            gen_: slot.gen_,
        };
        (id, &mut slot.io)
    }

    /// The slot and connection for a live id (not yet freed).
    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<(&mut Conn, &mut ConnIo)> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if slot.gen_ != id.gen_ {
            return None;
        }
        let conn = slot.conn.as_mut()?;
        Some((conn, &mut slot.io))
    }

    /// The id of the connection in `slot` whose generation's low 24 bits are `gen24`.
    pub(crate) fn id_for(&self, slot: u32, gen24: u32) -> Option<ConnId> {
        let s = self.slots.get(slot as usize)?;
        (s.conn.is_some() && s.gen_ & 0x00ff_ffff == gen24).then_some(ConnId { slot, gen_: s.gen_ })
    }

    /// Frees the slot if its connection has ended and nothing in flight refers to it. Dropping
    /// the connection closes its fds: no queued or in-flight operation names them any more.
    pub(crate) fn release_if_done(&mut self, id: ConnId) -> bool {
        let Some(slot) = self.slots.get_mut(id.slot as usize) else {
            return false;
        };
        let done = matches!(&slot.conn, Some(c) if slot.gen_ == id.gen_ && c.ended && c.end_delivered && c.inflight == 0);
        if done {
            slot.conn = None;
            slot.gen_ = slot.gen_.wrapping_add(1);
            self.free.push(id.slot);
        }
        done
    }

    /// Operations in flight over all connections.
    #[cfg(test)]
    pub(crate) fn inflight_ops(&self) -> usize {
        self.slots
            .iter()
            .filter_map(|s| s.conn.as_ref())
            .map(|c| c.inflight.count_ones() as usize)
            .sum()
    }
}
