//! The verdict on each connection, and the run's tally with up to five examples per kind.
//!
//! Each connection gets exactly one [`Outcome`], the first that applies in this order:
//! handoff failed, handoff never taken (checked on the first streams only), cross-talk,
//! interrupted (a signal), timeout, zero-byte close, read error,
//! bad response, error event, aborted as planned (or wrong content before the abort), wrong
//! content, truncated, completed. A timeout is never counted as completed, whatever arrived.

use serde::Serialize;

use super::expect::ExpectedContent;
use super::stream::Progress;

/// Examples kept per outcome.
pub const EXAMPLES: usize = 5;

/// How one connection ended, judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The whole expected content, then `[DONE]`, then the daemon closed.
    Completed,
    /// The client closed it as planned (`--abort-rate`) and everything before was right.
    Aborted,
    /// Closed by the client because the run was interrupted; not judged.
    Interrupted,
    /// Not handed off because the client reached its own limit (fds, ports); not judged.
    ClientLimit,
    /// Broken by the daemon's death: it was running, or was handed off, when the daemon died.
    DaemonDied,
    /// The handoff did not complete (connect or send failed, the accept backlog was full).
    HandoffFailed,
    /// The handoff was sent but the daemon never accepted the connection or never read it.
    NotTaken,
    /// The stream carried content meant for another connection.
    Crosstalk,
    /// The deadline passed before the daemon closed the connection.
    Timeout,
    /// The daemon closed the connection without sending a byte.
    ZeroByteClose,
    /// Reading failed (e.g. the daemon reset the connection).
    ReadError,
    /// Not a `200 text/event-stream` response, or not valid HTTP/1 or SSE.
    BadResponse,
    /// The daemon sent an error event.
    ErrorEvent,
    /// Content that differs from what the mock sent, `[DONE]` before all of it, or events after
    /// `[DONE]`.
    WrongContent,
    /// The daemon closed the connection without `[DONE]`.
    Truncated,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 15] = [
        Outcome::Completed,
        Outcome::Aborted,
        Outcome::Interrupted,
        Outcome::ClientLimit,
        Outcome::DaemonDied,
        Outcome::HandoffFailed,
        Outcome::NotTaken,
        Outcome::Crosstalk,
        Outcome::Timeout,
        Outcome::ZeroByteClose,
        Outcome::ReadError,
        Outcome::BadResponse,
        Outcome::ErrorEvent,
        Outcome::WrongContent,
        Outcome::Truncated,
    ];

    /// Whether this outcome keeps integrity.
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            Outcome::Completed | Outcome::Aborted | Outcome::Interrupted | Outcome::ClientLimit
        )
    }

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Aborted => "aborted by the client as planned",
            Outcome::Interrupted => "interrupted (by a signal)",
            Outcome::ClientLimit => "not handed off: a client limit was reached",
            Outcome::DaemonDied => "ended by the daemon's death",
            Outcome::HandoffFailed => "handoff failed",
            Outcome::NotTaken => "handoff never taken by the daemon",
            Outcome::Crosstalk => "cross-talk",
            Outcome::Timeout => "timed out",
            Outcome::ZeroByteClose => "closed with zero bytes",
            Outcome::ReadError => "read error",
            Outcome::BadResponse => "bad response",
            Outcome::ErrorEvent => "error event",
            Outcome::WrongContent => "wrong content",
            Outcome::Truncated => "truncated (no [DONE])",
        }
    }

    fn index(self) -> usize {
        Outcome::ALL.iter().position(|&o| o == self).unwrap_or(0)
    }
}

/// How the ring ended a stream, as far as the verdict is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The daemon closed the connection.
    PeerClosed,
    /// The client closed it as planned.
    ClientClosed,
    /// The client closed it because the run was interrupted.
    Interrupted,
    /// The deadline passed.
    Timeout,
    /// The handoff failed, with the reason.
    HandoffFailed(String),
    /// The handoff was sent and the daemon never took it.
    NotTaken(crate::handoff::HandoffFate),
    /// The client reached its own limit during the handoff, with the reason.
    ClientLimit(String),
    /// Reading failed, with the reason.
    ReadError(String),
}

/// One example of an outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Example {
    /// The connection number (from 0, in start order).
    pub connection: u64,
    /// Its nonce.
    pub nonce: String,
    /// Bytes it received.
    pub bytes: u64,
    /// What happened, in words.
    pub detail: String,
}

/// Judges one stream. `expected` is `None` when content is not checked (`--no-upstream`).
pub fn judge(
    p: &Progress,
    ending: &Ending,
    expected: Option<&ExpectedContent>,
    nonce: &[u8],
    nonce_of: impl Fn(u64) -> String,
) -> (Outcome, String) {
    let show = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    let content = |p: &Progress| match expected {
        Some(e) => format!("{} of {} content bytes", p.content_len, e.len()),
        None => format!("{} content bytes", p.content_len),
    };
    match ending {
        Ending::HandoffFailed(why) => return (Outcome::HandoffFailed, why.clone()),
        Ending::ClientLimit(why) => return (Outcome::ClientLimit, why.clone()),
        _ => {}
    }
    if let Some(other) = p.crosstalk {
        return (
            Outcome::Crosstalk,
            format!(
                "received content of connection {other} (nonce {})",
                nonce_of(other)
            ),
        );
    }
    match ending {
        Ending::NotTaken(fate) => return (Outcome::NotTaken, fate.describe().to_owned()),
        Ending::Interrupted => {
            return (
                Outcome::Interrupted,
                "closed when a signal stopped the run".to_owned(),
            );
        }
        Ending::Timeout => {
            let done = if p.done > 0 { "[DONE] came but " } else { "" };
            return (
                Outcome::Timeout,
                format!(
                    "{done}the daemon had not closed the connection at the deadline: {} events, {}",
                    p.events,
                    content(p)
                ),
            );
        }
        Ending::PeerClosed if p.bytes == 0 => {
            return (
                Outcome::ZeroByteClose,
                "the daemon closed the connection without writing anything".to_owned(),
            );
        }
        Ending::ReadError(why) => return (Outcome::ReadError, why.clone()),
        _ => {}
    }
    if let Some(why) = &p.malformed {
        return (Outcome::BadResponse, why.clone());
    }
    match p.status {
        None => {
            let what = if matches!(ending, Ending::ClientClosed) {
                "the client closed before the response head was complete"
            } else {
                "the connection closed before the response head was complete"
            };
            return (Outcome::BadResponse, what.to_owned());
        }
        Some(200) if p.event_stream => {}
        Some(200) => {
            return (
                Outcome::BadResponse,
                "status 200 without Content-Type: text/event-stream".to_owned(),
            );
        }
        Some(status) => return (Outcome::BadResponse, format!("status {status}")),
    }
    if let Some(message) = &p.error_event {
        return (Outcome::ErrorEvent, format!("error event: {message}"));
    }
    let wrong = |p: &Progress| -> Option<String> {
        if let (Some(fault), Some(e)) = (&p.fault, expected) {
            let want = e.excerpt(nonce, fault.mismatch.offset, fault.got.len().max(16));
            return Some(format!(
                "content byte {}: expected {}, got {}",
                fault.mismatch.offset,
                show(&want),
                show(&fault.got)
            ));
        }
        if p.other > 0 {
            return Some(format!("{} events not understood", p.other));
        }
        None
    };
    if matches!(ending, Ending::ClientClosed) {
        return match wrong(p) {
            Some(why) => (Outcome::WrongContent, why),
            None => (
                Outcome::Aborted,
                format!("closed by the client after {} events", p.events),
            ),
        };
    }
    if let Some(why) = wrong(p) {
        return (Outcome::WrongContent, why);
    }
    if p.done > 1 || p.after_done > 0 {
        return (
            Outcome::WrongContent,
            format!(
                "{} [DONE] events, {} events after the first",
                p.done, p.after_done
            ),
        );
    }
    if p.done == 0 {
        return (
            Outcome::Truncated,
            format!(
                "closed without [DONE] after {} events, {}",
                p.events,
                content(p)
            ),
        );
    }
    if let Some(e) = expected
        && p.content_at_done < e.len()
    {
        return (
            Outcome::WrongContent,
            format!(
                "[DONE] after {} of {} content bytes",
                p.content_at_done,
                e.len()
            ),
        );
    }
    (Outcome::Completed, String::new())
}

/// The count of one outcome and its first examples.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    /// Connections with this outcome.
    pub count: u64,
    /// The first [`EXAMPLES`].
    pub examples: Vec<Example>,
}

/// Every connection's outcome, counted.
#[derive(Debug, Clone, Default)]
pub struct Integrity {
    tallies: [Tally; Outcome::ALL.len()],
}

impl Integrity {
    /// Counts one connection; `example` is only called for the first few of each outcome.
    pub fn add(&mut self, outcome: Outcome, example: impl FnOnce() -> Example) {
        let t = &mut self.tallies[outcome.index()];
        t.count += 1;
        if t.examples.len() < EXAMPLES && outcome != Outcome::Completed {
            t.examples.push(example());
        }
    }

    /// Whether a dying daemon can cause `outcome`: the stream is cut, empty, or never
    /// handed off.
    pub fn death_can_cause(outcome: Outcome) -> bool {
        matches!(
            outcome,
            Outcome::ZeroByteClose
                | Outcome::Truncated
                | Outcome::ReadError
                | Outcome::HandoffFailed
                | Outcome::BadResponse
        )
    }

    /// Adds every connection of `other`, each under its own outcome.
    pub fn merge(&mut self, other: Integrity) {
        for (outcome, tally) in Outcome::ALL.iter().zip(other.tallies) {
            self.add_tally(*outcome, tally, |e| e);
        }
    }

    /// Adds every connection of `other` under `outcome`, each example's detail saying what it
    /// would otherwise have been.
    pub fn merge_as(&mut self, outcome: Outcome, other: Integrity) {
        for (was, tally) in Outcome::ALL.iter().zip(other.tallies) {
            self.add_tally(outcome, tally, |mut e| {
                e.detail = format!("{}: {}", was.name(), e.detail);
                e
            });
        }
    }

    fn add_tally(&mut self, outcome: Outcome, tally: Tally, relabel: impl Fn(Example) -> Example) {
        let t = &mut self.tallies[outcome.index()];
        t.count += tally.count;
        let room = EXAMPLES.saturating_sub(t.examples.len());
        t.examples
            .extend(tally.examples.into_iter().take(room).map(relabel));
    }

    /// The tally of `outcome`.
    pub fn get(&self, outcome: Outcome) -> &Tally {
        &self.tallies[outcome.index()]
    }

    /// Connections judged.
    pub fn total(&self) -> u64 {
        self.tallies.iter().map(|t| t.count).sum()
    }

    /// Connections whose outcome breaks integrity.
    pub fn failed(&self) -> u64 {
        Outcome::ALL
            .iter()
            .filter(|o| !o.is_ok())
            .map(|&o| self.get(o).count)
            .sum()
    }

    /// Every outcome with its tally, in report order.
    pub fn iter(&self) -> impl Iterator<Item = (Outcome, &Tally)> {
        Outcome::ALL.iter().map(|&o| (o, self.get(o)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress::expect::Nonces;
    use crate::stress::stream::ContentFault;

    fn good() -> Progress {
        Progress {
            bytes: 500,
            status: Some(200),
            event_stream: true,
            events: 20,
            content_events: 19,
            content_len: 10,
            content_at_done: 10,
            done: 1,
            ..Progress::default()
        }
    }

    fn expected() -> ExpectedContent {
        ExpectedContent::from_pieces(&["Hello".into(), " world".into()], None)
    }

    fn outcome(p: &Progress, ending: Ending) -> Outcome {
        let e = expected();
        judge(p, &ending, Some(&e), b"", |i| {
            Nonces::with_tag("sx").nonce(i)
        })
        .0
    }

    #[test]
    fn each_finding_has_its_outcome() {
        let mut p = good();
        p.content_len = 11;
        p.content_at_done = 11;
        assert_eq!(outcome(&p, Ending::PeerClosed), Outcome::Completed);
        assert_eq!(
            outcome(&p, Ending::Timeout),
            Outcome::Timeout,
            "never completed"
        );
        assert_eq!(outcome(&p, Ending::Interrupted), Outcome::Interrupted);
        assert_eq!(
            outcome(&p, Ending::HandoffFailed("backlog".into())),
            Outcome::HandoffFailed
        );
        assert_eq!(outcome(&p, Ending::ClientClosed), Outcome::Aborted);

        let mut x = p.clone();
        x.crosstalk = Some(3);
        assert_eq!(outcome(&x, Ending::Timeout), Outcome::Crosstalk);

        let zero = Progress::default();
        assert_eq!(outcome(&zero, Ending::PeerClosed), Outcome::ZeroByteClose);

        let mut bad = p.clone();
        bad.status = Some(503);
        assert_eq!(outcome(&bad, Ending::PeerClosed), Outcome::BadResponse);
        bad.status = Some(200);
        bad.event_stream = false;
        assert_eq!(outcome(&bad, Ending::PeerClosed), Outcome::BadResponse);

        let mut err = p.clone();
        err.error_event = Some("boom".into());
        assert_eq!(outcome(&err, Ending::PeerClosed), Outcome::ErrorEvent);

        let mut wrong = p.clone();
        wrong.fault = Some(ContentFault {
            mismatch: crate::stress::expect::Mismatch { offset: 2 },
            got: b"x".to_vec(),
            at_event: 1,
        });
        assert_eq!(outcome(&wrong, Ending::PeerClosed), Outcome::WrongContent);
        assert_eq!(outcome(&wrong, Ending::ClientClosed), Outcome::WrongContent);

        let mut twice = p.clone();
        twice.done = 2;
        assert_eq!(outcome(&twice, Ending::PeerClosed), Outcome::WrongContent);

        let mut early = p.clone();
        early.content_at_done = 5;
        assert_eq!(outcome(&early, Ending::PeerClosed), Outcome::WrongContent);

        let mut cut = p.clone();
        cut.done = 0;
        assert_eq!(outcome(&cut, Ending::PeerClosed), Outcome::Truncated);
    }

    #[test]
    fn the_tally_keeps_five_examples() {
        let mut i = Integrity::default();
        for n in 0..8 {
            i.add(Outcome::Timeout, || Example {
                connection: n,
                nonce: String::new(),
                bytes: 0,
                detail: String::new(),
            });
            i.add(Outcome::Completed, || {
                unreachable!("no examples of success")
            });
        }
        assert_eq!(i.get(Outcome::Timeout).count, 8);
        assert_eq!(i.get(Outcome::Timeout).examples.len(), EXAMPLES);
        assert_eq!(i.total(), 16);
        assert_eq!(i.failed(), 8);
    }
}
