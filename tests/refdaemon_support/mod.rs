//! Test support for the reference daemon's end-to-end tests: the daemon as a child process, a
//! scripted HTTP/1.1 upstream that writes exact bytes (so splits, stalls, resets and error
//! statuses are under the test's control), and an Apache-like handoff: a loopback TCP pair whose
//! server end goes to the daemon in one SEQPACKET `sendmsg` with `SCM_RIGHTS`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix,
    SocketFlags, SocketType,
};

/// Generous bound that only catches hangs.
pub const HANG: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// The daemon

pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
    dir: PathBuf,
}

fn scratch_dir(tag: &str) -> PathBuf {
    static NEXT: Mutex<u32> = Mutex::new(0);
    let n = {
        let mut next = NEXT.lock().unwrap();
        *next += 1;
        *next
    };
    let dir = std::env::temp_dir().join(format!(
        "streamcheck-refdaemon-{}-{tag}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Daemon {
    /// Starts `streamcheck ref-daemon` against `base` and waits for its socket.
    pub fn start(base: &str, fault: Option<&str>, args: &[&str]) -> Daemon {
        Daemon::start_env(base, fault, args, &[])
    }

    /// As [`Daemon::start`], with extra environment variables.
    pub fn start_env(
        base: &str,
        fault: Option<&str>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let dir = scratch_dir(fault.unwrap_or("ok"));
        let socket = dir.join("daemon.sock");
        let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamcheck"));
        cmd.arg("ref-daemon")
            .arg("--socket")
            .arg(&socket)
            .args(args);
        if !args.contains(&"--upstream-timeout") {
            // Short, so stall tests end quickly; still far above any scripted gap.
            cmd.args(["--upstream-timeout", "2"]);
        }
        if let Some(fault) = fault {
            cmd.args(["--fault", fault]);
        }
        cmd.env("OPENAI_API_BASE", base)
            .env("OPENAI_API_KEY", "sk-test")
            .env_remove("OPENAI_HTTP2_ENABLED")
            .env_remove("OPENAI_INSECURE_SSL")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd.spawn().expect("spawn streamcheck ref-daemon");
        let mut daemon = Daemon {
            child: Some(child),
            socket,
            dir,
        };
        let start = Instant::now();
        while !daemon.socket.exists() {
            if let Some(status) = daemon.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "ref-daemon exited with {status} before listening:\n{}",
                    daemon.log()
                );
            }
            assert!(
                start.elapsed() < HANG,
                "ref-daemon did not create its socket:\n{}",
                daemon.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
        daemon
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(self.child.as_ref().unwrap());
        rustix::process::kill_process(pid, sig).unwrap();
    }

    /// Waits for the daemon to exit by itself (after a signal).
    pub fn wait(&mut self) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(start.elapsed() < HANG, "ref-daemon did not exit");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM and wait.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(rustix::process::Signal::TERM);
        self.wait()
    }

    /// Number of open fds of the daemon process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// The handoff

/// Connects to the daemon's socket as Apache does (SEQPACKET).
pub fn connect(socket: &Path) -> io::Result<std::os::fd::OwnedFd> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::connect(&fd, &SocketAddrUnix::new(socket)?)?;
    Ok(fd)
}

/// Hands a fresh loopback connection to the daemon with `data`; returns the browser's end.
pub fn handoff(socket: &Path, data: &[u8]) -> TcpStream {
    handoff_with(socket, data, false)
}

/// Starts a stream whose browser has stopped reading, and returns once the daemon's writes to
/// it are blocked (the browser's receive queue holds what the window allows).
pub fn stalled_reader(socket: &Path, data: &[u8]) -> TcpStream {
    let browser = handoff_with(socket, data, true);
    let start = Instant::now();
    while rustix::io::ioctl_fionread(&browser).unwrap() < 2048 {
        assert!(
            start.elapsed() < HANG,
            "the daemon never wrote to the stalled reader"
        );
        thread::sleep(Duration::from_millis(5));
    }
    browser
}

/// As [`handoff`]; with `small_buffers`, the browser's receive buffer and the daemon's send
/// buffer are a few KiB, so a browser that stops reading blocks the daemon's writes at once.
pub fn handoff_with(socket: &Path, data: &[u8], small_buffers: bool) -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let browser = socket2_connect(
        listener.local_addr().unwrap(),
        small_buffers.then_some(4096),
    );
    let (server_end, _) = listener.accept().unwrap();
    server_end.set_nonblocking(true).unwrap();
    server_end.set_nodelay(true).unwrap();
    if small_buffers {
        rustix::net::sockopt::set_socket_send_buffer_size(&server_end, 4096).unwrap();
    }
    let unix = connect(socket).expect("connect to the daemon");
    rustix::net::sockopt::set_socket_send_buffer_size(&unix, 1 << 20).unwrap();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [server_end.as_fd()];
    assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
    rustix::net::sendmsg(
        &unix,
        &[IoSlice::new(data)],
        &mut control,
        SendFlags::empty(),
    )
    .expect("sendmsg");
    browser
}

fn socket2_connect(addr: std::net::SocketAddr, rcvbuf: Option<usize>) -> TcpStream {
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    if let Some(size) = rcvbuf {
        // Before connect, so the advertised window is small from the start.
        rustix::net::sockopt::set_socket_recv_buffer_size(&fd, size).unwrap();
    }
    rustix::net::connect(&fd, &addr).unwrap();
    TcpStream::from(fd)
}

/// Reads until EOF or `deadline`; `true` when EOF was seen.
pub fn read_to_end(stream: &mut TcpStream, deadline: Duration) -> (Vec<u8>, bool) {
    let start = Instant::now();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let left = deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            return (bytes, false);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (bytes, true),
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (bytes, true),
            Err(e) => panic!("read from the daemon: {e}"),
        }
    }
}

/// What the browser received.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
    pub eof: bool,
}

impl Response {
    pub fn parse(bytes: Vec<u8>, eof: bool) -> Response {
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Response {
                status: 0,
                head: String::from_utf8_lossy(&bytes).into_owned(),
                body: Vec::new(),
                eof,
            };
        };
        let head = String::from_utf8(bytes[..end + 4].to_vec()).expect("head is UTF-8");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Response {
            status,
            head,
            body: bytes[end + 4..].to_vec(),
            eof,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The `data:` payloads of the body's events.
    pub fn events(&self) -> Vec<String> {
        let body = String::from_utf8(self.body.clone()).expect("body is UTF-8");
        body.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                    .to_owned()
            })
            .collect()
    }

    pub fn content(&self) -> String {
        self.events()
            .iter()
            .filter(|e| e.as_str() != "[DONE]")
            .filter_map(|e| {
                serde_json::from_str::<serde_json::Value>(e)
                    .ok()?
                    .get("content")?
                    .as_str()
                    .map(String::from)
            })
            .collect()
    }

    pub fn done(&self) -> bool {
        self.events().last().is_some_and(|e| e == "[DONE]")
    }

    pub fn errors(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|e| {
                serde_json::from_str::<serde_json::Value>(e)
                    .ok()?
                    .get("error")?
                    .as_str()
                    .map(String::from)
            })
            .collect()
    }

    /// The JSON body of an error response.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// One handoff, read to the end.
pub fn exchange(socket: &Path, data: &[u8]) -> Response {
    let mut browser = handoff(socket, data);
    let (bytes, eof) = read_to_end(&mut browser, HANG);
    Response::parse(bytes, eof)
}

/// Handoff data naming `script` and a nonce in the prompt.
pub fn data_for(script: &str, extra: serde_json::Value) -> Vec<u8> {
    let mut data =
        serde_json::json!({ "prompt": format!("say hi [[script:{script}]]"), "user_id": 1 });
    if let (Some(map), serde_json::Value::Object(extra)) = (data.as_object_mut(), extra) {
        map.extend(extra);
    }
    data.to_string().into_bytes()
}

// ---------------------------------------------------------------------------------------------
// The scripted upstream

/// One OpenAI chunk event carrying `content`.
pub fn chunk(content: &str) -> Vec<u8> {
    let content = serde_json::to_string(content).unwrap();
    format!(
        "data: {{\"id\":\"chatcmpl-t\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\
         \"choices\":[{{\"index\":0,\"delta\":{{\"content\":{content}}},\"finish_reason\":null}}]}}\n\n"
    )
    .into_bytes()
}

/// The final chunk with `reason`.
pub fn finish(reason: &str) -> Vec<u8> {
    format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"{reason}\"}}]}}\n\n"
    )
    .into_bytes()
}

pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// How a scripted response ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum End {
    /// The terminating chunk: a clean end of body.
    Clean,
    /// An abrupt reset (SO_LINGER 0) without the terminating chunk.
    Reset,
    /// Nothing more, connection held open until the daemon gives up.
    Stall,
}

#[derive(Clone, Debug)]
pub struct Script {
    pub status: u16,
    pub content_type: &'static str,
    /// Extra raw header lines, each ending in CRLF.
    pub headers: String,
    /// Each entry is written as its own HTTP chunk, `gap` apart.
    pub writes: Vec<Vec<u8>>,
    pub gap: Duration,
    pub end: End,
}

impl Script {
    pub fn sse(writes: Vec<Vec<u8>>) -> Script {
        Script {
            status: 200,
            content_type: "text/event-stream",
            headers: String::new(),
            writes,
            gap: Duration::from_millis(5),
            end: End::Clean,
        }
    }

    /// A complete answer: one chunk per piece, finish_reason stop, [DONE].
    pub fn answer(pieces: &[&str]) -> Script {
        let mut writes: Vec<Vec<u8>> = pieces.iter().map(|p| chunk(p)).collect();
        writes.push(finish("stop"));
        writes.push(DONE.to_vec());
        Script::sse(writes)
    }

    pub fn error(status: u16, body: &str) -> Script {
        Script {
            status,
            content_type: "application/json",
            headers: String::new(),
            writes: vec![body.as_bytes().to_vec()],
            gap: Duration::ZERO,
            end: End::Clean,
        }
    }
}

/// How the daemon's request to the upstream ended, seen from the upstream.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    InProgress,
    Completed,
    /// The daemon went away; `at` writes had succeeded.
    Cancelled {
        at: usize,
    },
    Reset,
}

#[derive(Clone, Debug)]
pub struct Record {
    pub headers: HashMap<String, String>,
    pub body: serde_json::Value,
    pub script: String,
    pub outcome: Outcome,
}

#[derive(Default)]
struct State {
    scripts: HashMap<String, Script>,
    records: Vec<Record>,
}

pub struct Upstream {
    state: Arc<(Mutex<State>, Condvar)>,
    pub base: String,
}

impl Upstream {
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let shared = state.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let shared = shared.clone();
                thread::spawn(move || serve(conn, &shared));
            }
        });
        Upstream { state, base }
    }

    pub fn script(&self, name: &str, script: Script) {
        self.state
            .0
            .lock()
            .unwrap()
            .scripts
            .insert(name.to_owned(), script);
    }

    /// The requests made for `script` so far.
    pub fn records(&self, script: &str) -> Vec<Record> {
        self.state
            .0
            .lock()
            .unwrap()
            .records
            .iter()
            .filter(|r| r.script == script)
            .cloned()
            .collect()
    }

    /// Waits until the request for `script` has ended, and returns it.
    pub fn wait_end(&self, script: &str) -> Record {
        let (lock, cvar) = &*self.state;
        let mut state = lock.lock().unwrap();
        let start = Instant::now();
        loop {
            if let Some(r) = state
                .records
                .iter()
                .find(|r| r.script == script && r.outcome != Outcome::InProgress)
            {
                return r.clone();
            }
            let left = HANG
                .checked_sub(start.elapsed())
                .unwrap_or_else(|| panic!("upstream request {script} never ended"));
            state = cvar.wait_timeout(state, left).unwrap().0;
        }
    }
}

fn serve(mut conn: TcpStream, state: &(Mutex<State>, Condvar)) {
    conn.set_nodelay(true).unwrap();
    let Some((headers, body)) = read_request(&mut conn) else {
        return;
    };
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let prompt = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let name = prompt
        .split("[[script:")
        .nth(1)
        .and_then(|rest| rest.split("]]").next())
        .unwrap_or("")
        .to_owned();
    let (index, script) = {
        let mut guard = state.0.lock().unwrap();
        let script =
            guard.scripts.get(&name).cloned().unwrap_or_else(|| {
                Script::error(404, "{\"error\":{\"message\":\"no such script\"}}")
            });
        guard.records.push(Record {
            headers,
            body,
            script: name,
            outcome: Outcome::InProgress,
        });
        (guard.records.len() - 1, script)
    };
    let outcome = play(&mut conn, &script);
    state.0.lock().unwrap().records[index].outcome = outcome;
    state.1.notify_all();
}

fn read_request(conn: &mut TcpStream) -> Option<(HashMap<String, String>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = conn.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).ok().filter(|&n| n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    Some((headers, body))
}

fn play(conn: &mut TcpStream, script: &Script) -> Outcome {
    let reason = match script.status {
        200 => "OK",
        429 => "Too Many Requests",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\n{}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        script.status, script.content_type, script.headers
    );
    if conn.write_all(head.as_bytes()).is_err() {
        return Outcome::Cancelled { at: 0 };
    }
    for (i, bytes) in script.writes.iter().enumerate() {
        if i > 0 && !script.gap.is_zero() {
            thread::sleep(script.gap);
        }
        let mut framed = format!("{:x}\r\n", bytes.len()).into_bytes();
        framed.extend_from_slice(bytes);
        framed.extend_from_slice(b"\r\n");
        if conn.write_all(&framed).and_then(|()| conn.flush()).is_err() {
            return Outcome::Cancelled { at: i };
        }
    }
    match script.end {
        End::Clean => {
            let _ = conn.write_all(b"0\r\n\r\n");
            // Wait for the daemon to close, so "completed" means the daemon read it all.
            let _ = conn.set_read_timeout(Some(HANG));
            let _ = conn.read(&mut [0u8; 1]);
            Outcome::Completed
        }
        End::Reset => {
            let _ = rustix::net::sockopt::set_socket_linger(&*conn, Some(Duration::ZERO));
            Outcome::Reset
        }
        End::Stall => {
            // Until the daemon gives up on us (it closes), bounded by HANG.
            let _ = conn.set_read_timeout(Some(HANG));
            let _ = conn.read(&mut [0u8; 1]);
            Outcome::Cancelled {
                at: script.writes.len(),
            }
        }
    }
}
