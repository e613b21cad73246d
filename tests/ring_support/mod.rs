//! A small daemon for the ring tests: listens on a Unix socket (SEQPACKET or STREAM), receives
//! each handoff (data + fd) with recvmsg, and gives it to a handler that plays a script on the
//! fd. Plus helpers for raising the fd limit and counting open fds.

#![allow(dead_code)]

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use rustix::net::{
    self, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketAddrUnix,
    SocketFlags, SocketType,
};

/// A generous bound that only catches hangs.
pub const HANG_GUARD: Duration = Duration::from_secs(20);

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sc-ring-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bound, listening Unix socket.
pub fn listen(path: &Path, ty: SocketType, backlog: i32) -> OwnedFd {
    let fd = net::socket_with(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC, None).unwrap();
    net::bind(&fd, &SocketAddrUnix::new(path).unwrap()).unwrap();
    net::listen(&fd, backlog).unwrap();
    fd
}

/// What the daemon received for one handoff.
#[derive(Debug)]
pub struct Handoff {
    /// The message bytes.
    pub data: Vec<u8>,
    /// Every fd that came with it (a correct client sends exactly one).
    pub fds: Vec<OwnedFd>,
    /// MSG_TRUNC / MSG_CTRUNC were set.
    pub truncated: bool,
    pub ctrunc: bool,
}

impl Handoff {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fds[0].as_fd()
    }
}

/// Receives one handoff from an accepted daemon connection (blocking).
pub fn recv_handoff(conn: &OwnedFd) -> Handoff {
    let mut data = vec![0u8; 512 * 1024];
    let mut space = [MaybeUninit::<u8>::uninit(); 256];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let msg = net::recvmsg(
        conn,
        &mut [std::io::IoSliceMut::new(&mut data)],
        &mut anc,
        RecvFlags::CMSG_CLOEXEC,
    )
    .unwrap();
    data.truncate(msg.bytes);
    let mut fds = Vec::new();
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    Handoff {
        data,
        fds,
        truncated: msg.flags.contains(net::ReturnFlags::TRUNC),
        ctrunc: msg.flags.contains(net::ReturnFlags::CTRUNC),
    }
}

/// A daemon thread: accepts, receives each handoff, calls the handler, records the handoff's
/// data. The handler gets ownership of everything received.
pub struct Daemon {
    pub path: PathBuf,
    pub dir: TempDir,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub received: mpsc::Receiver<Vec<u8>>,
}

impl Daemon {
    pub fn start<H>(ty: SocketType, handler: H) -> Daemon
    where
        H: Fn(Handoff) + Send + 'static,
    {
        let dir = TempDir::new("d");
        let path = dir.path("daemon.sock");
        let listener = listen(&path, ty, 4096);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let thread_stop = stop.clone();
        let thread = std::thread::spawn(move || {
            while !thread_stop.load(Ordering::Relaxed) {
                let mut fds = [PollFd::new(&listener, PollFlags::IN)];
                let ts = rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 20_000_000,
                };
                match poll(&mut fds, Some(&ts)) {
                    Ok(0) | Err(Errno::INTR) => continue,
                    Ok(_) => {}
                    Err(e) => panic!("daemon poll: {e}"),
                }
                let conn = match net::accept_with(&listener, SocketFlags::CLOEXEC) {
                    Ok(c) => c,
                    Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => continue,
                    Err(e) => panic!("daemon accept: {e}"),
                };
                let handoff = recv_handoff(&conn);
                drop(conn);
                let _ = tx.send(handoff.data.clone());
                handler(handoff);
            }
        });
        Daemon {
            path,
            dir,
            stop,
            thread: Some(thread),
            received: rx,
        }
    }

    /// A daemon that plays `script` on every handed fd, each on its own thread.
    pub fn scripted(ty: SocketType, script: fn(&Handoff) -> Vec<Step>) -> Daemon {
        Daemon::start(ty, move |h| {
            std::thread::spawn(move || {
                let steps = script(&h);
                play(h.fd(), &steps);
                drop(h);
            });
        })
    }

    pub fn path(&self) -> Arc<Path> {
        Arc::from(self.path.as_path())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One step of a daemon's script on the handed fd.
#[derive(Debug, Clone)]
pub enum Step {
    Write(Vec<u8>),
    Sleep(Duration),
    /// Keep the fd open this long before the script ends (and the fd is closed).
    Hold(Duration),
}

/// Writes all of `bytes` to a non-blocking fd, waiting for POLLOUT when it is full.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::AGAIN) => {
                let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
                poll(&mut fds, None)?;
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn play(fd: BorrowedFd<'_>, steps: &[Step]) {
    for step in steps {
        match step {
            Step::Write(b) => {
                if write_all(fd, b).is_err() {
                    return;
                }
            }
            Step::Sleep(d) | Step::Hold(d) => std::thread::sleep(*d),
        }
    }
}

/// Blocks until the fd is readable, then reads once: Ok(0) at EOF.
pub fn read_blocking(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        poll(&mut fds, None)?;
        match rustix::io::read(fd, &mut *buf) {
            Err(Errno::AGAIN | Errno::INTR) => continue,
            other => return other,
        }
    }
}

/// Raises the soft open-file limit to the hard limit.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = lim.maximum;
    let _ = setrlimit(Resource::Nofile, lim);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Open fds of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}
