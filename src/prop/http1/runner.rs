//! Cutting, editing and feeding response bytes, and recording what the parser made of them.

#[cfg(feature = "fuzzing")]
use arbitrary::Arbitrary;

use crate::http1::{Config, End, Error, Event, Finish, Framing, Head, Parser};

/// A byte edit, to turn a valid response into an arbitrary nearby one.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "fuzzing", derive(Arbitrary))]
pub enum Mutation {
    /// Overwrite the byte at this position (mod length).
    Set(u16, u8),
    /// Insert a byte at this position (mod length + 1).
    Insert(u16, u8),
    /// Delete the byte at this position (mod length).
    Delete(u16),
}

/// Applies `mutations` in order.
pub fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        match *m {
            Mutation::Set(at, b) if !bytes.is_empty() => {
                let at = usize::from(at) % bytes.len();
                bytes[at] = b;
            }
            Mutation::Insert(at, b) => {
                let at = usize::from(at) % (bytes.len() + 1);
                bytes.insert(at, b);
            }
            Mutation::Delete(at) if !bytes.is_empty() => {
                let at = usize::from(at) % bytes.len();
                bytes.remove(at);
            }
            Mutation::Set(..) | Mutation::Delete(_) => {}
        }
    }
}

/// `bytes` cut at `cuts` (taken mod `len + 1`, sorted, deduplicated); empty pieces kept
/// out, since the parser must not care about them either way.
pub fn pieces<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

/// One parser event with its bytes owned, adjacent data runs merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// [`Event::Interim`].
    Interim(Head),
    /// [`Event::Head`].
    Head(Head, Framing),
    /// [`Event::Body`] runs that are contiguous in the stream, merged.
    Body(u64, Vec<u8>),
    /// [`Event::End`].
    End(End),
    /// [`Event::Excess`] runs, merged.
    Excess(u64, Vec<u8>),
}

/// Everything a parse produced: events, then the result of the first error or of finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Events in order, data runs merged across feeds.
    pub events: Vec<Observed>,
    /// The first error, or what [`Parser::finish`] returned.
    pub result: Result<Finish, Error>,
}

impl Outcome {
    /// All decoded body bytes.
    pub fn body(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for e in &self.events {
            if let Observed::Body(_, b) = e {
                body.extend_from_slice(b);
            }
        }
        body
    }
}

/// Feeds `pieces` in order and records the outcome.
///
/// # Panics
///
/// If the parser breaks a promise of its API: a data slice that is not the part of the
/// current piece its offset names, offsets that go backwards, an error that is not sticky,
/// or a `finish` that disagrees with the events. That is what the runner is for.
pub fn run(config: &Config, pieces: &[&[u8]]) -> Outcome {
    let mut parser = Parser::with_config(config.clone());
    let mut events: Vec<Observed> = Vec::new();
    let mut start = 0u64;
    let mut last = 0u64;
    for piece in pieces {
        assert_eq!(parser.offset(), start, "offset counts every byte fed");
        let mut error = None;
        for event in parser.feed(piece) {
            let data = match &event {
                Ok(Event::Body(d) | Event::Excess(d)) => Some(*d),
                _ => None,
            };
            if let Some(d) = data {
                let at = d.bytes.as_ptr().addr().checked_sub(piece.as_ptr().addr());
                let at = at.expect("data is a slice of the piece fed");
                assert!(
                    at + d.bytes.len() <= piece.len(),
                    "data is a slice of the piece fed"
                );
                assert_eq!(
                    d.offset,
                    start + at as u64,
                    "data offset names its place in the piece"
                );
                assert!(d.offset >= last, "offsets never go backwards");
                assert!(!d.bytes.is_empty(), "no empty data events");
                last = d.end();
            }
            match event {
                Ok(Event::Interim(h)) => events.push(Observed::Interim(h)),
                Ok(Event::Head { head, framing }) => events.push(Observed::Head(head, framing)),
                Ok(Event::Body(d)) => match events.last_mut() {
                    Some(Observed::Body(at, b)) if *at + b.len() as u64 == d.offset => {
                        b.extend_from_slice(d.bytes)
                    }
                    _ => events.push(Observed::Body(d.offset, d.bytes.to_vec())),
                },
                Ok(Event::Excess(d)) => match events.last_mut() {
                    Some(Observed::Excess(at, b)) if *at + b.len() as u64 == d.offset => {
                        b.extend_from_slice(d.bytes)
                    }
                    _ => events.push(Observed::Excess(d.offset, d.bytes.to_vec())),
                },
                Ok(Event::End(end)) => events.push(Observed::End(end)),
                Err(e) => error = Some(e),
            }
        }
        if let Some(e) = error {
            // Errors are sticky: the next feed repeats it, and so does finish.
            let again: Vec<_> = parser.feed(b"more").collect();
            assert_eq!(
                again,
                vec![Err(e.clone())],
                "an error repeats on the next feed"
            );
            assert_eq!(parser.finish(), Err(e.clone()), "finish repeats the error");
            return Outcome {
                events,
                result: Err(e),
            };
        }
        start += piece.len() as u64;
    }
    let complete = parser.is_complete();
    let result = parser.finish();
    if complete {
        assert!(result.is_ok(), "a complete message finishes cleanly");
    }
    Outcome { events, result }
}
