//! The Unix socket Apache connects to: bind (replacing only a stale socket file), chmod, listen,
//! accept on the tokio reactor, and remove the file at shutdown if it is still ours.
//!
//! tokio has no SEQPACKET types, so the listener and its connections are carried in tokio's
//! `UnixListener` / `UnixStream` for readiness only: `accept4` works the same for every Unix socket
//! type, and the one read on a handoff connection is rustix's `recvmsg`, never a stream read.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use tokio::net::{UnixListener, UnixStream};

use super::RefDaemonError;

/// Pending connections the kernel queues for us (Apache retries briefly on a full backlog).
const BACKLOG: i32 = 1024;

pub(crate) struct Listener {
    listener: UnixListener,
    path: PathBuf,
    /// (device, inode) of the socket file we created: removed at shutdown only if unchanged.
    identity: (u64, u64),
}

impl Listener {
    /// Binds `path` as `kind` with permissions `mode`. Must run inside the tokio runtime.
    pub(crate) fn bind(path: &Path, mode: u32, kind: SocketType) -> Result<Self, RefDaemonError> {
        let err = |what: &'static str| {
            move |source: io::Error| RefDaemonError::Socket {
                path: path.to_owned(),
                what,
                source,
            }
        };
        remove_stale(path)?;
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            kind,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| err("create")(e.into()))?;
        // The socket is made ready under a temporary name and renamed into place, so the path
        // appears only once it accepts connections with the right mode (a client polling for
        // the file never meets ECONNREFUSED or EACCES). A path too long for a temporary
        // sibling is bound directly.
        let staging = staging_path(path);
        let (bind_path, addr) = match SocketAddrUnix::new(&staging) {
            Ok(addr) => (staging.as_path(), addr),
            Err(_) => (
                path,
                SocketAddrUnix::new(path).map_err(|e| err("use as a socket address")(e.into()))?,
            ),
        };
        let _ = std::fs::remove_file(&staging);
        rustix::net::bind(&fd, &addr).map_err(|e| err("bind")(e.into()))?;
        let ready = rustix::fs::chmod(bind_path, rustix::fs::Mode::from_raw_mode(mode))
            .map_err(|e| err("chmod")(e.into()))
            .and_then(|()| {
                rustix::net::listen(&fd, BACKLOG).map_err(|e| err("listen on")(e.into()))
            })
            .and_then(|()| {
                if bind_path == path {
                    Ok(())
                } else {
                    std::fs::rename(bind_path, path).map_err(err("move into place"))
                }
            });
        if let Err(e) = ready {
            let _ = std::fs::remove_file(bind_path);
            return Err(e);
        }
        let meta = std::fs::symlink_metadata(path).map_err(err("stat"))?;
        let listener = UnixListener::from_std(fd.into()).map_err(err("register"))?;
        Ok(Listener {
            listener,
            path: path.to_owned(),
            identity: (meta.dev(), meta.ino()),
        })
    }

    /// The next handoff connection (non-blocking, close-on-exec).
    pub(crate) async fn accept(&self) -> io::Result<UnixStream> {
        self.listener.accept().await.map(|(conn, _addr)| conn)
    }

    /// Stops accepting and removes the socket file, unless another process replaced it.
    pub(crate) fn close(self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        drop(self.listener);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `DIR/.NAME.PID.tmp` beside `path`.
fn staging_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Removes `path` if it is a socket nobody listens on; refuses to touch anything else.
fn remove_stale(path: &Path) -> Result<(), RefDaemonError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(RefDaemonError::Socket {
                path: path.to_owned(),
                what: "stat",
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(RefDaemonError::NotASocket(path.to_owned()));
    }
    let probe = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| RefDaemonError::Socket {
        path: path.to_owned(),
        what: "probe",
        source: e.into(),
    })?;
    let addr = SocketAddrUnix::new(path).map_err(|e| RefDaemonError::Socket {
        path: path.to_owned(),
        what: "use as a socket address",
        source: e.into(),
    })?;
    match rustix::net::connect(&probe, &addr) {
        // Nobody behind the file: a previous daemon's leftover.
        Err(rustix::io::Errno::CONNREFUSED) => std::fs::remove_file(path)
            .or_else(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|source| RefDaemonError::Socket {
                path: path.to_owned(),
                what: "remove the stale",
                source,
            }),
        // Accepted, or a live listener of the other socket type (EPROTOTYPE), or a full backlog.
        Ok(()) | Err(rustix::io::Errno::PROTOTYPE | rustix::io::Errno::AGAIN) => {
            Err(RefDaemonError::InUse(path.to_owned()))
        }
        Err(e) => Err(RefDaemonError::Socket {
            path: path.to_owned(),
            what: "probe",
            source: e.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "streamcheck-listener-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("d.sock")
    }

    #[tokio::test]
    async fn replaces_a_stale_socket_and_refuses_a_live_one_or_a_file() {
        let path = tmp("stale");
        let first = Listener::bind(&path, 0o600, SocketType::SEQPACKET).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["d.sock"], "the staging name is gone");
        assert!(matches!(
            Listener::bind(&path, 0o666, SocketType::SEQPACKET),
            Err(RefDaemonError::InUse(_))
        ));
        assert!(matches!(
            Listener::bind(&path, 0o666, SocketType::STREAM),
            Err(RefDaemonError::InUse(_))
        ));
        // Dropping without close() leaves the file behind, as a crashed daemon would.
        drop(first);
        let second = Listener::bind(&path, 0o666, SocketType::SEQPACKET).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o666);
        second.close();
        assert!(!path.exists());
        std::fs::write(&path, b"not a socket").unwrap();
        assert!(matches!(
            Listener::bind(&path, 0o666, SocketType::SEQPACKET),
            Err(RefDaemonError::NotASocket(_))
        ));
        assert!(path.exists());
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[tokio::test]
    async fn a_path_too_long_for_a_staging_name_is_bound_directly() {
        let dir = tmp("long").parent().unwrap().to_owned();
        // sun_path holds 107 bytes: leave room for the path but not for `.NAME.PID.tmp`.
        let name = "s".repeat(104usize.saturating_sub(dir.as_os_str().len()).max(1));
        let path = dir.join(name);
        let listener = Listener::bind(&path, 0o666, SocketType::SEQPACKET).unwrap();
        assert!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_socket()
        );
        listener.close();
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
