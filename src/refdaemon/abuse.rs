//! The resource-abuse fault modes' answers: what a daemon that is wrong without bound writes.
//! Each writes until it is done or the client goes (a closed or stalled client ends the write
//! with [`ClientGone`]), so streamcheck's own bounds are what these modes test.

use super::client::{ClientConn, ClientGone};
use super::fault::Fault;

/// Bytes handed to one write.
const BATCH: usize = 64 << 10;
/// The giant line's length.
const GIANT_LINE: u64 = 1 << 30;
/// The flood's event count.
const FLOOD_EVENTS: usize = 2_000_000;
/// The huge head's size.
const HUGE_HEAD: usize = 10 << 20;

const HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
Connection: close\r\n\r\n";

/// Writes the abusive answer of `fault` to `conn`, if `fault` is an output-abuse mode; returns
/// whether it was one.
pub(crate) async fn answer(fault: Option<Fault>, conn: &ClientConn) -> bool {
    let written = match fault {
        Some(Fault::EndlessStream) => endless(conn).await,
        Some(Fault::GiantLine) => giant_line(conn).await,
        Some(Fault::EventFlood) => flood(conn).await,
        Some(Fault::HugeHead) => huge_head(conn).await,
        _ => return false,
    };
    // The client leaving is how every one of these ends early; nothing to report.
    let _: Result<(), ClientGone> = written;
    true
}

/// Valid content events, forever.
async fn endless(conn: &ClientConn) -> Result<(), ClientGone> {
    conn.write_all(HEAD).await?;
    let batch = repeated(b"data: {\"content\":\"endless \"}\n\n");
    loop {
        conn.write_all(&batch).await?;
    }
}

/// `data: {"content":"aaa…` for 1 GiB, then the line's end and `[DONE]`.
async fn giant_line(conn: &ClientConn) -> Result<(), ClientGone> {
    conn.write_all(HEAD).await?;
    conn.write_all(b"data: {\"content\":\"").await?;
    let batch = vec![b'a'; BATCH];
    let mut left = GIANT_LINE;
    while left > 0 {
        let n = left.min(BATCH as u64) as usize;
        conn.write_all(&batch[..n]).await?;
        left -= n as u64;
    }
    conn.write_all(b"\"}\n\ndata: [DONE]\n\n").await
}

/// Two million one-character content events, then `[DONE]`.
async fn flood(conn: &ClientConn) -> Result<(), ClientGone> {
    conn.write_all(HEAD).await?;
    let event: &[u8] = b"data: {\"content\":\"x\"}\n\n";
    let batch = repeated(event);
    let per_batch = batch.len() / event.len();
    for _ in 0..FLOOD_EVENTS / per_batch {
        conn.write_all(&batch).await?;
    }
    let rest = FLOOD_EVENTS % per_batch;
    conn.write_all(&batch[..rest * event.len()]).await?;
    conn.write_all(b"data: [DONE]\n\n").await
}

/// A status line and 10 MiB of header fields, then an empty event stream.
async fn huge_head(conn: &ClientConn) -> Result<(), ClientGone> {
    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        .await?;
    let field = format!("X-Filler: {}\r\n", "f".repeat(1000));
    let batch = repeated(field.as_bytes());
    let mut written = 0;
    while written < HUGE_HEAD {
        conn.write_all(&batch).await?;
        written += batch.len();
    }
    conn.write_all(b"\r\ndata: [DONE]\n\n").await
}

/// `unit` repeated to about [`BATCH`] bytes (whole units).
fn repeated(unit: &[u8]) -> Vec<u8> {
    unit.repeat((BATCH / unit.len()).max(1))
}
