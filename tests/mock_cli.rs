//! `streamcheck mock-api` as a process: what it prints, that it serves, and that SIGINT and
//! SIGTERM stop it cleanly.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_streamcheck"))
        .arg("mock-api")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn streamcheck")
}

/// The `key: value` lines printed at startup.
fn startup_lines(child: &mut Child, keys: usize) -> Vec<(String, String)> {
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    (0..keys)
        .map(|_| {
            let mut line = String::new();
            out.read_line(&mut line).expect("read stdout");
            let (k, v) = line
                .trim_end()
                .split_once(": ")
                .unwrap_or_else(|| panic!("{line:?}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "mock-api did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Everything the (exited) child wrote to stderr.
fn stderr_of(child: &mut Child) -> String {
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    stderr
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, sig).expect("kill");
}

/// One HTTP/1.1 request over a plain socket; returns the whole response.
fn http1(addr: &str, request: &str) -> String {
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    std::io::Write::write_all(&mut tcp, request.as_bytes()).unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn prints_its_url_serves_and_stops_cleanly_on_sigterm() {
    let socket = std::env::temp_dir().join(format!("streamcheck-cli-{}.sock", std::process::id()));
    let socket_arg = socket.to_str().unwrap();
    let mut child = spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--socket",
        socket_arg,
        "--chunk-count",
        "3",
        "--chunk-delay-ms",
        "1",
    ]);
    let lines = startup_lines(&mut child, 2);
    assert_eq!(lines[0].0, "url");
    assert!(
        lines[0].1.starts_with("http://127.0.0.1:") && lines[0].1.ends_with("/v1"),
        "{lines:?}"
    );
    assert_eq!(lines[1], ("socket".to_owned(), socket_arg.to_owned()));
    let addr = lines[0]
        .1
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned();

    let body = r#"{"messages":[{"role":"user","content":"hi [[nonce:cli1]]"}],"stream":true}"#;
    let response = http1(
        &addr,
        &format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.contains(r#"{"content":" [cli1]"}"#),
        "the nonce chunk: {response}"
    );
    assert!(response.contains("data: [DONE]"), "{response}");

    signal(&child, rustix::process::Signal::TERM);
    assert!(wait_exit(&mut child).success());
    let stderr = stderr_of(&mut child);
    assert!(
        stderr.contains("nonce=cli1 -> 200 completed, 6 writes"),
        "one line per request: {stderr}"
    );
    assert!(!socket.exists(), "socket file removed on exit");
}

#[test]
fn with_tls_it_prints_the_ca_file_and_removes_it_on_sigint() {
    let mut child = spawn(&["--listen", "127.0.0.1:0", "--tls", "--quiet"]);
    let lines = startup_lines(&mut child, 2);
    assert!(lines[0].1.starts_with("https://127.0.0.1:"), "{lines:?}");
    assert_eq!(lines[1].0, "cert");
    let cert = std::path::PathBuf::from(&lines[1].1);
    let pem = std::fs::read_to_string(&cert).expect("the printed CA file exists");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    signal(&child, rustix::process::Signal::INT);
    assert!(wait_exit(&mut child).success());
    let stderr = stderr_of(&mut child);
    assert_eq!(stderr, "", "--quiet prints nothing on stderr");
    assert!(!cert.exists(), "the temporary CA file is removed on exit");
}

#[test]
fn a_busy_address_is_a_usage_error_that_says_what_to_do() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let mut child = spawn(&["--listen", &addr]);
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(2));
    let stderr = stderr_of(&mut child);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")) && stderr.contains("port 0"),
        "{stderr}"
    );
}
