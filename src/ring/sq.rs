//! Submission: user_data tags, and a queue that never loses an entry when the SQ is full.
//!
//! An entry that does not fit waits in a backlog, in order, and goes in before anything newer;
//! a linked pair (an operation and its linked timeout) always goes in together, since a link
//! cut at a submission boundary would leave the timeout without its operation.

use std::collections::VecDeque;

use io_uring::{IoUring, squeue};
use rustix::io::Errno;

/// What a completion belongs to. Per-connection operations each have one bit in
/// `Conn::inflight`; at most one of each kind is in flight per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Op {
    Connect = 0,
    ConnectTimeout = 1,
    Send = 2,
    SendTimeout = 3,
    Recv = 4,
    Deadline = 5,
    RetryTimer = 6,
    ResumeTimer = 7,
    Shutdown = 8,
    /// The eventfd read that wakes the loop for commands from other threads.
    Wake = 16,
    /// The poll on the loopback listener while a pair waits for its accept.
    Listener = 17,
    /// Cancellations and timer updates: nothing refers to them, their completions are ignored.
    Aux = 18,
}

impl Op {
    fn from_u8(v: u8) -> Option<Op> {
        Some(match v {
            0 => Op::Connect,
            1 => Op::ConnectTimeout,
            2 => Op::Send,
            3 => Op::SendTimeout,
            4 => Op::Recv,
            5 => Op::Deadline,
            6 => Op::RetryTimer,
            7 => Op::ResumeTimer,
            8 => Op::Shutdown,
            16 => Op::Wake,
            17 => Op::Listener,
            18 => Op::Aux,
            _ => return None,
        })
    }

    /// The bit of a per-connection operation in `Conn::inflight`.
    pub(crate) fn bit(self) -> u16 {
        1 << (self as u8 & 15)
    }
}

/// `op` in the top byte, 24 bits of the slot's generation, then the slot index. The generation
/// keeps a late cancellation from hitting a reused slot's operation.
pub(crate) fn user_data(op: Op, slot: u32, gen_: u32) -> u64 {
    (op as u64) << 56 | u64::from(gen_ & 0x00ff_ffff) << 32 | u64::from(slot)
}

pub(crate) fn decode(ud: u64) -> Option<(Op, u32, u32)> {
    let op = Op::from_u8((ud >> 56) as u8)?;
    Some((op, ud as u32, (ud >> 32) as u32 & 0x00ff_ffff))
}

/// Up to two entries that must be submitted together.
struct Chain {
    entries: [squeue::Entry; 2],
    len: usize,
}

#[derive(Default)]
pub(crate) struct Sq {
    backlog: VecDeque<Chain>,
    /// Times an entry had to wait in the backlog.
    pub(crate) full: u64,
}

impl Sq {
    /// Queues `chain` (one entry, or an entry linked to the next).
    ///
    /// # Safety
    /// Every pointer in the entries must stay valid until the operation's completion arrives
    /// (or, for operations whose completion is skipped, until it is submitted).
    pub(crate) unsafe fn push(&mut self, ring: &mut IoUring, chain: &[squeue::Entry]) {
        debug_assert!(!chain.is_empty() && chain.len() <= 2);
        if self.backlog.is_empty() {
            // SAFETY: forwarded from the caller.
            if unsafe { ring.submission().push_multiple(chain) }.is_ok() {
                return;
            }
            // Full: hand what is queued to the kernel (no waiting) and try once more.
            if submit_now(ring).is_ok() {
                // SAFETY: as above.
                if unsafe { ring.submission().push_multiple(chain) }.is_ok() {
                    return;
                }
            }
        }
        self.full += 1;
        let mut entries = [chain[0].clone(), chain[0].clone()];
        if let Some(second) = chain.get(1) {
            entries[1] = second.clone();
        }
        self.backlog.push_back(Chain {
            entries,
            len: chain.len().min(2),
        });
    }

    /// Moves as much of the backlog into the SQ as fits.
    pub(crate) fn flush(&mut self, ring: &mut IoUring) {
        while let Some(chain) = self.backlog.front() {
            // SAFETY: the entries were accepted by `push`, whose caller guaranteed their
            // pointers; they have not been submitted yet, so their operations are still pending.
            if unsafe { ring.submission().push_multiple(&chain.entries[..chain.len]) }.is_err() {
                return;
            }
            self.backlog.pop_front();
        }
    }

    pub(crate) fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }
}

/// Submits queued entries without waiting. `EBUSY`/`EAGAIN` (completions must be reaped first)
/// and `EINTR` leave them queued for the next call.
pub(crate) fn submit_now(ring: &IoUring) -> Result<usize, Errno> {
    match ring.submit() {
        Ok(n) => Ok(n),
        Err(e) => Err(Errno::from_io_error(&e).unwrap_or(Errno::IO)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips() {
        for op in [
            Op::Connect,
            Op::Recv,
            Op::ResumeTimer,
            Op::Shutdown,
            Op::Wake,
            Op::Aux,
        ] {
            let ud = user_data(op, 123_456, 0x0abc_def1);
            assert_eq!(decode(ud), Some((op, 123_456, 0x00bc_def1)));
        }
        assert_eq!(decode(0xff << 56), None);
    }

    #[test]
    fn per_connection_ops_have_distinct_bits() {
        let ops = [
            Op::Connect,
            Op::ConnectTimeout,
            Op::Send,
            Op::SendTimeout,
            Op::Recv,
            Op::Deadline,
            Op::RetryTimer,
            Op::ResumeTimer,
            Op::Shutdown,
        ];
        let all = ops.iter().fold(0u16, |acc, op| {
            assert_eq!(acc & op.bit(), 0);
            acc | op.bit()
        });
        assert_eq!(all.count_ones() as usize, ops.len());
    }
}
