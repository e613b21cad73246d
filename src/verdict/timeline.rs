//! A stream on one time axis, for the HTML report's timeline: the upstream's writes (the mock's
//! request log) and the client's receipts (the transcript), both on `CLOCK_MONOTONIC` and
//! measured from the same origin as the wire dump (the handoff's first connect), with the pairs
//! that the relay-latency join matched.
//!
//! Bounded like the wire dump: a stream can have ten thousand events, so each list keeps a
//! window of [`Timeline::KEEP`] items at each end and counts what it leaves out.

/// What a mark on a lane stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// An upstream write (the mock handed bytes to its connection).
    Write,
    /// A client event that carried content.
    Content,
    /// A client event of a known shape without content (role, finish_reason, usage).
    Control,
    /// A client error event.
    Error,
    /// The client's `[DONE]`.
    Done,
    /// A client event of no known shape.
    Other,
}

/// One mark: when, what, how many bytes (written, or of the event's data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// ns since the origin.
    pub at_ns: u64,
    /// What it stands for.
    pub kind: MarkKind,
    /// Bytes written, or bytes of the event's data.
    pub bytes: u64,
}

/// Content the upstream wrote at `written_ns` and the client received at `received_ns` (one
/// relay-latency sample); the gap between the two is the relay latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// ns since the origin.
    pub written_ns: u64,
    /// ns since the origin.
    pub received_ns: u64,
}

/// A window of a list: the items kept and how many were left out between its two ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window<T> {
    /// Kept items, in order.
    pub items: Vec<T>,
    /// Items left out (all from the middle).
    pub omitted: usize,
}

impl<T> Default for Window<T> {
    fn default() -> Self {
        Window {
            items: Vec::new(),
            omitted: 0,
        }
    }
}

impl<T> Window<T> {
    /// The first and last `keep` of `items`.
    pub fn of(mut items: Vec<T>, keep: usize) -> Window<T> {
        let omitted = items.len().saturating_sub(2 * keep);
        if omitted > 0 {
            items.drain(keep..keep + omitted);
        }
        Window { items, omitted }
    }
}

/// One stream on one time axis. Times are ns since the origin (the handoff's first connect).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timeline {
    /// When the daemon had the client socket (sendmsg done).
    pub handoff_ns: Option<u64>,
    /// When the response head was complete.
    pub head_ns: Option<u64>,
    /// The upstream's writes.
    pub writes: Window<Mark>,
    /// The client's events.
    pub receipts: Window<Mark>,
    /// Relay-latency pairs.
    pub links: Window<Link>,
    /// When the client's `[DONE]` arrived.
    pub done_ns: Option<u64>,
    /// When the stream ended.
    pub end_ns: u64,
    /// How it ended (the wire dump's words).
    pub end: String,
}

impl Timeline {
    /// Items kept from each end of each list.
    pub const KEEP: usize = 40;

    /// The latest time on the timeline.
    pub fn span_ns(&self) -> u64 {
        let marks = self.writes.items.iter().chain(&self.receipts.items);
        let links = self
            .links
            .items
            .iter()
            .map(|l| l.written_ns.max(l.received_ns));
        marks
            .map(|m| m.at_ns)
            .chain(links)
            .chain([self.end_ns])
            .chain(self.done_ns)
            .chain(self.head_ns)
            .chain(self.handoff_ns)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_keeps_both_ends_and_counts_the_middle() {
        let w = Window::of((0..10).collect(), 2);
        assert_eq!(w.items, [0, 1, 8, 9]);
        assert_eq!(w.omitted, 6);
        let short = Window::of(vec![1, 2, 3], 2);
        assert_eq!(short.items, [1, 2, 3]);
        assert_eq!(short.omitted, 0);
    }
}
