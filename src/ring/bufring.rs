//! The provided-buffer ring every receive draws from.
//!
//! One group of `count` buffers of `size` bytes, shared by all connections: the kernel picks a
//! buffer when data arrives, the completion names it, the bytes are handed to the caller by
//! reference, and the buffer goes back to the ring as soon as the callback returns. Memory is
//! therefore `count * size` in total, not per connection.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use rustix::mm::{MapFlags, ProtFlags};

use crate::handoff::HandoffError;

/// The buffer group id used for every receive.
pub(crate) const GROUP: u16 = 0;

/// One ring entry, laid out as the kernel's `struct io_uring_buf`. In entry 0, `resv` is the
/// ring's tail, which the kernel reads concurrently: entries are therefore written field by
/// field through raw pointers, never through a reference covering `resv`.
#[repr(C)]
struct RawBuf {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () =
    assert!(std::mem::size_of::<RawBuf>() == std::mem::size_of::<io_uring::types::BufRingEntry>());

pub(crate) struct BufRing {
    /// `count` ring entries, page aligned (mmap), shared with the kernel.
    entries: NonNull<RawBuf>,
    entries_len: usize,
    /// `count * size` bytes of buffers (mmap).
    bufs: NonNull<u8>,
    bufs_len: usize,
    count: u16,
    size: u32,
    /// Our tail: entries below it are visible to the kernel once published.
    tail: u16,
    /// Set when the kernel may still use the memory at drop: it is then leaked, not unmapped.
    leak: bool,
}

fn map(len: usize) -> Result<NonNull<u8>, HandoffError> {
    // SAFETY: a fresh private anonymous mapping aliases nothing; the pointer is only used within
    // `len` bytes and unmapped once, in Drop.
    let ptr = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
    }
    .map_err(|e| HandoffError::os("allocating receive buffers", e))?;
    NonNull::new(ptr.cast()).ok_or(HandoffError::Os {
        what: "allocating receive buffers",
        errno: rustix::io::Errno::NOMEM,
    })
}

impl BufRing {
    /// Allocates the ring and its buffers and fills the ring. `count` must be a power of two
    /// between 1 and 32768.
    pub(crate) fn new(count: u16, size: u32) -> Result<BufRing, HandoffError> {
        if !count.is_power_of_two() || count > 32768 || size == 0 {
            return Err(HandoffError::Os {
                what: "configuring receive buffers (count must be a power of two up to 32768)",
                errno: rustix::io::Errno::INVAL,
            });
        }
        let entries_len = usize::from(count) * std::mem::size_of::<RawBuf>();
        let bufs_len = usize::from(count) * size as usize;
        let entries = map(entries_len)?.cast::<RawBuf>();
        let bufs = match map(bufs_len) {
            Ok(b) => b,
            Err(e) => {
                // SAFETY: `entries` was mapped above with this length and is not shared yet.
                let _ = unsafe { rustix::mm::munmap(entries.as_ptr().cast(), entries_len) };
                return Err(e);
            }
        };
        let mut ring = BufRing {
            entries,
            entries_len,
            bufs,
            bufs_len,
            count,
            size,
            tail: 0,
            leak: false,
        };
        for bid in 0..count {
            ring.recycle(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// Registers the ring with `submitter` as [`GROUP`].
    pub(crate) fn register(&self, submitter: &io_uring::Submitter<'_>) -> Result<(), HandoffError> {
        // SAFETY: the entries stay mapped until Drop, which happens after the io_uring that
        // uses them is gone or every receive has completed (Ring's Drop sees to that, and leaks
        // the mapping otherwise).
        unsafe {
            submitter.register_buf_ring_with_flags(
                self.entries.as_ptr() as u64,
                self.count,
                GROUP,
                0,
            )
        }
        .map_err(|_| HandoffError::RingUnsupported {
            feature: "provided buffer rings (IORING_REGISTER_PBUF_RING)",
        })
    }

    pub(crate) fn buf_size(&self) -> u32 {
        self.size
    }

    /// The first `len` bytes of buffer `bid`, or `None` if the kernel named a buffer that does
    /// not exist (which would be a kernel bug; the completion is then dropped).
    ///
    /// # Safety
    /// `bid` must come from a completion, so that the kernel has written these bytes and will not
    /// touch the buffer again until it is recycled; the slice must be dropped before
    /// [`BufRing::recycle`] is called for `bid`.
    pub(crate) unsafe fn get(&self, bid: u16, len: usize) -> Option<&[u8]> {
        if bid >= self.count || len > self.size as usize {
            return None;
        }
        let offset = usize::from(bid) * self.size as usize;
        // SAFETY: offset + len is within the mapping (checked above); the caller guarantees the
        // kernel is done with the buffer.
        Some(unsafe { std::slice::from_raw_parts(self.bufs.as_ptr().add(offset), len) })
    }

    /// Gives buffer `bid` back (visible to the kernel after [`BufRing::publish`]).
    pub(crate) fn recycle(&mut self, bid: u16) {
        if bid >= self.count {
            return;
        }
        let index = usize::from(self.tail & (self.count - 1));
        let addr = self.bufs.as_ptr() as u64 + u64::from(bid) * u64::from(self.size);
        // SAFETY: index < count, so the entry is inside the entries mapping. The kernel only
        // reads entries between its head and the published tail; this one is at the tail, so
        // it is ours to write until `publish`. `resv` (the shared tail in entry 0) is not
        // touched.
        unsafe {
            let entry = self.entries.as_ptr().add(index);
            std::ptr::addr_of_mut!((*entry).addr).write(addr);
            std::ptr::addr_of_mut!((*entry).len).write(self.size);
            std::ptr::addr_of_mut!((*entry).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes recycled buffers visible to the kernel.
    pub(crate) fn publish(&self) {
        // SAFETY: `entries` points at entry 0 of the ring, whose `resv` field is the tail the
        // kernel reads; a u16 there is aligned and valid for atomic access, the kernel only
        // reads it, and this code only accesses it through this atomic.
        let tail = unsafe {
            &*(std::ptr::addr_of_mut!((*self.entries.as_ptr()).resv) as *const AtomicU16)
        };
        tail.store(self.tail, Ordering::Release);
    }

    /// Keeps the memory mapped forever (the kernel may still write to it).
    pub(crate) fn leak(&mut self) {
        self.leak = true;
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.leak {
            return;
        }
        // SAFETY: both regions were mapped in `new` with these lengths and nothing refers to
        // them any more: the ring unregistered or closed, every receive completed.
        unsafe {
            let _ = rustix::mm::munmap(self.bufs.as_ptr().cast(), self.bufs_len);
            let _ = rustix::mm::munmap(self.entries.as_ptr().cast(), self.entries_len);
        }
    }
}
